"""
Streaming reader for local log sinks: paths, globs and directories, plain or compressed.

`discover` expands a sink's configured paths into the files to read. Globs (`*`, `?`, `[...]`
and `**` for any depth) and directories are walked without following a link out of the
configured roots: a link whose target lies outside every root is reported as a problem, never
read. A file pattern also picks up its rotated siblings (`app.log.1`, `app.log.2.gz`,
`app.log-20261203`, `app.log-20261203.xz`).

`LogFileReader` streams one file in blocks of complete lines, in bounded memory whatever the
file holds. Compression is recognised by its magic bytes (gzip; bz2 and xz through the
standard library), binary content by sniffing, and a line longer than the cap is cut into
pieces that keep its line number. A plain file larger than its byte budget is sampled: half
the budget from its head (with exact line numbers), a quarter from its tail and the rest in
windows at random offsets between them (lines there carry byte offsets, not numbers). A
compressed file cannot be sought, so its budget is spent on its head. Every failure
(unreadable, not a regular file, truncated or corrupt stream) becomes a recorded `Unknown` on
the outcome, never an exception.

`stream_blocks` does the same cutting for any binary stream (an S3 object body, a pod log
response), so every sink is read by one piece of code.

Nothing here logs or raises with file content; paths are logged at debug level only.
"""

from __future__ import annotations

import bz2
import errno
import fnmatch
import gzip
import io
import logging
import lzma
import os
import random
import re
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from hipaacheck.detectors.phi import Block
from hipaacheck.model import Unknown, UnknownReason

logger = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20
"""How much is read at a time; a block holds complete lines only."""
MAX_LINE_BYTES = 1 << 20
"""A longer line is scanned in pieces of this size, all with the line's number."""
SNIFF_BYTES = 8192
MIN_WINDOW_BYTES = 64 * 1024
"""The smallest random-offset window a sampled file is read in."""
MAX_RANDOM_WINDOWS = 8
MAX_SKIP_BYTES = 64 * 1024
"""A window starting inside a line skips to its end, unless the line is longer than this."""

_MAGIC = re.compile(r"[*?\[]")
_ROTATION = re.compile(r"(?:\.(?:gz|bz2|xz))?$")
_ROTATED_SUFFIX = re.compile(r"(?:[.-][0-9]{1,8}|-[0-9]{8}(?:[0-9]{2,6})?)$")


@dataclass(frozen=True)
class FileProblem:
    """A path that was configured or discovered but cannot be read, and why."""

    path: str
    unknown: Unknown


@dataclass(frozen=True)
class Discovery:
    """
    What a sink's paths expand to: the files to read, the paths that cannot be read, and the
    configured patterns that matched nothing.
    """

    files: tuple[str, ...]
    problems: tuple[FileProblem, ...]
    unmatched: tuple[str, ...]


def base_name(name: str) -> str:
    """A log file's name without rotation and compression suffixes: `a.log.2.gz` -> `a.log`."""
    name = _ROTATION.sub("", name, count=1)
    return _ROTATED_SUFFIX.sub("", name, count=1)


def _name_matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(base_name(name), pattern)


