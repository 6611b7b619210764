"""The credentials relay: on each node of a cluster, what the job containers there reach at the
link-local address the AWS SDKs accept (``AWS_CONTAINER_CREDENTIALS_FULL_URI``), which passes
each request, with its token, to the server's credentials endpoint (``runtime.
credentials_endpoint``) and its answer back unchanged. The server alone knows tokens and
credentials: the relay holds neither, so a node learns nothing a job there could not ask for
itself.

Run by the engine as a long-lived container of the agent image on the node's network with
CAP_NET_ADMIN (to hold the address): ``python3 -m trainforge.runtime.credentials_relay ADDRESS
PORT UPSTREAM``. It never logs a request, a token or a credential.
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request

from trainforge.runtime.credentials_http import QuietHandler, QuietServer, send_json
from trainforge.runtime.linkaddress import hold_address

PATH = "/v1/credentials"
_UPSTREAM_SECONDS = 10.0
# Proxies from the node's environment must not see a token.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Server(QuietServer):
    upstream: str


class _Handler(QuietHandler):
    server: _Server

    def _answer(self, status: int, data: bytes) -> None:
        send_json(self, status, data)

    def do_GET(self) -> None:
        if self.path != PATH:
            self._answer(404, json.dumps({"code": "NotFound", "message": self.path}).encode())
            return
        request = urllib.request.Request(
            self.server.upstream,
            headers={"Authorization": self.headers.get("Authorization", "")},
        )
        try:
            with _OPENER.open(request, timeout=_UPSTREAM_SECONDS) as response:
                self._answer(response.status, response.read())
        except urllib.error.HTTPError as exc:
            self._answer(exc.code, exc.read())
        except (OSError, ValueError) as exc:
            # The server is away (restarting, say): the SDKs retry, then say this.
            message = f"the trainforge server's credentials endpoint did not answer: {exc}"
            self._answer(502, json.dumps({"code": "Unavailable", "message": message}).encode())


def serve(address: str, port: int, upstream: str) -> None:
    hold_address(address)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    _Server.address_family = family
    server = _Server((address, port), _Handler)
    server.upstream = upstream
    server.serve_forever()


def main(argv: list[str]) -> int:
    try:
        address, port, upstream = argv[1], int(argv[2]), argv[3]
    except (IndexError, ValueError):
        print("usage: credentials_relay ADDRESS PORT UPSTREAM_URL", file=sys.stderr)
        return 2
    try:
        serve(address, port, upstream)
    except OSError as exc:
        print(f"the credentials relay cannot serve on {address}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
