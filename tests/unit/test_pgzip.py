"""runtime.pgzip: the parallel gzip writer produces one ordinary gzip member, read back by
Python's gzip module and by the gzip and tar commands."""

from __future__ import annotations

import gzip
import io
import random
import struct
import subprocess
import tarfile
import zlib
from collections.abc import Iterable

import pytest

from trainforge.runtime.pgzip import BLOCK_SIZE, ParallelGzipWriter

RNG = random.Random(20240601)
NOISE = RNG.randbytes(300_000)
TEXT = b"".join(b"epoch %d loss=%f\n" % (i, i / 7) for i in range(12_000))


def compress(
    chunks: Iterable[bytes], *, threads: int = 2, block_size: int = BLOCK_SIZE, level: int = 6
) -> bytes:
    out = io.BytesIO()
    writer = ParallelGzipWriter(out, level=level, threads=threads, block_size=block_size, mtime=0)
    for chunk in chunks:
        assert writer.write(chunk) == len(chunk)
    writer.close()
    return out.getvalue()


def gunzip_command(data: bytes) -> bytes:
    result = subprocess.run(["gzip", "-d", "-c"], input=data, capture_output=True, check=True)
    assert result.stderr == b""
    return result.stdout


def check_round_trip(payload: bytes, compressed: bytes) -> None:
    assert gzip.decompress(compressed) == payload
    assert gunzip_command(compressed) == payload
    # Exactly one member: a raw inflate consumes everything up to the 8-byte trailer.
    inflater = zlib.decompressobj(-15)
    assert inflater.decompress(compressed[10:]) == payload
    assert inflater.eof
    assert len(inflater.unused_data) == 8
    crc, size = struct.unpack("<II", inflater.unused_data)
    assert crc == zlib.crc32(payload)
    assert size == len(payload) & 0xFFFFFFFF


def test_header_is_a_plain_gzip_header() -> None:
    out = io.BytesIO()
    writer = ParallelGzipWriter(out, threads=1, mtime=1_700_000_000)
    writer.close()
    data = out.getvalue()
    assert data[:10] == b"\x1f\x8b\x08\x00" + struct.pack("<I", 1_700_000_000) + b"\x00\x03"


def test_empty_input() -> None:
    check_round_trip(b"", compress([]))


@pytest.mark.parametrize("payload", [b"x", b"hello\n", bytes(range(256))])
def test_tiny_input(payload: bytes) -> None:
    check_round_trip(payload, compress([payload]))


@pytest.mark.parametrize("block_size", [1024, 32 * 1024, 64 * 1024])
def test_input_of_exactly_one_and_two_blocks(block_size: int) -> None:
    one = TEXT[:block_size]
    check_round_trip(one, compress([one], block_size=block_size))
    two = TEXT[: 2 * block_size]
    check_round_trip(two, compress([two], block_size=block_size))


@pytest.mark.parametrize("block_size", [1, 7, 4096, 32 * 1024 - 1, 32 * 1024 + 1, 100_000])
@pytest.mark.parametrize("threads", [1, 2, 5])
def test_block_sizes_and_threads(block_size: int, threads: int) -> None:
    payload = TEXT[:3000] if block_size < 100 else TEXT + NOISE[:50_000] + TEXT[:70_000]
    check_round_trip(payload, compress([payload], threads=threads, block_size=block_size))


def test_incompressible_and_compressible_mixes() -> None:
    # 64 KiB blocks: the level-1 trial runs on every full block; noise blocks are stored.
    payload = NOISE[:200_000] + TEXT[:200_000] + NOISE[200_000:] + b"\0" * 150_000
    compressed = compress([payload], threads=3, block_size=64 * 1024)
    check_round_trip(payload, compressed)
    # The noise cannot shrink, the text and zeros must: well under the input size.
    assert len(compressed) < len(payload) - 300_000
    # Stored noise costs only a few bytes per 64 KiB block beyond the noise itself.
    assert len(compress([NOISE], block_size=64 * 1024)) < len(NOISE) + 200


def test_many_small_writes_equal_one_big_write() -> None:
    payload = TEXT[:150_000] + NOISE[:70_000]
    pieces = [payload[i : i + 997] for i in range(0, len(payload), 997)]
    small = compress(pieces, threads=4, block_size=16 * 1024)
    big = compress([payload], threads=1, block_size=16 * 1024)
    check_round_trip(payload, small)
    assert small == big  # deterministic: the block cut does not depend on write sizes


def test_level_zero_stores_everything() -> None:
    payload = TEXT[:100_000]
    compressed = compress([payload], level=0, block_size=32 * 1024)
    check_round_trip(payload, compressed)
    assert len(compressed) > len(payload)


def test_accepts_bytearray_and_memoryview() -> None:
    payload = TEXT[:5000]
    compressed = compress([bytearray(payload[:100]), memoryview(payload[100:])], block_size=512)
    check_round_trip(payload, compressed)


def test_tar_reads_a_tar_written_through_it() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("a.txt", TEXT[:10_000]), ("dir/noise.bin", NOISE[:80_000])):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    compressed = compress([raw.getvalue()], threads=3, block_size=8192)
    listing = subprocess.run(
        ["tar", "-tzf", "-"], input=compressed, capture_output=True, check=True
    )
    assert listing.stdout.decode().split() == ["a.txt", "dir/noise.bin"]
    content = subprocess.run(
        ["tar", "-xzOf", "-", "dir/noise.bin"], input=compressed, capture_output=True, check=True
    )
    assert content.stdout == NOISE[:80_000]


def test_context_manager_closes_and_close_is_idempotent() -> None:
    out = io.BytesIO()
    with ParallelGzipWriter(out, threads=2, block_size=4096, mtime=0) as writer:
        writer.write(TEXT[:10_000])
    data = out.getvalue()
    check_round_trip(TEXT[:10_000], data)
    writer.close()
    assert out.getvalue() == data
    with pytest.raises(ValueError, match=r"^write to a closed ParallelGzipWriter$"):
        writer.write(b"more")


def test_context_manager_on_error_writes_no_trailer() -> None:
    out = io.BytesIO()
    with pytest.raises(RuntimeError), ParallelGzipWriter(out, threads=2, mtime=0) as writer:
        writer.write(b"partial")
        raise RuntimeError("boom")
    assert out.getvalue()[:2] == b"\x1f\x8b"
    with pytest.raises(EOFError):
        gzip.decompress(out.getvalue())
    with pytest.raises(ValueError):
        writer.write(b"x")
