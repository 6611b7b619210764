"""A 3-node Swarm ready for trainforge (tests/cluster.py), for the Swarm engine's tests and
benchmarks: the test images and trainforge's agent image loaded on every node, the last node
labelled as having two GPUs, and an S3 endpoint (moto's server) on the address where the nodes
reach this machine. ``server`` starts `trainforge serve` with the Swarm engine on it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.cluster import Swarm, swarm
from tests.conftest import free_port, wait_for_port
from tests.server_support import RunningServer, start_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import images as image_builder  # noqa: E402


@dataclass
class SwarmSetup:
    cluster: Swarm
    s3_endpoint: str
    agent_image: str
    images: tuple[str, ...]

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "TRAINFORGE_ENGINE": "swarm",
            "DOCKER_HOST": self.cluster.url,
            "TRAINFORGE_AGENT_IMAGE": self.agent_image,
            "TRAINFORGE_SWARM_DNS": "127.0.0.1",
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            # moto's server answers STS too: the jobs' roles are assumed there.
            "AWS_ENDPOINT_URL_STS": self.s3_endpoint,
            # The manager is spoken to through its socket, as if on this machine; its nodes
            # reach this machine at the hub's address.
            "TRAINFORGE_SWARM_SERVER_ADDRESS": self.cluster.bridge.address,
            **extra,
        }

    def server(self, home: Path, **extra: str) -> RunningServer:
        return start_server(home, **self.env(**extra))

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1")


@contextlib.contextmanager
def swarm_setup(images: Sequence[str], size: int = 3, pulls: bool = False) -> Iterator[SwarmSetup]:
    """``pulls``: the nodes pull images they lack (from a registry of the tests on the hub's
    addresses, tests/registry_support.py, spoken to over plain HTTP)."""
    agent = image_builder.agent_tag()
    config = {"insecure-registries": ["10.250.0.0/16"]} if pulls else {}
    with swarm(size, [*images, agent], prefer_offline=not pulls, **config) as cluster:
        cluster.label(cluster.nodes[-1], "trainforge.gpus", "2")
        port = free_port()
        moto = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "moto_server"),
                "-H",
                cluster.bridge.address,
                "-p",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, host=cluster.bridge.address)
            endpoint = f"http://{cluster.bridge.address}:{port}"
            yield SwarmSetup(cluster, endpoint, agent, tuple(images))
        finally:
            moto.terminate()
            moto.wait(timeout=10)