def _within(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _unknown_for(exc: OSError, what: str) -> Unknown:
    """The `Unknown` for an OS error while reading `what`, naming the access it lacked."""
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return Unknown(UnknownReason.ACCESS_DENIED, f"permission denied reading {what}",
                       needs=f"read permission on {what}")
    if code == errno.ENOENT:
        return Unknown(UnknownReason.NOT_VISIBLE, f"{what} does not exist (or vanished)")
    if code == errno.ELOOP:
        return Unknown(UnknownReason.NOT_SUPPORTED, f"{what} is a symbolic link loop")
    if code == errno.EISDIR:
        return Unknown(UnknownReason.NOT_SUPPORTED, f"{what} is a directory")
    return Unknown(UnknownReason.UNREACHABLE, f"cannot read {what} ({exc.strerror or code})")


class _Walker:
    """
    Expands patterns under a set of roots. A link is followed only to a target inside the
    roots, and a directory already on the current path is not entered again (no loops).
    """

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = roots
        self.files: dict[str, str] = {}
        self.problems: dict[str, Unknown] = {}
        self.touched = 0

    def add_file(self, path: str) -> None:
        """Record a candidate file, or the reason it cannot be read."""
        self.touched += 1
        real = os.path.realpath(path)
        if not _within(real, self.roots):
            self.problems[path] = _OUTSIDE
            return
        try:
            os.stat(path)
        except OSError as exc:
            self.problems[path] = _unknown_for(exc, "the file")
            return
        self.files.setdefault(real, path)

    def listing(self, directory: str) -> list[os.DirEntry[str]]:
        """The entries of a directory, or none (with a recorded problem) when unlistable."""
        try:
            with os.scandir(directory) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.touched += 1
            self.problems[directory] = _unknown_for(exc, "the directory listing")
            return []

    def descend(self, entry: os.DirEntry[str], stack: frozenset[str]) -> str | None:
        """The real path of a directory entry to enter, or None (a file, a loop, an exit)."""
        if not _entry_is_dir(entry):
            return None
        real = os.path.realpath(entry.path)
        if entry.is_symlink() and not _within(real, self.roots):
            self.touched += 1
            self.problems[entry.path] = _OUTSIDE
            return None
        return None if real in stack else real

    def walk(self, directory: str, stack: frozenset[str]) -> None:
        """Every file below a directory, at any depth."""
        for entry in self.listing(directory):
            real = self.descend(entry, stack)
            if real is not None:
                self.walk(entry.path, stack | {real})
            elif not _entry_is_dir(entry):
                self.add_file(entry.path)

    def glob(self, directory: str, parts: Sequence[str], stack: frozenset[str]) -> None:
        """Files below `directory` matching the remaining pattern components."""
        head, rest = parts[0], parts[1:]
        if head == "**":
            if not rest:
                self.walk(directory, stack)
                return
            self.glob(directory, rest, stack)
            for entry in self.listing(directory):
                real = self.descend(entry, stack)
                if real is not None:
                    self.glob(entry.path, parts, stack | {real})
            return
        for entry in self.listing(directory):
            if not rest:
                if _name_matches(entry.name, head) and not _entry_is_dir(entry):
                    self.add_file(entry.path)
                continue
            real = self.descend(entry, stack) if fnmatch.fnmatchcase(entry.name, head) else None
            if real is not None:
                self.glob(entry.path, rest, stack | {real})


_OUTSIDE = Unknown(UnknownReason.NOT_SUPPORTED,
                   "a symbolic link to a target outside the configured paths; not followed",
                   needs="list the link's target in the sink's paths")


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _root_of(pattern: str) -> tuple[str, list[str]]:
    """The directory a pattern starts from (its leading components without magic) and the rest."""
    parts = Path(pattern).parts
    for i, part in enumerate(parts):
        if _MAGIC.search(part):
            return str(Path(*parts[:i])) if i else ".", list(parts[i:])
    return pattern, []


def discover(patterns: Sequence[str]) -> Discovery:
    """
    Expand configured paths, globs and directories into files, each read once.

    The roots are the real directories the patterns start from (a file's own directory), and
    no link is followed out of them. A pattern that matches nothing is listed in `unmatched`.
    """
    starts = [_root_of(os.path.expanduser(p)) for p in patterns]
    roots = []
    for start, rest in starts:
        root = start if rest or os.path.isdir(start) else os.path.dirname(start) or "."
        roots.append(os.path.realpath(root))
    walker = _Walker(roots)
    unmatched = []
    for pattern, (start, rest) in zip(patterns, starts):
        before = walker.touched
        _expand(walker, start, rest)
        if walker.touched == before:
            unmatched.append(pattern)
    files = tuple(sorted(walker.files.values()))
    problems = tuple(FileProblem(p, u) for p, u in sorted(walker.problems.items()))
    return Discovery(files, problems, tuple(unmatched))


def _expand(walker: _Walker, start: str, rest: list[str]) -> None:
    stack = frozenset({os.path.realpath(start)})
    if rest:
        if os.path.isdir(start):
            walker.glob(start, rest, stack)
        return
    if os.path.isdir(start):
        walker.walk(start, stack)
        return
    directory, name = os.path.split(start)
    if not os.path.isdir(directory or "."):
        return
    if os.path.lexists(start):
        walker.add_file(start)
    for entry in walker.listing(directory or "."):
        if entry.name != name and base_name(entry.name) == name and not _entry_is_dir(entry):
            walker.add_file(entry.path)


# --------------------------------------------------------------------------------------------
# Reading: one stream, cut into blocks of complete lines.

@dataclass
class ReadOutcome:
    """
    How reading one source went: bytes and lines read, whether the whole source was read or
    only a budgeted sample, and the problem that stopped it, if any.

    `sampling` is `whole` (read to its end), `head` (the budget ran out; the head was read) or
    `windows` (head, tail and random-offset windows of a plain file); `windows` counts the
    stretches read, and `size` is the source's size in bytes when known (compressed size for a
    compressed file).
    """

    bytes_read: int = 0
    lines: int = 0
    complete: bool = False
    sampled: bool = False
    compression: str = "none"
    long_lines: int = 0
    problem: Unknown | None = None
    binary: bool = False
    sampling: str = "whole"
    windows: int = 0
    size: int | None = None


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_GZIP, _BZ2, _XZ = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"
_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


def compression_of(head: bytes) -> str:
    """The compression a stream's first bytes announce: `gzip`, `bz2`, `xz` or `none`."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZ2):
        return "bz2"
    if head.startswith(_XZ):
        return "xz"
    return "none"


def _decompressing(raw: IO[bytes], kind: str) -> IO[bytes]:
    if kind == "gzip":
        return cast("IO[bytes]", gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "bz2":
        return cast("IO[bytes]", bz2.BZ2File(raw, mode="rb"))
    if kind == "xz":
        return cast("IO[bytes]", lzma.LZMAFile(raw, mode="rb"))
    return raw


def looks_binary(sample: bytes) -> bool:
    """
    Whether a sample is binary rather than text: NUL bytes in more than a tenth of it, or
    control bytes and invalid UTF-8 in more than a fifth. Occasional NULs (a preallocated log
    after a crash) and occasional Latin-1 bytes still count as text.
    """
    if not sample:
        return False
    control = len(sample) - len(sample.translate(None, _CONTROL))
    invalid = sample.decode("utf-8", errors="replace").count("\ufffd") if max(sample) > 127 else 0
    return sample.count(0) > len(sample) // 10 or control + invalid > len(sample) // 5


class _Prefixed(io.RawIOBase):
    """A read-only stream that yields `head` and then the rest of `stream`."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._head))
        view[:n], self._head = self._head[:n], self._head[n:]
        if n < len(view):
            # Fill the rest from the stream: a sniff must see a full chunk, not the magic.
            data = self._stream.read(len(view) - n)
            view[n:n + len(data)] = data
            n += len(data)
        return n


@dataclass
class _Cut:
    """
    Cuts the bytes of one stretch of a source into blocks of complete lines.

    `line_no` is the number of the first line, or 0 when the stretch starts at an unknown line
    (a sampled window); `skip_first` drops the partial line a window starts in. A partial last
    line cut off by the budget, or by the end of a stream that does not end its source
    (`ends_source`), is dropped, except a piece of an over-long line.
    """

    out: ReadOutcome
    budget: int
    block_bytes: int
    max_line_bytes: int
    line_no: int = 1
    offset: int = 0
    skip_first: bool = False
    sniff: bool = False
    carry: bytes = b""
    in_long: bool = False
    eof: bool = False
    ends_source: bool = True

    def run(self, stream: IO[bytes]) -> Iterator[Block]:
        """Read within the budget; problems land on the outcome, `eof` says it reached the end."""
        used = 0
        while used < self.budget:
            try:
                # read1: one underlying read, so what was decoded before a truncation is kept.
                chunk = _read1(stream, min(self.block_bytes, self.budget - used))
            except _STREAM_ERRORS as exc:
                self.out.problem = _stream_problem(self.out, exc)
                break
            if self.sniff and looks_binary(chunk[:SNIFF_BYTES]):
                self.out.binary = True
                self.out.problem = Unknown(UnknownReason.NOT_SUPPORTED,
                                           "binary content, not a text log; skipped")
                return
            self.sniff = False
            if not chunk:
                self.eof = True
                break
            used += len(chunk)
            self.out.bytes_read += len(chunk)
            yield from self._take(chunk)
        else:
            self.eof = _at_eof(stream)  # the budget ran out: is there more?
        yield from self._flush(self.eof and self.ends_source)

    def _take(self, chunk: bytes) -> Iterator[Block]:
        data = self.carry + chunk
        if self.skip_first:
            cut = data.find(b"\n", 0, MAX_SKIP_BYTES)
            if cut < 0 and len(data) < MAX_SKIP_BYTES:
                self.carry = data
                return
            if cut < 0:
                # The window starts inside an over-long line: scan that in pieces instead.
                self.skip_first, self.in_long = False, True
                self.out.long_lines += 1
            else:
                self.offset += cut + 1
                data, self.skip_first = data[cut + 1:], False
        cut = data.rfind(b"\n")
        if cut >= 0:
            yield Block(self.line_no, data[:cut], self.offset)
            self._advance(data, cut)
            self.carry, self.in_long = data[cut + 1:], False
        else:
            self.carry = data
        if len(self.carry) >= self.max_line_bytes:
            # A line longer than the cap is scanned in pieces under its own line number.
            self.out.long_lines += 0 if self.in_long else 1
            yield Block(self.line_no, self.carry, self.offset)
            self.offset += len(self.carry)
            self.carry, self.in_long = b"", True

    def _advance(self, data: bytes, cut: int) -> None:
        lines = data.count(b"\n", 0, cut) + 1
        self.out.lines += lines
        if self.line_no:
            self.line_no += lines
        self.offset += cut + 1

    def _flush(self, at_end: bool) -> Iterator[Block]:
        """
        The last line: kept at the end of the source, or as the last piece of an over-long
        line; a partial line cut off by the budget is dropped.
        """
        if self.skip_first:
            return
        if self.carry and (at_end or self.in_long):
            yield Block(self.line_no, self.carry, self.offset)
        if self.in_long or (self.carry and at_end):
            self.out.lines += 1
        self.carry = b""


def _read1(stream: IO[bytes], size: int) -> bytes:
    read1 = getattr(stream, "read1", None)
    return bytes(read1(size) if read1 is not None else stream.read(size))


def _stream_problem(out: ReadOutcome, exc: BaseException) -> Unknown:
    at = f"after {out.bytes_read} bytes"
    if out.compression != "none":
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"the {out.compression} stream is truncated or corrupt {at}")
    if isinstance(exc, OSError):
        return _unknown_for(exc, f"the source {at}")
    return Unknown(UnknownReason.INTERRUPTED, f"the read stopped {at}")


