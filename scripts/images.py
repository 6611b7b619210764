#!/usr/bin/env python3
"""Build the images trainforge's example and tests run, locally, and cache them by tag.

No registry is needed: the busybox image is ``FROM scratch`` with Debian's static busybox, the
Python base is a Debian root made with ``debootstrap`` and ``docker import``, and every other
image is built on one of those two. A tag carries a hash of everything that goes into the image,
so an unchanged image is never rebuilt and a changed one always is.

    python3 scripts/images.py busybox python example test   # build what is missing
    python3 scripts/images.py --tag example                  # print a tag (building it first)

Standard library only: it runs before the project's virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "images"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("TRAINFORGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PYTHON_PACKAGES = ["python3"]
TEST_IMAGES = ROOT / "tests" / "images"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def run(*args: str, **kwargs: object) -> None:
    subprocess.run(args, check=True, **kwargs)  # type: ignore[call-overload]


def docker_build(*args: str) -> None:
    """``docker build`` with its chatter kept back unless it fails."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    result = subprocess.run(
        ["docker", "build", "-q", *args], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        sys.exit(f"[images] docker build failed: {' '.join(args)}")


def image_exists(tag: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", tag],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).returncode
        == 0
    )


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def tree_digest(directory: Path) -> bytes:
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(directory)).encode())
            h.update(oct(path.stat().st_mode & 0o777).encode())
            h.update(path.read_bytes())
    return h.digest()


# -- busybox -------------------------------------------------------------------------------


def static_busybox() -> Path:
    """Debian's busybox-static binary: the installed one, or one fetched with apt-get download."""
    installed = Path("/bin/busybox")
    if installed.exists():
        # ldd fails ("not a dynamic executable") exactly when the binary is static.
        ldd = subprocess.run(["ldd", str(installed)], capture_output=True)
        if ldd.returncode != 0:
            return installed
    target = CACHE / "busybox-static" / "bin" / "busybox"
    if target.exists():
        return target
    download = CACHE / "busybox-static-deb"
    download.mkdir(parents=True, exist_ok=True)
    log("fetching Debian's busybox-static package")
    try:
        run("apt-get", "download", "busybox-static", cwd=download)
    except subprocess.CalledProcessError:
        run("apt-get", "update", "-q")
        run("apt-get", "download", "busybox-static", cwd=download)
    deb = next(download.glob("busybox-static_*.deb"))
    run("dpkg-deb", "-x", str(deb), str(CACHE / "busybox-static"))
    return target


BUSYBOX_DOCKERFILE = f"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV {PATH_ENV}
"""


def busybox_tag() -> str:
    binary = static_busybox()
    tag = f"trainforge/busybox:{digest(binary.read_bytes(), BUSYBOX_DOCKERFILE.encode())}"
    if image_exists(tag):
        return tag
    log(f"building {tag}")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(binary, Path(tmp) / "busybox")
        (Path(tmp) / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
        docker_build("-t", tag, tmp)
    return tag


# -- python base ---------------------------------------------------------------------------


def python_tag() -> str:
    recipe = f"{DEBIAN_SUITE} minbase {' '.join(PYTHON_PACKAGES)} v1".encode()
    tag = f"trainforge/python:{DEBIAN_SUITE}-{digest(recipe)}"
    if image_exists(tag):
        return tag
    if shutil.which("debootstrap") is None:
        if os.geteuid() != 0:
            sys.exit(
                "[images] debootstrap is needed to build the Python base image: apt-get install debootstrap"
            )
        log("installing debootstrap")
        run("apt-get", "install", "-y", "-q", "debootstrap", stdout=subprocess.DEVNULL)
    log(
        f"building {tag} with debootstrap ({DEBIAN_SUITE}, {', '.join(PYTHON_PACKAGES)}); about a minute"
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp) / "root"
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PYTHON_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
            DEBIAN_MIRROR,
            stdout=subprocess.DEVNULL,
        )
        for junk in (
            "usr/share/doc",
            "usr/share/man",
            "usr/share/locale",
            "var/cache/apt/archives",
        ):
            shutil.rmtree(root / junk, ignore_errors=True)
        for lists in (root / "var/lib/apt/lists").glob("*_Packages"):
            lists.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        run(
            "docker",
            "import",
            "-c",
            f"ENV {PATH_ENV}",
            "-",
            tag,
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            sys.exit("[images] tar of the debootstrap root failed")
    return tag


# -- images built from a Dockerfile on one of the bases -------------------------------------


# Where this machine's CA bundle is: a context marked USES_HOST_CA gets a copy as host-ca.crt,
# for a build that fetches from PyPI through a proxy this machine trusts and Debian's does not.
HOST_CA = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")


def dockerfile_tag(name: str, context: Path, base: str) -> str:
    tag = f"{name}:{digest(tree_digest(context), base.encode())}"
    if image_exists(tag):
        return tag
    log(f"building {tag}")
    if not (context / "USES_HOST_CA").exists():
        docker_build("--build-arg", f"BASE={base}", "-t", tag, str(context))
        return tag
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "context"
        shutil.copytree(context, copy)
        if HOST_CA.is_file():
            shutil.copy(HOST_CA, copy / "host-ca.crt")
        else:
            (copy / "host-ca.crt").write_text("")
        docker_build("--build-arg", f"BASE={base}", "-t", tag, str(copy))
    return tag


def example_tag() -> str:
    return dockerfile_tag(
        "trainforge-example/iris", ROOT / "examples" / "iris" / "container", python_tag()
    )


def test_tags() -> dict[str, str]:
    """Every image under tests/images/<name>/ (a Dockerfile with ``ARG BASE``)."""
    tags = {}
    for context in sorted(p for p in TEST_IMAGES.iterdir() if (p / "Dockerfile").exists()):
        base = python_tag() if (context / "USES_PYTHON").exists() else busybox_tag()
        tags[context.name] = dockerfile_tag(f"trainforge-test/{context.name}", context, base)
    return tags


def agent_tag() -> str:
    """trainforge's agent image (for the Swarm tests), built by ``trainforge agent-image`` on the
    Python base from this checkout's virtual environment; tagged by everything that goes in."""
    trainforge = ROOT / ".venv" / "bin" / "trainforge"
    if not trainforge.exists():
        sys.exit("[images] the agent image needs .venv (make .venv/.installed) first")
    base = python_tag()
    versions = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True
    ).stdout.encode()
    tag = f"trainforge/agent:{digest(tree_digest(ROOT / 'src' / 'trainforge'), base.encode(), versions)}"
    if image_exists(tag):
        return tag
    log(f"building {tag}")
    run(str(trainforge), "agent-image", "--base", base, "--tag", tag, stdout=subprocess.DEVNULL)
    return tag


TARGETS = {
    "busybox": busybox_tag,
    "python": python_tag,
    "example": example_tag,
    "agent": agent_tag,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["busybox", "python", "example", "test"])
    parser.add_argument("--tag", help="print the tag of one target (building it if needed)")
    args = parser.parse_args()
    if args.tag:
        print(TARGETS[args.tag]())
        return 0
    for target in args.targets:
        if target == "test":
            for name, tag in test_tags().items():
                log(f"{name}: {tag}")
        else:
            log(f"{target}: {TARGETS[target]()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
