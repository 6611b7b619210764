"""s3s-fs, a second S3 implementation (Rust, objects as files under one directory), for the
benchmarks and for running the S3 tests against something other than moto.

It is built from crates.io with cargo the first time it is needed and cached under
``.cache/s3s-fs`` (``make clean`` removes it); nothing is pulled from anywhere else. Started on a
loopback port with one access key, it checks SigV4 signatures as S3 does.

    python3 scripts/s3s.py            # build it (if needed) and print the binary's path
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL_ROOT = ROOT / ".cache" / "s3s-fs"
BINARY = INSTALL_ROOT / "bin" / "s3s-fs"
# The newest release that builds with the Rust of the project's machines (1.95): 0.17 needs 1.96.
VERSION = "0.14.1"


def binary() -> Path:
    """The s3s-fs binary, built once (a few minutes of CPU, at low priority) and then reused."""
    stamp = INSTALL_ROOT / f".version-{VERSION}"
    if BINARY.exists() and stamp.exists():
        return BINARY
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if not Path(cargo).exists():
        raise RuntimeError("s3s-fs is built with cargo, and cargo is not installed (rustup.rs)")
    print(f"[s3s] building s3s-fs {VERSION} with cargo (cached in {INSTALL_ROOT})", file=sys.stderr)
    subprocess.run(
        [
            "nice",
            "-n",
            "10",
            cargo,
            "install",
            "--quiet",
            "--root",
            str(INSTALL_ROOT),
            "s3s-fs",
            "--version",
            VERSION,
            "--locked",
            "--features",
            "binary",
        ],
        check=True,
    )
    stamp.touch()
    return BINARY


def start(
    data: Path,
    port: int,
    access_key: str,
    secret_key: str,
    log: Path | None = None,
    host: str = "127.0.0.1",
    prefix: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """s3s-fs serving ``data`` on ``host``:``port`` (run through ``prefix``, a command that execs
    it: ``ip netns exec NAME``, say); returns once it accepts connections (the caller stops it,
    by this process, whatever happens)."""
    data.mkdir(parents=True, exist_ok=True)
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            *prefix,
            str(binary()),
            "--host",
            host,
            "--port",
            str(port),
            "--access-key",
            access_key,
            "--secret-key",
            secret_key,
            str(data),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )
    if log:
        out.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"s3s-fs exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise TimeoutError(f"s3s-fs did not listen on {host}:{port}")


if __name__ == "__main__":
    print(binary())
