"""Holding one address on this machine's loopback interface, so that a container on a Docker
bridge reaches a service of the machine at it: the container sends packets for it to its
gateway, and the machine delivers locally every packet for an address it holds. The credentials
endpoint needs this because the AWS SDKs fetch container credentials over plain HTTP only from
loopback or a few fixed link-local addresses (169.254.170.2 among them).

Adding an address takes CAP_NET_ADMIN. Run by root, trainforge adds it itself (one netlink
request, no ``ip`` command needed); otherwise the Docker engine does it in a short-lived
container of the agent image on the host's network with that one capability
(``python3 -m trainforge.runtime.linkaddress ADDRESS``). Adding an address already held is not
an error. This module owns nothing else: it never removes the address (other trainforge
processes of the machine may serve on it) and never touches routes or firewalls.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import sys

_RTM_NEWADDR = 20
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_EXCL = 0x200
_NLM_F_CREATE = 0x400
_NLMSG_ERROR = 2
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_LOOPBACK_INDEX = 1


def hold_address(address: str) -> None:
    """Add ``address`` (IPv4 or IPv6) as a /32 (/128) of the loopback interface. Raises
    ``PermissionError`` without CAP_NET_ADMIN, ``OSError`` for any other refusal."""
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    packed = ip.packed
    attribute_length = 4 + len(packed)
    attributes = b"".join(
        struct.pack("=HH", attribute_length, kind) + packed for kind in (_IFA_LOCAL, _IFA_ADDRESS)
    )
    # struct ifaddrmsg: family, prefix length, flags, scope (universe), interface index.
    body = struct.pack("=BBBBI", family, ip.max_prefixlen, 0, 0, _LOOPBACK_INDEX) + attributes
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    header = struct.pack("=IHHII", 16 + len(body), _RTM_NEWADDR, flags, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(5)
        sock.send(header + body)
        reply = sock.recv(4096)
    _, kind, _, _, _ = struct.unpack("=IHHII", reply[:16])
    if kind != _NLMSG_ERROR:
        raise OSError(f"unexpected netlink answer {kind} adding {address}")
    (code,) = struct.unpack("=i", reply[16:20])
    if code in (0, -errno.EEXIST):
        return
    if code == -errno.EPERM:
        raise PermissionError(errno.EPERM, f"adding {address} to the loopback interface")
    reason = errno.errorcode.get(-code, str(-code))
    raise OSError(-code, f"adding {address} to the loopback interface: {reason}")


def main(argv: list[str]) -> int:
    try:
        hold_address(argv[1])
    except (OSError, ValueError, IndexError) as exc:
        print(f"cannot hold the address: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
