"""What a finished container leaves behind (spec §5.2, §6): ``/opt/ml/model`` of every host merged
into ``model.tar.gz`` (or uploaded file by file for CompressionType NONE), a non-empty
``/opt/ml/output/data`` into ``output.tar.gz``, and ``/opt/ml/output/failure`` into FailureReason.

The container wrote these trees, so nothing here follows a symbolic link: links are archived as
links, never read through, and every file is opened with O_NOFOLLOW. A link in the model
directory cannot make trainforge read or write anything outside the job's workspace.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from trainforge.domain import contract
from trainforge.runtime.pgzip import ParallelGzipWriter

_READ_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


@dataclass(frozen=True)
class Entry:
    """One path of a merged tree: ``relative`` inside the archive, ``path`` on the host."""

    relative: str
    path: Path
    info: os.stat_result
    link_target: str | None = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.info.st_mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.info.st_mode)


def _walk(root: Path, relative: str, skipped: list[str]) -> Iterator[Entry]:
    try:
        with os.scandir(root / relative if relative else root) as it:
            children = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for child in children:
        rel = f"{relative}/{child.name}" if relative else child.name
        info = child.stat(follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            yield Entry(rel, Path(child.path), info, os.readlink(child.path))
        elif stat.S_ISDIR(info.st_mode):
            yield Entry(rel, Path(child.path), info)
            yield from _walk(root, rel, skipped)
        elif stat.S_ISREG(info.st_mode):
            yield Entry(rel, Path(child.path), info)
        else:
            skipped.append(rel)


def merged_tree(roots: Sequence[Path], skipped: list[str] | None = None) -> list[Entry]:
    """Entries of all roots merged in order; on a name clash the later root wins (spec §6.2).

    A root that is not a real directory (a container may replace output/data with a link) is
    left out.
    """
    skipped = [] if skipped is None else skipped
    merged: dict[str, Entry] = {}
    for root in roots:
        try:
            if not stat.S_ISDIR(os.lstat(root).st_mode):
                skipped.append(str(root))
                continue
        except FileNotFoundError:
            continue
        replaced = set()
        for entry in _walk(root, "", skipped):
            earlier = merged.get(entry.relative)
            if earlier is not None and earlier.is_dir and not entry.is_dir:
                replaced.add(entry.relative + "/")
            merged[entry.relative] = entry
        if replaced:
            # What an earlier host had under a directory that a later host made a file is gone,
            # as it would be if the later tree were unpacked over the earlier one.
            for key in [k for k in merged if any(k.startswith(r) for r in replaced)]:
                del merged[key]
    return [merged[key] for key in sorted(merged)]


def _tar_header(entry: Entry) -> bytes:
    info = tarfile.TarInfo(entry.relative)
    info.mode = stat.S_IMODE(entry.info.st_mode)
    info.uid = entry.info.st_uid
    info.gid = entry.info.st_gid
    info.mtime = int(entry.info.st_mtime)
    if entry.link_target is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link_target
    elif entry.is_dir:
        info.type = tarfile.DIRTYPE
    else:
        info.type = tarfile.REGTYPE
        info.size = entry.info.st_size
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _copy_file(entry: Entry, out: ParallelGzipWriter) -> None:
    fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{entry.path} is no longer a regular file")
        remaining = entry.info.st_size
        while remaining > 0:
            chunk = os.read(fd, min(_READ_CHUNK, remaining))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)
        if remaining > 0:
            # The file shrank while we read it: pad so the archive stays well-formed.
            out.write(b"\0" * remaining)
    finally:
        os.close(fd)
    padding = (-entry.info.st_size) % _BLOCK
    if padding:
        out.write(b"\0" * padding)


def write_tar_gz(entries: Sequence[Entry], dest: Path, threads: int | None = None) -> int:
    """Write entries as a gzip-compressed tar to ``dest`` (via a temporary name); returns size."""
    tmp = dest.with_name(f".{dest.name}.partial")
    with open(tmp, "wb") as raw:
        gz = ParallelGzipWriter(raw, threads=threads)
        written = 0
        for entry in entries:
            header = _tar_header(entry)
            gz.write(header)
            written += len(header)
            if entry.is_file and entry.link_target is None:
                _copy_file(entry, gz)
                written += entry.info.st_size + (-entry.info.st_size) % _BLOCK
        end = b"\0" * (2 * _BLOCK)
        written += len(end)
        gz.write(end + b"\0" * ((-written) % _RECORD))
        gz.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, dest)
    return dest.stat().st_size


def read_failure(output_dir: Path) -> str | None:
    """The text of ``output/failure`` (first 1024 characters), or None when absent."""
    path = output_dir / "failure"
    try:
        # O_NONBLOCK: a FIFO left there must not hang the worker (it is then refused below).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, 4 * contract.FAILURE_REASON_MAX)
    finally:
        os.close(fd)
    return raw.decode("utf-8", "replace")[: contract.FAILURE_REASON_MAX]


def unpack(archive: Path, dest: Path) -> None:
    """Unpack a tar archive of ours (``write_tar_gz``) under ``dest``, links as links. Nothing
    is written outside ``dest``: no member named absolutely or with ``..``, none under a
    directory that a link of the archive turned elsewhere; other kinds of members are skipped.
    (Python's own extraction filters arrived in 3.11.4; agent images may have an older 3.11.)"""
    root = dest.resolve()
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name.startswith(("/", "..")) or name == ".":
                continue
            target = root / name
            parent = target.parent
            parent.mkdir(parents=True, exist_ok=True)
            if not parent.resolve().is_relative_to(root):
                continue
            if member.isdir():
                target.mkdir(exist_ok=True)
            elif member.issym():
                if target.is_symlink() or target.exists():
                    continue
                os.symlink(member.linkname, target)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is None or target.is_symlink():
                    continue
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, _READ_CHUNK)
            else:
                continue
            if not member.issym():
                os.chmod(target, member.mode & 0o7777)
                os.utime(target, (member.mtime, member.mtime))
