"""The FIFOs of Pipe-mode channels in a host's tree (spec §7.4): ``<channel>_<epoch>`` under
/opt/ml/input/data, made, found and opened for writing.

The container can write its whole /opt/ml tree, so every name under the host's root is its to
replace, with a link to anywhere on this machine or a device node. FIFOs are therefore reached
through a descriptor of the data directory opened from the root without following links, and a
FIFO is opened only after an ``O_PATH`` handle showed it is one. A writer waiting for its reader
polls a non-blocking open, so it notices when it must stop. Nothing here reads or writes data.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from trainforge.runtime.workspace import HostWorkspace

FIFO_MODE = 0o644
# A larger pipe means fewer wake-ups of writer and reader per MiB; the kernel may refuse it.
PIPE_BYTES = 1 << 20
# A feeder waiting for its reader polls at first every millisecond (a reader that opens the
# next epoch at once waits no longer than that), backing off to every 20 ms.
OPEN_POLL_SECONDS = (0.001, 0.02)


def fifo_path(hw: HostWorkspace, channel: str, epoch: int) -> Path:
    return hw.data_dir / fifo_name(channel, epoch)


def fifo_name(channel: str, epoch: int) -> str:
    return f"{channel}_{epoch}"


_NO_LINKS = os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def data_directory(hw: HostWorkspace) -> Iterator[int]:
    """A descriptor of ``hw``'s /opt/ml/input/data, reached from its root without links."""
    fd = os.open(hw.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in hw.data_dir.relative_to(hw.root).parts:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | _NO_LINKS, dir_fd=fd)
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _open_fifo(directory: int, name: str, flags: int) -> int:
    """Open FIFO ``name`` of ``directory`` with ``flags``, having checked through an ``O_PATH``
    handle that it is a FIFO: nothing else the container may have put there (a link, a device
    node) is ever opened, and the check and the open see the same inode."""
    handle = os.open(name, os.O_PATH | _NO_LINKS, dir_fd=directory)
    try:
        if not stat.S_ISFIFO(os.fstat(handle).st_mode):
            raise FileExistsError(errno.EEXIST, "exists and is not a FIFO", name)
        return os.open(f"/proc/self/fd/{handle}", flags | os.O_CLOEXEC)
    finally:
        os.close(handle)


def make_fifo(directory: int, name: str) -> None:
    """A FIFO ``name`` in ``directory`` unless one is there; ``OSError`` when something else
    (a channel's directory, a link) is."""
    with contextlib.suppress(FileExistsError):
        os.mkfifo(name, FIFO_MODE, dir_fd=directory)
    # The read end, non-blocking: opening a FIFO's read end may not wait for a writer.
    fd = _open_fifo(directory, name, os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.fchmod(fd, FIFO_MODE)  # whatever the process's umask
    finally:
        os.close(fd)


def current_epoch(directory: int, channel: str) -> int:
    """The latest epoch whose FIFO exists (a worker that takes a job over goes on from there)."""
    pattern = re.compile(re.escape(channel) + r"_(\d+)")
    epochs = [0]
    for name in os.listdir(directory):
        found = pattern.fullmatch(name)
        if found and stat.S_ISFIFO(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode):
            epochs.append(int(found.group(1)))
    return max(epochs)


def open_writer(directory: int, name: str, stopping: threading.Event) -> int | None:
    """The write end of FIFO ``name`` once a reader has opened it; None once ``stopping``."""
    delay, longest = OPEN_POLL_SECONDS
    while not stopping.is_set():
        try:
            fd = _open_fifo(directory, name, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader yet
                stopping.wait(delay)
                delay = min(delay * 2, longest)
                continue
            if exc.errno == errno.ENOENT:  # the algorithm removed it
                make_fifo(directory, name)
                continue
            raise
        os.set_blocking(fd, True)
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        return fd
    return None
