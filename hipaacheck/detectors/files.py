"""
Streaming reader for local log sinks: paths, globs and directories, plain or compressed.

`discover` expands a sink's configured paths into the files to read. Globs (`*`, `?`, `[...]`
and `**` for any depth) and directories are walked without following a link out of the
configured roots: a link whose target lies outside every root is reported as a problem, never
read. A file pattern also picks up its rotated siblings (`app.log.1`, `app.log.2.gz`,
`app.log-20261203`, `app.log-20261203.xz`).

`LogFileReader` streams one file in blocks of complete lines, in bounded memory whatever the
file holds. Compression is recognised by its magic bytes (gzip; bz2 and xz through the
standard library), binary content by sniffing, a line longer than the cap is cut into pieces
that keep its line number, and a byte budget stops the read (the outcome says it was
sampled). Every failure (unreadable, not a regular file, truncated or corrupt stream) becomes
a recorded `Unknown` on the outcome, never an exception.

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
import re
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from hipaacheck.detectors.phi import Block
from hipaacheck.model import Unknown, UnknownReason

logger = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20
"""How much is read at a time; a block holds complete lines only."""
MAX_LINE_BYTES = 1 << 20
"""A longer line is scanned in pieces of this size, all with the line's number."""
SNIFF_BYTES = 8192

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
# Reading one file.

@dataclass
class ReadOutcome:
    """
    How reading one file went: bytes and lines read, whether the whole file was read or only
    a budgeted sample, and the problem that stopped it, if any.
    """

    bytes_read: int = 0
    lines: int = 0
    complete: bool = False
    sampled: bool = False
    compression: str = "none"
    long_lines: int = 0
    problem: Unknown | None = None
    binary: bool = False


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_GZIP, _BZ2, _XZ = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"


def _decompressing(raw: io.BufferedIOBase, head: bytes) -> tuple[io.BufferedIOBase, str]:
    if head.startswith(_GZIP):
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"
    if head.startswith(_BZ2):
        return bz2.BZ2File(raw, mode="rb"), "bz2"
    if head.startswith(_XZ):
        return lzma.LZMAFile(cast("IO[bytes]", raw), mode="rb"), "xz"
    return raw, "none"


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


@dataclass
class LogFileReader:
    """
    Streams one log file as `Block`s of complete lines within a byte budget.

    Iterate `blocks()` once; afterwards `outcome` says how far the read got. The budget counts
    decompressed bytes, so a compression bomb stops at the budget like any large file.
    """

    path: str
    max_bytes: int
    block_bytes: int = BLOCK_BYTES
    max_line_bytes: int = MAX_LINE_BYTES
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
            yield from self._stream(raw)

    def _open(self) -> io.BufferedIOBase | None:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; non-regular files are refused.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(self.path, flags)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            self.outcome.problem = Unknown(UnknownReason.NOT_SUPPORTED, f"the path is {kind}")
            return None
        return os.fdopen(fd, "rb")

    def _stream(self, raw: io.BufferedIOBase) -> Iterator[Block]:
        try:
            head = raw.read(6)
            raw.seek(0)
        except OSError as exc:
            self.outcome.problem = _unknown_for(exc, "the file")
            return
        stream, self.outcome.compression = _decompressing(raw, head)
        try:
            yield from self._lines(stream)
        finally:
            if stream is not raw:
                stream.close()

    def _stream_problem(self, exc: BaseException) -> Unknown:
        at = f"after {self.outcome.bytes_read} bytes"
        if self.outcome.compression != "none":
            return Unknown(UnknownReason.UNPARSEABLE,
                           f"the {self.outcome.compression} stream is truncated or corrupt {at}")
        if isinstance(exc, OSError):
            return _unknown_for(exc, f"the file {at}")
        return Unknown(UnknownReason.INTERRUPTED, f"the read stopped {at}")

    def _lines(self, stream: io.BufferedIOBase) -> Iterator[Block]:
        """Read within the budget, sniff the first chunk, cut at newlines, cap long lines."""
        out = self.outcome
        carry, line_no, in_long, first = b"", 1, False, True
        while True:
            room = self.max_bytes - out.bytes_read
            # NOTE: a file larger than the budget is sampled from its head only, so that line
            # numbers stay exact and compressed streams need no seeking; head, tail and
            # random-offset sampling is left to issue 6.
            if room <= 0:
                out.sampled = not self._at_eof(stream)
                out.complete = not out.sampled
                break
            try:
                # read1: one underlying read, so what was decoded before a truncation is kept.
                chunk = stream.read1(min(self.block_bytes, room))
            except (EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
                out.problem = self._stream_problem(exc)
                break
            if first and looks_binary(chunk[:SNIFF_BYTES]):
                out.binary = True
                out.problem = Unknown(UnknownReason.NOT_SUPPORTED,
                                      "binary content, not a text log; skipped")
                return
            first = False
            if not chunk:
                out.complete = True
                break
            out.bytes_read += len(chunk)
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut >= 0:
                yield Block(line_no, data[:cut])
                line_no += data.count(b"\n", 0, cut) + 1
                carry, in_long = data[cut + 1:], False
            else:
                carry = data
            if len(carry) >= self.max_line_bytes:
                # A line longer than the cap is scanned in pieces under its own line number.
                out.long_lines += 0 if in_long else 1
                yield Block(line_no, carry)
                carry, in_long = b"", True
        if carry:
            yield Block(line_no, carry)
        out.lines = line_no if carry or in_long else line_no - 1

    @staticmethod
    def _at_eof(stream: io.BufferedIOBase) -> bool:
        try:
            return not stream.read(1)
        except (EOFError, OSError, zlib.error, lzma.LZMAError):
            return False
