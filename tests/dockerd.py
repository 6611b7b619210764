"""Docker daemons of the tests' own, each in a network namespace of its own, never the machine's:
for a daemon configured as a hostile operator would (log rotation), a daemon restarted mid-job,
and the nodes of a multi-node Swarm.

Layout (spec/cluster-engines.md): a hub namespace with a Linux bridge, reached from the root
namespace at ``10.250.<net>.1``; one namespace per daemon joined to the bridge by a veth pair,
``10.250.<net>.<11+i>``, no default route out. Each daemon is started with ``nsenter --net=…`` (``ip netns exec`` hides the
cgroup mounts), with its own data root, exec root, socket, pid file, cgroup parent and config
file, and stays a child of this process so it is reaped. Images come from the machine's daemon
by ``docker save | docker load``. Everything is torn down in reverse, even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_STARTED: list[PrivateDaemon] = []


def run(*args: str, check: bool = True, timeout: float = 60, **kwargs: Any) -> str:
    done = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@contextlib.contextmanager
def claimed_subnet(prefix: str) -> Iterator[int]:
    """A free ``<prefix>.<net>.0/24`` for this process to use until the block ends: held by a
    lock file (released even when the process dies), and skipped while any interface still
    carries an address in it (left by a run that was killed). Test processes running side by
    side (xdist workers) never pick the same one."""
    import fcntl
    import random

    candidates = list(range(10, 251))
    random.shuffle(candidates)
    for net in candidates:
        lock = open(f"/tmp/trainforge-subnet-{prefix}.{net}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        if run("ip", "-o", "addr", "show", "to", f"{prefix}.{net}.0/24").strip():
            lock.close()
            continue
        try:
            yield net
        finally:
            lock.close()
        return
    raise RuntimeError(f"no free subnet under {prefix}.0.0/16")


def can_run_daemons() -> str | None:
    """Why daemons of our own cannot start here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and dockerd)"
    for tool in ("dockerd", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def storage_driver() -> str:
    """The machine daemon's storage driver: what works on this filesystem."""
    return run("docker", "info", "--format", "{{.Driver}}").strip() or "vfs"


@dataclass
class Bridge:
    """A hub namespace holding a bridge the nodes' namespaces are joined to, and one more port
    to the root namespace at ``address``. The bridge lives apart from the machine's firewall
    (Docker's FORWARD policy drops bridged traffic in the root namespace)."""

    name: str
    net: int
    up: bool = False

    @property
    def address(self) -> str:
        return f"10.250.{self.net}.1"

    def _inside(self, *args: str) -> str:
        return run("ip", "netns", "exec", self.name, *args)

    def create(self) -> None:
        run("ip", "netns", "add", self.name)
        self.up = True
        self._inside("ip", "link", "set", "lo", "up")
        self._inside("ip", "link", "add", "br0", "type", "bridge")
        self._inside("ip", "link", "set", "br0", "up")
        root_end = f"h{self.name}"[-15:]
        run(
            "ip",
            "link",
            "add",
            root_end,
            "type",
            "veth",
            "peer",
            "name",
            "uplink",
            "netns",
            self.name,
        )
        run("ip", "addr", "add", f"{self.address}/24", "dev", root_end)
        run("ip", "link", "set", root_end, "up")
        self._inside("ip", "link", "set", "uplink", "master", "br0", "up")

    def attach(self, netns: str, address: str) -> None:
        port = f"p{netns}"[-15:]
        self._inside(
            "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns
        )
        self._inside("ip", "link", "set", port, "master", "br0", "up")
        run("ip", "netns", "exec", netns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        run("ip", "netns", "exec", netns, "ip", "link", "set", "eth0", "up")

    def delete(self) -> None:
        if self.up:
            # Everything inside goes with the namespace, the root's end of the uplink too.
            run("ip", "netns", "del", self.name, check=False)
            self.up = False


@dataclass
class PrivateDaemon:
    name: str
    root: Path
    address: str | None = None
    bridge: Bridge | None = None
    config: dict[str, Any] = field(default_factory=dict)
    # Swarm tasks use the node's image without asking a registry, and never pull one (no
    # registry is reachable); False: a node pulls what it lacks, as a real node does.
    prefer_offline: bool = True
    proc: subprocess.Popen[bytes] | None = None
    netns_made: bool = False

    @property
    def netns(self) -> str:
        return self.name

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        return run("docker", "-H", self.url, *args, check=check, timeout=timeout)

    # -- life --------------------------------------------------------------------------------

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        run("ip", "netns", "add", self.netns)
        self.netns_made = True
        run("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        if self.bridge is not None and self.address is not None:
            self.bridge.attach(self.netns, self.address)
        config = {
            "storage-driver": storage_driver(),
            # Stopping the daemon must not wait long for containers that ignore SIGTERM.
            "shutdown-timeout": 2,
            **self.config,
        }
        (self.root / "daemon.json").write_text(json.dumps(config))
        _STARTED.append(self)
        self.start()

    def start(self, timeout: float = 60) -> None:
        env = dict(os.environ)
        if self.prefer_offline:
            env["DOCKER_SERVICE_PREFER_OFFLINE_IMAGE"] = "1"
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
                "--config-file", str(self.root / "daemon.json"),
                "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "dockerd.pid"),
                "-H", self.url,
                "--cgroup-parent", f"/{self.name}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd {self.name} exited:\n{self.log()[-3000:]}")
            if self.answers():
                return
            time.sleep(0.1)
        raise TimeoutError(f"dockerd {self.name} did not answer:\n{self.log()[-3000:]}")

    def answers(self) -> bool:
        try:
            done = subprocess.run(
                ["docker", "-H", self.url, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.root / "dockerd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def load(self, images: Sequence[str]) -> None:
        """Images from the machine's daemon, with their ids."""
        if images:
            load_images([self], images)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc is not None and self.proc.poll() is None:
                ids = self.docker("ps", "-aq", check=False, timeout=20).split()
                if ids:
                    self.docker("rm", "-f", *ids, check=False, timeout=60)
        self.stop()
        # The managed containerd goes with dockerd; anything it left mounted goes now.
        for mount in reversed(_mounts_under(self.root)):
            run("umount", "-l", mount, check=False)
        if self.netns_made:
            run("ip", "netns", "del", self.netns, check=False)
            self.netns_made = False
        for cgroup in Path("/sys/fs/cgroup").glob(f"*/{self.name}"):
            with contextlib.suppress(OSError):
                for child in sorted(cgroup.rglob("*"), key=lambda p: -len(p.parts)):
                    if child.is_dir():
                        child.rmdir()
                cgroup.rmdir()
        shutil.rmtree(self.root, ignore_errors=True)
        if self in _STARTED:
            _STARTED.remove(self)


def load_images(daemons: Sequence[PrivateDaemon], images: Sequence[str]) -> None:
    """Save the images from the machine's daemon once and load them into every daemon at once."""
    with tempfile.TemporaryDirectory(prefix="tf-images-") as tmp:
        archive = Path(tmp) / "images.tar"
        run("docker", "save", "-o", str(archive), *images, timeout=300)

        def load(daemon: PrivateDaemon) -> None:
            daemon.docker("load", "-q", "-i", str(archive), timeout=300)

        with ThreadPoolExecutor(len(daemons)) as pool:
            for done in [pool.submit(load, d) for d in daemons]:
                done.result()


def _mounts_under(root: Path) -> list[str]:
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(str(root) + "/"):
                found.append(target)
    return sorted(found)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def private_daemon(images: Sequence[str], **config: Any) -> Iterator[PrivateDaemon]:
    """One daemon of the tests' own with ``config`` in its daemon.json."""
    name = unique("tfd")
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
    daemon = PrivateDaemon(name, root, config=config)
    try:
        daemon.create()
        daemon.load(images)
        yield daemon
    finally:
        daemon.destroy()


def destroy_all() -> None:
    for daemon in list(_STARTED):
        daemon.destroy()
