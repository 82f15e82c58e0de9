"""Journal segments (see :mod:`._journal`): the files in ``<ledger>-pending/`` that hold a process's taped
calls, one framed record each (length and CRC-32 of the record's tuple as a JSON array), how they are made,
read back, and found once their process has died.

A record is written with orjson: ~3.9k instructions, where ``marshal.dumps`` took ~12.7k (it builds and frees
a hash table of the objects it has written, for back-references a flat record never has), on every taped
call. Segments older versions wrote hold ``marshal`` payloads, and are still read: a JSON array starts with
``[``, which no ``marshal``-ed tuple does."""

from __future__ import annotations

import contextlib
import marshal
import mmap
import os
import struct
import sys
import uuid
import zlib
from pathlib import Path
from typing import Any

import orjson

try:
    import fcntl
except ImportError:  # Windows: no flock, so no journal; every row is committed on the call's path
    fcntl = None  # type: ignore[assignment]

__all__ = ["SEGMENT_BYTES", "SUPPORTED", "Segment", "directory_of", "frame", "orphans", "read_exchanges"]

SUPPORTED = fcntl is not None
SEGMENT_BYTES = 1 << 20  # ~4,000 records
# The first pages are made writable up front (MADV_POPULATE_WRITE, Linux 5.14+): a first write into a page of
# a fresh file's mapping faults (page_mkwrite; ~4 µs alone, 50+ µs measured inside an SDK call), so every
# ~20th call paid that. A commit seals the segment, and one is due by MAX_PENDING (512) records of ~250 bytes.
POPULATED_BYTES = 160 << 10
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform == "linux" else None)
SUFFIX = ".rows"
_HEADER = struct.Struct("<II")  # payload length, crc32 of the payload


def directory_of(path: Path) -> Path:
    return path.with_name(path.name + "-pending")


def frame(record: tuple[Any, ...]) -> bytes:
    """``record`` framed: its length and CRC-32, then the record. Its values are JSON's (str, int of at most
    64 bits, float, None, and tuples, lists and str-keyed dicts of them); anything else raises TypeError (the
    taping caller records that call at once instead). Read back, tuples inside it are lists."""
    payload = orjson.dumps(record)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class Segment:
    """A segment file, preallocated and memory-mapped: appending a record is a copy into the page cache, with
    no system call, so the call's thread keeps the GIL (an ``os.write`` gave it up, and handing it back and
    forth with the flusher thread cost ~12 µs a call). ``posix_fallocate`` reserves the blocks first, so a
    full disk is an OSError here, never a SIGBUS on a later write into the mapping.

    Making one costs ~0.2 ms, and the first write into a fresh file's mapping ~0.3 ms more (the filesystem
    readies its block; later pages ~4 µs each), so the first page is written here, not by the first record:
    the journal makes its next segment ahead, off the calls' path (``Journal.prepare_spare``), with
    ``populate``: its first ``POPULATED_BYTES`` made writable too, so no record appended there faults."""

    __slots__ = ("fd", "mm", "name", "pos")

    def __init__(self, directory: Path, pid: int, *, populate: bool = False) -> None:
        directory.mkdir(exist_ok=True)
        self.name = f"{pid}-{uuid.uuid4().hex[:16]}{SUFFIX}"
        self.fd = os.open(directory / self.name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(self.fd, 0, SEGMENT_BYTES)
            else:  # macOS: zeros written, so the blocks are taken now all the same
                os.write(self.fd, bytes(SEGMENT_BYTES))
            self.mm = mmap.mmap(self.fd, SEGMENT_BYTES)
            os.pwrite(self.fd, bytes(mmap.PAGESIZE), 0)  # the block readied without the GIL (~15 µs) ...
            self.mm[0:1] = b"\0"  # ... and the first page mapped: a zero length ends the (empty) segment
            if populate and _POPULATE_WRITE is not None:
                with contextlib.suppress(OSError, ValueError):  # an older kernel: pages fault when reached
                    self.mm.madvise(_POPULATE_WRITE, 0, POPULATED_BYTES)
        except BaseException:
            os.close(self.fd)
            with contextlib.suppress(OSError):
                os.unlink(directory / self.name)
            raise
        self.pos = 0

    def append(self, frame: bytes) -> bool:
        """Copy ``frame`` in; False when it does not fit (the caller starts another segment)."""
        end = self.pos + len(frame)
        if end > SEGMENT_BYTES:
            return False
        self.mm[self.pos:end] = frame
        self.pos = end
        return True

    def close(self, directory: Path | None = None) -> None:
        """Unmap and close; with ``directory``, unlink it first (before its lock goes, so nobody replays a
        segment its calls are committed from)."""
        if directory is not None:
            with contextlib.suppress(OSError):  # failing that, a replay finds its meta note
                os.unlink(directory / self.name)
        self.mm.close()
        os.close(self.fd)


def read_exchanges(path: Path) -> list[tuple[Any, ...]]:
    """The exchanges framed in a segment, up to its zero-filled rest; a frame cut short or damaged (the
    process died while copying it in) and everything after it are left out."""
    data = path.read_bytes()
    rows, at = [], 0
    while at + _HEADER.size <= len(data):
        size, crc = _HEADER.unpack_from(data, at)
        payload = data[at + _HEADER.size:at + _HEADER.size + size]
        if not size or len(payload) < size or zlib.crc32(payload) != crc:
            break
        rows.append(tuple(orjson.loads(payload) if payload[:1] == b"[" else marshal.loads(payload)))
        at += _HEADER.size + size
    return rows


def orphans(path: Path) -> list[tuple[Path, int]]:
    """Segments of processes that died (no lock held on them), each with an fd holding its lock: the
    caller replays them, unlinks them, then closes the fd."""
    directory = directory_of(path)
    if fcntl is None or not directory.is_dir():
        return []
    found = []
    for segment in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            fd = os.open(segment, os.O_RDONLY)
        except OSError:  # moved and unlinked meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process is alive (or another one replays it now)
            os.close(fd)
            continue
        if not segment.exists():  # unlinked by its owner between our listing and our lock
            os.close(fd)
            continue
        found.append((segment, fd))
    return found
