"""A real multi-node Docker Swarm on this one machine, for the cluster engine's tests and
benchmarks: three daemons of our own (tests/dockerd.py), each in a network namespace joined to a
bridge of the root namespace, the first the manager. The bridge address is where the nodes reach
this machine (an S3 endpoint for their agents). Torn down completely, even when a test fails:
services, swarm membership, daemons, namespaces, bridge, data roots.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.dockerd import Bridge, PrivateDaemon, claimed_subnet, load_images, unique


@dataclass
class Swarm:
    bridge: Bridge
    nodes: list[PrivateDaemon] = field(default_factory=list)
    root: Path = Path("/tmp")

    @property
    def manager(self) -> PrivateDaemon:
        return self.nodes[0]

    @property
    def url(self) -> str:
        return self.manager.url

    def node_ids(self) -> list[str]:
        return self.manager.docker("node", "ls", "-q").split()

    def node_id(self, daemon: PrivateDaemon) -> str:
        return daemon.docker("info", "--format", "{{.Swarm.NodeID}}").strip()

    def label(self, daemon: PrivateDaemon, key: str, value: str) -> None:
        self.manager.docker("node", "update", "--label-add", f"{key}={value}", self.node_id(daemon))

    def containers(self, label: str) -> dict[str, list[str]]:
        """Every node's containers carrying ``label``."""
        return {
            node.name: node.docker("ps", "-aq", "--filter", f"label={label}").split()
            for node in self.nodes
            if node.answers()
        }

    def leftovers(self, job: str) -> list[str]:
        """Services, secrets, networks, volumes and containers of a job still on any node."""
        found = []
        label = f"label=trainforge.job={job}"
        found += [
            f"service {s}"
            for s in self.manager.docker("service", "ls", "-q", "--filter", label).split()
        ]
        found += [
            f"secret {s}"
            for s in self.manager.docker("secret", "ls", "-q", "--filter", label).split()
        ]
        for node in self.nodes:
            if not node.answers():
                continue
            found += [
                f"{node.name} container {c}"
                for c in node.docker("ps", "-aq", "--filter", label).split()
            ]
            found += [
                f"{node.name} network {n}"
                for n in node.docker("network", "ls", "-q", "--filter", label).split()
            ]
            found += [
                f"{node.name} volume {v}"
                for v in node.docker("volume", "ls", "-q", "--filter", label).split()
            ]
        return found

    def leave_all(self) -> None:
        for node in reversed(self.nodes):
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(Exception):
                    node.docker("swarm", "leave", "--force", check=False, timeout=30)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.manager.answers():
                services = self.manager.docker("service", "ls", "-q", check=False).split()
                if services:
                    self.manager.docker("service", "rm", *services, check=False)
        self.leave_all()
        for node in reversed(self.nodes):
            node.destroy()
        self.bridge.delete()


@contextlib.contextmanager
def swarm(
    size: int, images: Sequence[str], prefer_offline: bool = True, **config: object
) -> Iterator[Swarm]:
    """A swarm of ``size`` nodes with ``images`` loaded on each (ids kept); with
    ``prefer_offline`` False the nodes pull images they lack (tasks first try a pull of every
    image, which fails at once where no route leads out)."""
    with claimed_subnet("10.250") as net:
        yield from _swarm(net, size, images, prefer_offline, **config)


def _swarm(
    net: int, size: int, images: Sequence[str], prefer_offline: bool, **config: object
) -> Iterator[Swarm]:
    bridge = Bridge(unique("tfhub"), net)
    cluster = Swarm(bridge)
    try:
        bridge.create()
        for index in range(size):
            name = unique(f"tfn{index}")
            root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
            node = PrivateDaemon(
                name,
                root,
                address=f"10.250.{net}.{11 + index}",
                bridge=bridge,
                config=dict(config),
                prefer_offline=prefer_offline,
            )
            cluster.nodes.append(node)
            node.create()
        load_images(cluster.nodes, images)
        manager = cluster.manager
        assert manager.address is not None
        # A node's loss is noticed after a few missed heartbeats: 1 s apart here, not 5 s.
        manager.docker(
            "swarm", "init", "--advertise-addr", manager.address,
            "--listen-addr", f"{manager.address}:2377", "--dispatcher-heartbeat", "1s",
        )  # fmt: skip
        token = manager.docker("swarm", "join-token", "-q", "worker").strip()
        for node in cluster.nodes[1:]:
            assert node.address is not None
            node.docker(
                "swarm", "join", "--token", token, "--advertise-addr", node.address,
                "--listen-addr", f"{node.address}:2377", f"{manager.address}:2377",
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = manager.docker("node", "ls", "--format", "{{.Status}}").split()
            if len(states) == size and all(s == "Ready" for s in states):
                break
            time.sleep(0.2)
        else:
            raise TimeoutError(f"the swarm did not form: {manager.docker('node', 'ls')}")
        yield cluster
    finally:
        cluster.destroy()
