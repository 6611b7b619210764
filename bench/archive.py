"""Benchmark 5: model.tar.gz of a 1 GiB model directory (half random bytes, half text) against
`tar -czf` of the same directory; `tar -xzf` must restore ours byte for byte."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import CACHE, Row, alternate, fmt_seconds, measure, median

RANDOM_FILES, RANDOM_SIZE = 4, 128 << 20
TEXT_FILES, TEXT_SIZE = 32, 16 << 20
PACK = (
    "import sys; from pathlib import Path; "
    "from trainforge.runtime.artifacts import merged_tree, write_tar_gz; "
    "write_tar_gz(merged_tree([Path(sys.argv[1])]), Path(sys.argv[2]))"
)


def _text_block(seed: int) -> bytes:
    rng = random.Random(seed)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 11)))
        for _ in range(4000)
    ]
    lines = []
    size = 0
    while size < TEXT_SIZE:
        line = (
            f"step={rng.randint(0, 10**6)} loss={rng.random():.6f} "
            + " ".join(rng.choices(words, k=12))
            + "\n"
        )
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()[:TEXT_SIZE]


def model_directory() -> Path:
    """The 1 GiB directory, built once and kept in .cache/bench/."""
    root = CACHE / "model-1g"
    marker = root / ".complete"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "weights").mkdir(parents=True)
    (root / "logs" / "text").mkdir(parents=True)
    for i in range(RANDOM_FILES):
        (root / "weights" / f"shard-{i}.bin").write_bytes(os.urandom(RANDOM_SIZE))
    blocks = [_text_block(seed) for seed in range(4)]
    for i in range(TEXT_FILES):
        (root / "logs" / "text" / f"part-{i:02d}.txt").write_bytes(blocks[i % 4])
    marker.touch()
    return root


def _digests(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != ".complete":
            h = hashlib.sha256()
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            out[str(path.relative_to(root))] = h.hexdigest()
    return out


def model_archive(runs: int) -> Row:
    source = model_directory()
    (source / ".complete").unlink()
    try:
        with tempfile.TemporaryDirectory(prefix="tf-archive-", dir=CACHE) as tmp:
            ours_path, theirs_path = Path(tmp) / "ours.tar.gz", Path(tmp) / "tar.tar.gz"

            def ours() -> float:
                result = measure([sys.executable, "-c", PACK, str(source), str(ours_path)])
                assert result.returncode == 0
                return result.wall

            def theirs() -> float:
                result = measure(["tar", "-czf", str(theirs_path), "-C", str(source), "."])
                assert result.returncode == 0
                return result.wall

            mine, tar = alternate(ours, theirs, runs, warmup=1)
            restored = Path(tmp) / "restored"
            restored.mkdir()
            subprocess.run(["tar", "-xzf", str(ours_path), "-C", str(restored)], check=True)
            identical = _digests(restored) == _digests(source)
            sizes = (ours_path.stat().st_size, theirs_path.stat().st_size)
    finally:
        (source / ".complete").touch()
    ratio = median(mine) / median(tar)
    notes = [
        f"archive sizes: trainforge {sizes[0] / 2**20:.0f} MiB, tar -czf {sizes[1] / 2**20:.0f} MiB"
    ]
    notes.append(
        "tar -xzf restores it byte for byte"
        if identical
        else "tar -xzf did NOT restore it byte for byte"
    )
    return Row(
        "5",
        "model.tar.gz of a 1 GiB model directory (half random, half text)",
        fmt_seconds(median(mine)),
        f"{fmt_seconds(median(tar))} (tar -czf)",
        f"{ratio:.2f}×",
        "≤ 0.6×, restores byte for byte",
        ratio <= 0.6 and identical,
        notes,
    )
