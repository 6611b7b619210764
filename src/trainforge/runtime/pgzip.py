"""A gzip writer that compresses on several threads and still writes one ordinary gzip member.

The input is cut into blocks; each block is deflated on its own thread, primed with the last
32 KiB of the block before it as a dictionary and ended with a sync flush, the last one with
``Z_FINISH`` (the technique of pigz). The concatenated raw deflate data is one valid stream, so
``gzip -d``, ``tar -xzf`` and Python's ``gzip`` read the result as usual. zlib releases the GIL
while it works, so the threads really run in parallel.

Blocks that do not compress (random bytes, already-compressed files) are detected from a cheap
level-1 trial of a sample and stored instead of deflated: the output is the same size a deflate
attempt would give, at a fraction of the CPU.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

BLOCK_SIZE = 1 << 20
_WINDOW = 32 * 1024
_SAMPLE = 64 * 1024
# A sample that shrinks by less than this is treated as incompressible.
_INCOMPRESSIBLE_RATIO = 0.97


def _deflate_block(block: bytes, dictionary: bytes | None, level: int, last: bool) -> bytes:
    if level > 0 and len(block) >= _SAMPLE:
        trial = zlib.compressobj(1, zlib.DEFLATED, -15)
        sample = block[:_SAMPLE]
        size = len(trial.compress(sample)) + len(trial.flush(zlib.Z_SYNC_FLUSH))
        if size > _INCOMPRESSIBLE_RATIO * len(sample):
            level = 0
    if dictionary:
        compressor = zlib.compressobj(
            level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary
        )
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    data = compressor.compress(block)
    return data + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzipWriter:
    """Write-only file object producing gzip data on ``fileobj``. Call ``close()`` to finish."""

    def __init__(
        self,
        fileobj: BinaryIO,
        level: int = 6,
        threads: int | None = None,
        block_size: int = BLOCK_SIZE,
        mtime: int | None = None,
    ) -> None:
        self._out = fileobj
        self._level = level
        self._block_size = block_size
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="pgzip")
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._previous_tail = b""
        self._crc = 0
        self._size = 0
        self._closed = False
        header_mtime = int(time.time()) if mtime is None else mtime
        # ID1 ID2 CM FLG MTIME XFL OS (OS 3 = Unix)
        self._out.write(struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 0, header_mtime, 0, 3))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed ParallelGzipWriter")
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._buffer += data
        while len(self._buffer) >= self._block_size:
            block = bytes(self._buffer[: self._block_size])
            del self._buffer[: self._block_size]
            self._submit(block, last=False)
        return len(data)

    def _submit(self, block: bytes, last: bool) -> None:
        dictionary = self._previous_tail
        self._previous_tail = (
            block[-_WINDOW:] if len(block) >= _WINDOW else (dictionary + block)[-_WINDOW:]
        )
        self._pending.append(
            self._pool.submit(_deflate_block, block, dictionary, self._level, last)
        )
        # Keep at most two blocks per thread in flight: bounded memory, no idle thread.
        while len(self._pending) > 2 * self._threads:
            self._out.write(self._pending.popleft().result())

    def close(self) -> None:
        if self._closed:
            return
        self._submit(bytes(self._buffer), last=True)
        self._buffer.clear()
        while self._pending:
            self._out.write(self._pending.popleft().result())
        self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        self._pool.shutdown()
        self._closed = True

    def __enter__(self) -> ParallelGzipWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._closed = True
            self._pool.shutdown(cancel_futures=True)
