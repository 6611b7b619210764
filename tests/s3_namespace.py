"""An S3 (and STS) endpoint, moto's server, inside a network namespace the tests make: reached
from this machine and from the containers of its Docker engine at ``10.251.<net>.2``, through a
veth pair whose root end is ``10.251.<net>.1``; the namespace has no route out. Containers reach
it as they reach any network beyond the machine (Docker forwards and masquerades their traffic).
Torn down, moto and namespace, even when a test fails."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import wait_for_port
from tests.dockerd import claimed_subnet, run, unique

_PORT = 5000


@contextlib.contextmanager
def moto_in_namespace() -> Iterator[str]:
    with claimed_subnet("10.251") as net:
        yield from _moto_in_namespace(net)


def _moto_in_namespace(net: int) -> Iterator[str]:
    name = unique("tfs3")
    outer, inner = f"10.251.{net}.1", f"10.251.{net}.2"
    root_end = f"h{name}"[-15:]
    run("ip", "netns", "add", name)
    moto: subprocess.Popen[bytes] | None = None
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
        server = Path(sys.executable).parent / "moto_server"
        # `ip netns exec` execs moto itself: the pid is moto's.
        moto = subprocess.Popen(
            ["ip", "netns", "exec", name, str(server), "-H", inner, "-p", str(_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(_PORT, host=inner)
        yield f"http://{inner}:{_PORT}"
    finally:
        if moto is not None:
            moto.terminate()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait(timeout=10)
        # The root's end of the veth pair goes with the namespace.
        run("ip", "netns", "del", name, check=False)