def _at_eof(stream: IO[bytes]) -> bool:
    try:
        return not stream.read(1)
    except _STREAM_ERRORS:
        return False


def stream_blocks(stream: IO[bytes], max_bytes: int, outcome: ReadOutcome | None = None, *,
                  block_bytes: int = BLOCK_BYTES, max_line_bytes: int = MAX_LINE_BYTES,
                  ends_source: bool = True, first_line_no: int = 1, offset: int = 0,
                  decompress: bool = True) -> Iterator[Block]:
    """
    The blocks of complete lines in a binary stream, decompressed when its magic bytes say
    so, within `max_bytes` of (decompressed) content; `outcome` records how it went.

    `ends_source=False` says the stream is a leading range of a larger source (an S3 ranged
    GET): its end is where the sample ends, the partial line there is not scanned, and a
    compressed stream that ends early is a sample, not a corrupt file. A stream that starts
    inside a source (a tail range) passes `first_line_no=0`, the `offset` it starts at and
    `decompress=False`; its first, partial line is skipped.
    """
    out = outcome if outcome is not None else ReadOutcome()
    try:
        head = stream.read(6) if decompress else b""
    except _STREAM_ERRORS as exc:
        out.problem = _stream_problem(out, exc)
        return
    out.compression = compression_of(head) if decompress else out.compression
    source = _decompressing(cast("IO[bytes]", _Prefixed(head, stream)),
                            out.compression if decompress else "none")
    cutter = _Cut(out, max_bytes, block_bytes, max_line_bytes, line_no=first_line_no,
                  offset=offset, skip_first=first_line_no == 0, sniff=decompress,
                  ends_source=ends_source)
    try:
        yield from cutter.run(source)
        if out.problem is None and not out.binary:
            whole = cutter.eof and ends_source
            out.complete, out.sampled, out.sampling = whole, not whole, "whole" if whole else "head"
    finally:
        if source is not stream:
            source.close()
    if not ends_source and out.problem is not None and out.bytes_read > 0 \
            and out.problem.reason == UnknownReason.UNPARSEABLE:
        out.problem, out.sampled, out.complete, out.sampling = None, True, False, "head"


