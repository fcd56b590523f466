"""
Discovery and streaming of log files: globs, rotation, links that leave the roots, compressed
and truncated streams, binary files, budgets and very long lines, against real files.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import os
import random
import threading
from pathlib import Path

from hipaacheck.detectors.files import (
    LogFileReader,
    ReadOutcome,
    base_name,
    discover,
    looks_binary,
    plan_windows,
    stream_blocks,
)
from hipaacheck.detectors.phi import Block
from hipaacheck.model import UnknownReason


def read_all(path: Path | str, **kw: int) -> tuple[list[Block], LogFileReader]:
    reader = LogFileReader(str(path), max_bytes=kw.pop("max_bytes", 1 << 30), **kw)
    return list(reader.blocks()), reader


def text_of(blocks: list[Block]) -> bytes:
    return b"\n".join(b.data for b in blocks)


def test_rotated_names_share_a_base_name() -> None:
    assert base_name("app.log.1") == "app.log"
    assert base_name("app.log.12.gz") == "app.log"
    assert base_name("access.log-20261203") == "access.log"
    assert base_name("access.log-20261203.xz") == "access.log"
    assert base_name("access.log") == "access.log"


def test_globs_pick_up_rotations_and_skip_other_files(tmp_path: Path) -> None:
    for name in ("api.log", "api.log.1", "api.log.2.gz", "api.log-20261203.bz2", "notes.txt",
                 "notes.txt.1"):
        (tmp_path / name).write_bytes(b"x\n")
    found = discover([str(tmp_path / "*.log")])
    assert [Path(f).name for f in found.files] == [
        "api.log", "api.log-20261203.bz2", "api.log.1", "api.log.2.gz"]
    assert found.problems == () and found.unmatched == ()


def test_an_explicit_file_takes_its_rotations(tmp_path: Path) -> None:
    for name in ("access.log", "access.log.1", "access.log-20261202.gz", "error.log"):
        (tmp_path / name).write_bytes(b"x\n")
    found = discover([str(tmp_path / "access.log")])
    assert sorted(Path(f).name for f in found.files) == [
        "access.log", "access.log-20261202.gz", "access.log.1"]


def test_directories_and_double_star_globs_recurse(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one.log").write_bytes(b"x\n")
    (tmp_path / "a" / "b" / "two.log").write_bytes(b"x\n")
    (tmp_path / "a" / "b" / "three.txt").write_bytes(b"x\n")
    assert len(discover([str(tmp_path / "a")]).files) == 3
    names = sorted(Path(f).name for f in discover([str(tmp_path / "**" / "*.log")]).files)
    assert names == ["one.log", "two.log"]


def test_a_pattern_that_matches_nothing_is_reported(tmp_path: Path) -> None:
    (tmp_path / "real.log").write_bytes(b"x\n")
    patterns = [str(tmp_path / "*.log"), str(tmp_path / "missing" / "*.log"),
                str(tmp_path / "none.log")]
    found = discover(patterns)
    assert len(found.files) == 1
    assert found.unmatched == tuple(patterns[1:])


def test_a_link_out_of_the_roots_is_not_followed(tmp_path: Path) -> None:
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    logs.mkdir()
    outside.mkdir()
    (outside / "secret.log").write_bytes(b"ssn=219-45-6781\n")
    (logs / "inside.log").write_bytes(b"x\n")
    os.symlink(outside / "secret.log", logs / "leak.log")
    os.symlink(outside, logs / "elsewhere")
    os.symlink(logs / "inside.log", logs / "alias.log")
    found = discover([str(logs)])
    assert [Path(f).name for f in found.files] == ["alias.log"]  # the in-root alias, read once
    problems = {Path(p.path).name: p.unknown.reason for p in found.problems}
    assert problems == {"leak.log": UnknownReason.NOT_SUPPORTED,
                        "elsewhere": UnknownReason.NOT_SUPPORTED}


def test_symlink_loops_and_broken_links_end_cleanly(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.log").write_bytes(b"x\n")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    os.symlink(tmp_path / "gone.log", tmp_path / "broken.log")
    os.symlink("self.log", tmp_path / "self.log")
    found = discover([str(tmp_path), str(tmp_path / "**" / "*.log")])
    assert [Path(f).name for f in found.files] == ["a.log"]
    problems = {Path(p.path).name: p.unknown.reason for p in found.problems}
    assert problems == {"broken.log": UnknownReason.NOT_VISIBLE,
                        "self.log": UnknownReason.NOT_SUPPORTED}


# --------------------------------------------------------------------------------------------
# Reading.

LINES = [f"line {i} ok".encode() for i in range(1, 2001)]
BODY = b"\n".join(LINES) + b"\n"


def test_plain_and_compressed_files_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(BODY)
    (tmp_path / "a.log.1.gz").write_bytes(gzip.compress(BODY))
    (tmp_path / "a.log.2.bz2").write_bytes(bz2.compress(BODY))
    (tmp_path / "a.log.3.xz").write_bytes(lzma.compress(BODY))
    for name, kind in (("a.log", "none"), ("a.log.1.gz", "gzip"), ("a.log.2.bz2", "bz2"),
                       ("a.log.3.xz", "xz")):
        blocks, reader = read_all(tmp_path / name, block_bytes=4096)
        assert text_of(blocks).split(b"\n") == LINES, name
        out = reader.outcome
        assert (out.complete, out.sampled, out.problem) == (True, False, None)
        assert out.compression == kind
        assert out.lines == 2000 and out.bytes_read == len(BODY)
        assert [b.first_line_no for b in blocks] == sorted(b.first_line_no for b in blocks)


def test_block_line_numbers_are_exact(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(BODY)
    blocks, _ = read_all(tmp_path / "a.log", block_bytes=1000)
    for block in blocks:
        first = block.data.split(b"\n", 1)[0]
        assert first == f"line {block.first_line_no} ok".encode()


def test_a_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path: Path) -> None:
    data = gzip.compress(BODY * 50)
    (tmp_path / "t.log.gz").write_bytes(data[: len(data) // 2])
    blocks, reader = read_all(tmp_path / "t.log.gz")
    out = reader.outcome
    assert out.problem is not None and out.problem.reason == UnknownReason.UNPARSEABLE
    assert not out.complete and out.bytes_read > 0 and text_of(blocks).startswith(b"line 1 ok")


def test_a_corrupt_gzip_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "c.log.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-garbage-garbage")
    blocks, reader = read_all(tmp_path / "c.log.gz")
    assert blocks == [] or text_of(blocks) == b""
    assert reader.outcome.problem is not None


def test_a_gzip_bomb_stops_at_the_budget(tmp_path: Path) -> None:
    bomb = gzip.compress(b"a" * (64 << 20), compresslevel=9)
    (tmp_path / "bomb.log.gz").write_bytes(bomb)
    assert len(bomb) < (1 << 20)
    blocks, reader = read_all(tmp_path / "bomb.log.gz", max_bytes=2 << 20)
    out = reader.outcome
    assert out.sampled and not out.complete and out.bytes_read == 2 << 20
    assert max(len(b.data) for b in blocks) <= 2 << 20


def test_a_budget_below_the_size_of_a_small_file_reads_head_and_tail(tmp_path: Path) -> None:
    (tmp_path / "big.log").write_bytes(BODY)
    blocks, reader = read_all(tmp_path / "big.log", max_bytes=1000)
    out = reader.outcome
    assert out.sampled and not out.complete and out.sampling == "windows"
    assert out.bytes_read <= 1000 and out.windows == 2
    assert text_of(blocks).startswith(b"line 1 ok")
    assert blocks[-1].data.endswith(b"line 2000 ok") and blocks[-1].first_line_no == 0
    _, exact = read_all(tmp_path / "big.log", max_bytes=len(BODY))
    assert exact.outcome.complete and not exact.outcome.sampled


BIG_LINES = [f"{i:07d} request served in {i % 977} ms".encode() for i in range(1, 120_001)]
BIG = b"\n".join(BIG_LINES) + b"\n"


def test_a_large_file_is_sampled_at_head_tail_and_random_offsets(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(BIG)
    budget = 1 << 20
    blocks, reader = read_all(path, max_bytes=budget, block_bytes=64 * 1024)
    out = reader.outcome
    assert (out.sampled, out.complete, out.sampling, out.problem) == (True, False, "windows", None)
    assert out.windows == 2 + 4 and out.bytes_read <= budget and out.size == len(BIG)
    for block in blocks:
        # Offsets are exact, and so are line numbers where they are known.
        assert BIG[block.offset:block.offset + len(block.data)] == block.data
        first = block.data.split(b"\n", 1)[0]
        assert first in BIG_LINES
        if block.first_line_no:
            assert BIG_LINES[block.first_line_no - 1] == first
    unnumbered = [b for b in blocks if b.first_line_no == 0]
    assert unnumbered and min(b.offset for b in unnumbered) > len(BIG) // 8
    assert blocks[-1].data.endswith(BIG_LINES[-1])
    assert out.lines == sum(b.data.count(b"\n") + 1 for b in blocks)


def test_the_sampling_plan_stays_within_budget_and_never_overlaps() -> None:
    rnd = random.Random(3)
    for size, budget in ((10_000, 1000), (50 << 20, 1 << 20), (9 << 30, 256 << 20)):
        windows = plan_windows(size, budget, rnd)
        assert sum(length for _, length in windows) == budget
        assert windows[0][0] == 0 and windows[-1] == (size - budget // 4, budget // 4)
        for (a, la), (b, _) in itertools.pairwise(windows):
            assert a + la <= b
    assert plan_windows(500, 1000, rnd) == [(0, 500)]


def test_the_sampled_tail_keeps_a_last_line_without_newline(tmp_path: Path) -> None:
    (tmp_path / "t.log").write_bytes(BIG + b"the very last line")
    blocks, reader = read_all(tmp_path / "t.log", max_bytes=200_000)
    assert blocks[-1].data == b"the very last line" and blocks[-2].data.endswith(BIG_LINES[-1])
    assert reader.outcome.problem is None


def test_a_large_compressed_file_is_sampled_from_its_head(tmp_path: Path) -> None:
    (tmp_path / "a.log.1.gz").write_bytes(gzip.compress(BIG, compresslevel=1))
    blocks, reader = read_all(tmp_path / "a.log.1.gz", max_bytes=100_000)
    out = reader.outcome
    assert (out.sampled, out.sampling, out.compression, out.windows) == (True, "head", "gzip", 0)
    assert out.bytes_read == 100_000 and blocks[0].first_line_no == 1
    # The partial line the budget cut off is not scanned.
    assert text_of(blocks).split(b"\n")[-1] in BIG_LINES


def test_any_stream_can_be_cut_into_blocks() -> None:
    out = ReadOutcome()
    blocks = list(stream_blocks(io.BytesIO(gzip.compress(BODY)), 1 << 20, out))
    assert text_of(blocks).split(b"\n") == LINES and out.complete and out.compression == "gzip"


def test_a_ranged_read_of_a_gzip_object_is_a_sample_not_corruption() -> None:
    data = gzip.compress(BIG, compresslevel=1)
    out = ReadOutcome()
    blocks = list(stream_blocks(io.BytesIO(data[:20_000]), 1 << 30, out, ends_source=False))
    assert out.problem is None and out.sampled and not out.complete and blocks
    cut = ReadOutcome()
    list(stream_blocks(io.BytesIO(data[:20_000]), 1 << 30, cut))
    assert cut.problem is not None and cut.problem.reason == UnknownReason.UNPARSEABLE


def test_an_unreadable_file_is_access_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.log"
    path.write_bytes(BODY)
    path.chmod(0)
    assert _reason_as_unprivileged(path) == UnknownReason.ACCESS_DENIED.value


def _reason_as_unprivileged(path: Path) -> str:
    """Read `path` as an unprivileged user (a forked child when we are root) and say why not."""
    if os.geteuid() != 0:
        _, reader = read_all(path)
        return reader.outcome.problem.reason.value if reader.outcome.problem else "read"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and exits at once
        try:
            os.setgid(65534)
            os.setuid(65534)
            _, reader = read_all(path)
            problem = reader.outcome.problem
            os.write(write_end, (problem.reason.value if problem else "read").encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read().decode()


def test_a_ten_megabyte_line_is_scanned_in_pieces(tmp_path: Path) -> None:
    (tmp_path / "long.log").write_bytes(b"first\n" + b"y" * (10 << 20) + b" tail\nlast")
    blocks, reader = read_all(tmp_path / "long.log")
    assert reader.outcome.long_lines == 1 and reader.outcome.lines == 3
    assert max(len(b.data) for b in blocks) <= 2 << 20
    assert {b.first_line_no for b in blocks if b.data.startswith(b"y")} == {2}
    assert (blocks[-1].first_line_no, blocks[-1].data) == (3, b"last")
    assert blocks[-1].offset == len(b"first\n") + (10 << 20) + len(b" tail\n")


def test_binary_files_are_skipped_by_sniffing(tmp_path: Path) -> None:
    (tmp_path / "core.log").write_bytes(os.urandom(20_000))
    blocks, reader = read_all(tmp_path / "core.log")
    assert blocks == [] and reader.outcome.binary
    assert reader.outcome.problem is not None
    assert reader.outcome.problem.reason == UnknownReason.NOT_SUPPORTED


def test_text_with_stray_nul_bytes_and_invalid_utf8_is_still_text() -> None:
    sample = (b"2026-12-03 INFO ok caf\xe9 \xff\n" * 200) + b"\x00" * 20
    assert not looks_binary(sample)
    assert looks_binary(b"\x00" * 4000 + b"x" * 4000)


def test_unreadable_paths_become_problems(tmp_path: Path) -> None:
    (tmp_path / "dir.log").mkdir()
    os.symlink(tmp_path / "missing", tmp_path / "broken.log")
    for name, reason in (("dir.log", UnknownReason.NOT_SUPPORTED),
                         ("broken.log", UnknownReason.NOT_VISIBLE),
                         ("never-there.log", UnknownReason.NOT_VISIBLE)):
        blocks, reader = read_all(tmp_path / name)
        assert blocks == [] and reader.outcome.problem is not None
        assert reader.outcome.problem.reason == reason, name


def test_a_fifo_without_a_writer_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.log")
    result: list[LogFileReader] = []
    worker = threading.Thread(target=lambda: result.append(read_all(tmp_path / "pipe.log")[1]),
                              daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert result, "reading a FIFO hung"
    assert result[0].outcome.problem is not None


def test_a_file_that_grows_or_vanishes_while_read_ends_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "live.log"
    path.write_bytes(BODY)
    reader = LogFileReader(str(path), max_bytes=1 << 30, block_bytes=1024)
    stream = reader.blocks()
    first = next(stream)
    with path.open("ab") as out:
        out.write(b"appended 1\n")
    path.unlink()
    rest = list(stream)
    assert first.first_line_no == 1 and rest
    assert reader.outcome.complete and reader.outcome.problem is None


def test_no_trailing_newline_keeps_the_last_line(tmp_path: Path) -> None:
    (tmp_path / "n.log").write_bytes(b"a\nb\nc")
    blocks, reader = read_all(tmp_path / "n.log")
    assert text_of(blocks) == b"a\nb\nc" and reader.outcome.lines == 3


def test_reading_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(BODY)
    before = (path.stat().st_mtime_ns, path.stat().st_size, sorted(os.listdir(tmp_path)))
    read_all(path)
    discover([str(tmp_path)])
    assert (path.stat().st_mtime_ns, path.stat().st_size, sorted(os.listdir(tmp_path))) == before
    assert path.read_bytes() == BODY
