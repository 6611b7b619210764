"""runtime.artifacts: merged model trees, model.tar.gz written without following links, and the
failure file read with O_NOFOLLOW."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import threading
from pathlib import Path

from trainforge.errors import JobFailure
from trainforge.runtime.artifacts import (
    merged_tree,
    read_failure,
    unpack,
    write_tar_gz,
)

SECRET = b"TOP-SECRET-CONTENT-0123456789"


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def relatives(roots: list[Path], skipped: list[str] | None = None) -> list[str]:
    return [e.relative for e in merged_tree(roots, skipped)]


def extract(archive: Path, dest: Path) -> None:
    dest.mkdir()
    result = subprocess.run(
        ["tar", "-xzf", str(archive), "-C", str(dest)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# -- merged_tree -----------------------------------------------------------------------------


def test_merged_tree_sorted_with_directories(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "b.txt", "b")
    write(root / "a" / "z.txt", "z")
    write(root / "a" / "y" / "deep.txt", "d")
    (root / "empty").mkdir()
    entries = merged_tree([root])
    assert [e.relative for e in entries] == [
        "a",
        "a/y",
        "a/y/deep.txt",
        "a/z.txt",
        "b.txt",
        "empty",
    ]
    assert [e.is_dir for e in entries] == [True, True, False, False, False, True]
    assert entries[2].path == root / "a" / "y" / "deep.txt"
    assert entries[2].is_file


def test_merged_tree_later_root_wins(tmp_path: Path) -> None:
    one, two, three = tmp_path / "h1", tmp_path / "h2", tmp_path / "h3"
    write(one / "model.bin", "from 1")
    write(one / "only1.txt", "1")
    write(two / "model.bin", "from 2")
    write(two / "sub" / "x", "2x")
    write(three / "sub" / "x", "3x")
    entries = {e.relative: e for e in merged_tree([one, two, three])}
    assert sorted(entries) == ["model.bin", "only1.txt", "sub", "sub/x"]
    assert entries["model.bin"].path == two / "model.bin"
    assert entries["sub/x"].path == three / "sub" / "x"
    assert entries["only1.txt"].path == one / "only1.txt"


def test_merged_tree_later_file_replaces_an_earlier_directory(tmp_path: Path) -> None:
    one, two = tmp_path / "h1", tmp_path / "h2"
    write(one / "d" / "f", "inside")
    write(two / "d", "file now")
    assert relatives([one, two]) == ["d"]


def test_merged_tree_skips_missing_and_non_directory_roots(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write(real / "a", "a")
    not_dir = write(tmp_path / "file", "x")
    skipped: list[str] = []
    assert relatives([tmp_path / "missing", not_dir, real], skipped) == ["a"]
    assert skipped == [str(not_dir)]


def test_merged_tree_root_that_is_a_symlink_is_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "stolen.txt", SECRET)
    linked = tmp_path / "linked-root"
    linked.symlink_to(outside, target_is_directory=True)
    skipped: list[str] = []
    assert relatives([linked], skipped) == []
    assert skipped == [str(linked)]


def test_merged_tree_keeps_links_as_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.txt", SECRET)
    root = tmp_path / "model"
    write(root / "real.txt", "real")
    (root / "to-file").symlink_to(outside / "secret.txt")
    (root / "to-dir").symlink_to(outside, target_is_directory=True)
    (root / "relative").symlink_to("real.txt")
    (root / "dangling").symlink_to("nowhere")
    entries = {e.relative: e for e in merged_tree([root])}
    # The linked directory is not walked.
    assert sorted(entries) == ["dangling", "real.txt", "relative", "to-dir", "to-file"]
    assert entries["to-file"].link_target == str(outside / "secret.txt")
    assert entries["to-dir"].link_target == str(outside)
    assert entries["relative"].link_target == "real.txt"
    assert entries["dangling"].link_target == "nowhere"
    assert not entries["to-file"].is_file
    assert not entries["to-dir"].is_dir
    assert entries["real.txt"].link_target is None


def test_merged_tree_skips_special_files(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "a", "a")
    os.mkfifo(root / "pipe")
    skipped: list[str] = []
    assert relatives([root], skipped) == ["a"]
    assert skipped == ["pipe"]


# -- write_tar_gz ----------------------------------------------------------------------------


def test_write_tar_gz_restores_byte_for_byte(tmp_path: Path) -> None:
    root = tmp_path / "model"
    files = {
        "weights.bin": os.urandom(300_000),
        "exact-block.bin": b"b" * 512,
        "empty.txt": b"",
        "nested/deeper/config.json": b'{"a": 1}\n',
        "unicode-é.txt": "héllo".encode(),
        ("long/" + "n" * 120 + "/" + "f" * 150): b"long name",
    }
    for name, data in files.items():
        write(root / name, data)
    (root / "empty-dir").mkdir()
    os.chmod(root / "nested" / "deeper" / "config.json", 0o600)
    (root / "link").symlink_to("weights.bin")
    archive = tmp_path / "model.tar.gz"
    size = write_tar_gz(merged_tree([root]), archive, threads=2)
    assert size == archive.stat().st_size
    assert not (tmp_path / ".model.tar.gz.partial").exists()
    raw = gzip.decompress(archive.read_bytes())
    assert len(raw) % tarfile.RECORDSIZE == 0

    out = tmp_path / "out"
    extract(archive, out)
    for name, data in files.items():
        assert (out / name).read_bytes() == data, name
    assert (out / "empty-dir").is_dir()
    assert os.readlink(out / "link") == "weights.bin"
    assert (out / "nested" / "deeper" / "config.json").stat().st_mode & 0o777 == 0o600

    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert all(not n.startswith(("./", "/")) for n in names)
    assert "nested/deeper/config.json" in names


def test_write_tar_gz_never_reads_through_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.txt", SECRET)
    write(outside / "dir" / "more.txt", SECRET)
    root = tmp_path / "model"
    write(root / "ok.txt", "fine")
    (root / "escape").symlink_to(outside / "secret.txt")
    (root / "escape-dir").symlink_to(outside / "dir", target_is_directory=True)
    archive = tmp_path / "model.tar.gz"
    write_tar_gz(merged_tree([root]), archive, threads=1)

    raw = gzip.decompress(archive.read_bytes())
    assert SECRET not in raw
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["escape", "escape-dir", "ok.txt"]
    assert members["escape"].issym()
    assert members["escape"].linkname == str(outside / "secret.txt")
    assert members["escape"].size == 0
    assert members["escape-dir"].issym()


def test_write_tar_gz_of_nothing_is_a_valid_empty_archive(tmp_path: Path) -> None:
    archive = tmp_path / "output.tar.gz"
    write_tar_gz([], archive)
    raw = gzip.decompress(archive.read_bytes())
    assert raw == b"\0" * tarfile.RECORDSIZE
    listing = subprocess.run(["tar", "-tzf", str(archive)], capture_output=True, text=True)
    assert listing.returncode == 0
    assert listing.stdout == ""


def test_write_tar_gz_replaces_an_existing_archive(tmp_path: Path) -> None:
    root = tmp_path / "m"
    write(root / "new.txt", "new")
    archive = write(tmp_path / "model.tar.gz", "old garbage")
    write_tar_gz(merged_tree([root]), archive)
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["new.txt"]


# -- failure file ----------------------------------------------------------------------------


def test_read_failure(tmp_path: Path) -> None:
    assert read_failure(tmp_path) is None
    write(tmp_path / "failure", "ValueError: bad input\n")
    assert read_failure(tmp_path) == "ValueError: bad input\n"


def test_read_failure_is_cut_at_1024_characters(tmp_path: Path) -> None:
    write(tmp_path / "failure", "é" * 3000)
    text = read_failure(tmp_path)
    assert text == "é" * 1024


def test_read_failure_replaces_invalid_utf8(tmp_path: Path) -> None:
    write(tmp_path / "failure", b"bad \xff byte")
    assert read_failure(tmp_path) == "bad \ufffd byte"


def test_read_failure_does_not_follow_a_symlink(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret", SECRET)
    out = tmp_path / "output"
    out.mkdir()
    (out / "failure").symlink_to(secret)
    assert read_failure(out) is None


def test_read_failure_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "failure").mkdir()
    assert read_failure(tmp_path) is None


def test_read_failure_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "failure")
    results: list[str | None] = []
    reader = threading.Thread(target=lambda: results.append(read_failure(tmp_path)), daemon=True)
    reader.start()
    reader.join(0.5)
    blocked = reader.is_alive()
    if blocked:
        # Unblock the reader so that no thread is left behind, then report.
        fd = os.open(tmp_path / "failure", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        reader.join(5.0)
    assert not blocked
    assert results == [None]


def algorithm_failure_reason(text: str | None, code: int) -> str:
    return JobFailure.algorithm(text, code).failure_reason


def test_algorithm_failure_reason() -> None:
    assert algorithm_failure_reason("ValueError: x\n\n  ", 1) == (
        "AlgorithmError: ValueError: x, exit code: 1"
    )
    assert algorithm_failure_reason(None, 137) == "AlgorithmError: , exit code: 137"
    assert algorithm_failure_reason("", 2) == "AlgorithmError: , exit code: 2"
    assert algorithm_failure_reason("  leading kept", 3) == (
        "AlgorithmError:   leading kept, exit code: 3"
    )


def test_algorithm_failure_reason_is_cut_at_1024() -> None:
    reason = algorithm_failure_reason("x" * 1024, 1)
    assert len(reason) == 1024
    assert reason == "AlgorithmError: " + "x" * (1024 - len("AlgorithmError: "))
    short = algorithm_failure_reason("y" * 990, 255)
    assert short == "AlgorithmError: " + "y" * 990 + ", exit code: 255"
    assert len(short) == 1022


def test_unpack_restores_what_write_tar_gz_packed_links_as_links(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a")
    os.symlink("/etc/passwd", tree / "link")
    archive = tmp_path / "t.tar.gz"
    write_tar_gz(merged_tree([tree]), archive)
    unpack(archive, tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "a.txt").read_text() == "a"
    assert os.readlink(tmp_path / "out" / "link") == "/etc/passwd"


def test_unpack_never_writes_outside_or_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        link = tarfile.TarInfo("escape")
        link.type = tarfile.SYMTYPE
        link.linkname = str(outside)
        tar.addfile(link)
        for name in ("escape/owned.txt", "../owned.txt", "/abs.txt"):
            data = b"x"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    unpack(archive, tmp_path / "dest")
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "owned.txt").exists()
    assert not Path("/abs.txt").exists()