def plan_windows(size: int, budget: int, rnd: random.Random) -> list[tuple[int, int]]:
    """
    The (start, length) stretches a plain file of `size` bytes is sampled in within `budget`:
    half from the head, a quarter from the tail, the rest in up to eight windows at random
    offsets between them, one in each equal stratum so that they never overlap. A stretch
    after the head begins with the rest of the line it starts in, which is skipped.
    """
    if size <= budget:
        return [(0, size)]
    head, tail = budget // 2, budget // 4
    rest = budget - head - tail
    count = min(MAX_RANDOM_WINDOWS, rest // MIN_WINDOW_BYTES)
    if count == 0:
        return [(0, head + rest), (size - tail, tail)]
    width = rest // count
    region = size - tail - head
    stratum = region // count
    windows = [(0, head + rest - width * count)]
    for i in range(count):
        low = head + i * stratum
        windows.append((low + rnd.randrange(max(1, stratum - width + 1)), width))
    windows.append((size - tail, tail))
    return windows


@dataclass
class LogFileReader:
    """
    Streams one log file as `Block`s of complete lines within a byte budget.

    Iterate `blocks()` once; afterwards `outcome` says how far the read got. The budget counts
    decompressed bytes, so a compression bomb stops at the budget like any large file. A plain
    file larger than the budget is sampled in windows (see `plan_windows`) unless `sample` is
    off, when only its head is read.
    """

    path: str
    max_bytes: int
    block_bytes: int = BLOCK_BYTES
    max_line_bytes: int = MAX_LINE_BYTES
    sample: bool = True
    outcome: ReadOutcome = field(default_factory=ReadOutcome)

    def blocks(self) -> Iterator[Block]:
        """The file's content in blocks; problems end the stream and land on `outcome`."""
        try:
            raw = self._open()
        except OSError as exc:
            self.outcome.problem = _unknown_for(exc, "the file")
            return
        if raw is None:
            return
        with raw:
            yield from self._read(raw)

    def _open(self) -> IO[bytes] | None:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; non-regular files are refused.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(self.path, flags)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            self.outcome.problem = Unknown(UnknownReason.NOT_SUPPORTED, f"the path is {kind}")
            return None
        self.outcome.size = info.st_size
        return os.fdopen(fd, "rb")

    def _read(self, raw: IO[bytes]) -> Iterator[Block]:
        try:
            kind = compression_of(raw.read(6))
            raw.seek(0)
        except OSError as exc:
            self.outcome.problem = _unknown_for(exc, "the file")
            return
        size = self.outcome.size or 0
        if kind != "none" or size <= self.max_bytes or not self.sample:
            yield from stream_blocks(raw, self.max_bytes, self.outcome,
                                     block_bytes=self.block_bytes,
                                     max_line_bytes=self.max_line_bytes)
            return
        yield from self._windows(raw, size)

    def _windows(self, raw: IO[bytes], size: int) -> Iterator[Block]:
        """Head, random-offset and tail windows of a plain file larger than the budget."""
        out = self.outcome
        out.sampled, out.sampling = True, "windows"
        rnd = random.Random(zlib.crc32(f"{os.path.basename(self.path)}:{size}".encode()))
        for start, length in plan_windows(size, self.max_bytes, rnd):
            try:
                raw.seek(start)
            except OSError as exc:
                out.problem = _unknown_for(exc, "the file")
                return
            # A window after the head starts inside a line: that partial line is skipped.
            cutter = _Cut(out, length, self.block_bytes, self.max_line_bytes,
                          line_no=0 if start else 1, offset=start, skip_first=start > 0,
                          sniff=start == 0)
            out.windows += 1
            yield from cutter.run(raw)
            if out.problem is not None:
                return
