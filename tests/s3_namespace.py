"""An S3 endpoint inside a network namespace the tests make: moto's server (S3 and STS), or
s3s-fs for `make test-s3s`. It is reached from this machine and from the containers of its Docker
engine at ``10.251.<net>.2``, through a veth pair whose root end is ``10.251.<net>.1``; the
namespace has no route out. Containers reach it as they reach any network beyond the machine
(Docker forwards and masquerades their traffic). Torn down, server and namespace, even when a
test fails."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.conftest import wait_for_port
from tests.dockerd import claimed_subnet, run, unique

_PORT = 5000
# Given the command prefix that runs a program in the namespace, the address and the port: the
# server's process (the program itself: `ip netns exec` execs it).
Start = Callable[[Sequence[str], str, int], "subprocess.Popen[bytes]"]


def _moto(prefix: Sequence[str], host: str, port: int) -> subprocess.Popen[bytes]:
    server = Path(sys.executable).parent / "moto_server"
    return subprocess.Popen(
        [*prefix, str(server), "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def moto_in_namespace() -> Iterator[str]:
    with s3_in_namespace(_moto) as endpoint:
        yield endpoint


@contextlib.contextmanager
def s3_in_namespace(start: Start) -> Iterator[str]:
    with claimed_subnet("10.251") as net:
        yield from _in_namespace(net, start)


def _in_namespace(net: int, start: Start) -> Iterator[str]:
    name = unique("tfs3")
    outer, inner = f"10.251.{net}.1", f"10.251.{net}.2"
    root_end = f"h{name}"[-15:]
    run("ip", "netns", "add", name)
    server: subprocess.Popen[bytes] | None = None
    try:
        run("ip", "link", "add", root_end, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("ip", "addr", "add", f"{outer}/24", "dev", root_end)
        run("ip", "link", "set", root_end, "up")
        for args in (
            ("ip", "link", "set", "lo", "up"),
            ("ip", "addr", "add", f"{inner}/24", "dev", "eth0"),
            ("ip", "link", "set", "eth0", "up"),
        ):
            run("ip", "netns", "exec", name, *args)
        server = start(("ip", "netns", "exec", name), inner, _PORT)
        wait_for_port(_PORT, host=inner)
        yield f"http://{inner}:{_PORT}"
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        # The root's end of the veth pair goes with the namespace.
        run("ip", "netns", "del", name, check=False)
