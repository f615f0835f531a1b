"""Which stored file does each file on disk continue? (RELIABILITY.md §4, "identity decision".)

Pure decisions over records; the content checks that need a file (fingerprint prefix, offset
marker) come in as callables, so every case is testable without a filesystem. The pipeline carries
out the actions against the store, in the order they are returned.

Per poll, in this order:
1. same path, same inode: continue, unless the file shrank below its offset or its fingerprint or
   offset marker no longer match (truncated, or truncated and rewritten past the old offset): then
   the old row is retired and the file is read again from 0;
2. a stored file's inode now at another path (rename rotation): the row moves, reading continues;
3. a file with no row: a copy or compressed copy of a file of its stream that is gone, truncated
   or unclaimed (copytruncate, delaycompress) continues from that file's offset; else it is new;
4. stored files not seen any more are deleted (or replaced at their path), their unread bytes
   recorded as a gap.
Inode alone never decides: a reused inode whose content does not match is a new file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from logwatch.records import FileSnapshot, TrackedFile


@dataclass(frozen=True, slots=True)
class Continue:
    """Keep reading ``row`` (the file is unchanged, grew, or was validated)."""

    snap: FileSnapshot
    row: TrackedFile


@dataclass(frozen=True, slots=True)
class Truncated:
    """Same inode, but the content before the offset changed: retire ``row``, read from 0."""

    snap: FileSnapshot
    row: TrackedFile


@dataclass(frozen=True, slots=True)
class Moved:
    """``row`` is now at ``snap.path`` (renamed, or adopted by a copy of it on a new inode)."""

    snap: FileSnapshot
    row: TrackedFile


@dataclass(frozen=True, slots=True)
class New:
    """A file with no row. ``resume`` is a retired row whose content it carries (a copy or
    compressed copy): reading starts at that row's offset instead of 0."""

    snap: FileSnapshot
    resume: TrackedFile | None = None


@dataclass(frozen=True, slots=True)
class Gone:
    """``row`` is no longer on disk; ``gap_bytes`` were never read (the loss, reported)."""

    row: TrackedFile
    status: str  # "deleted" or "replaced"
    gap_bytes: int


Action = Continue | Truncated | Moved | New | Gone


def reconcile(
    snaps: Sequence[FileSnapshot],
    active: Mapping[str, TrackedFile],
    *,
    still_valid: Callable[[TrackedFile, FileSnapshot], bool],
    carries: Callable[[TrackedFile, FileSnapshot], bool],
    retired: Callable[[FileSnapshot], Iterable[TrackedFile]],
    stream_of: Callable[[FileSnapshot], int],
) -> list[Action]:
    """Decide every file's fate.

    ``still_valid(row, snap)``: the bytes ``row`` read are still the first bytes of ``snap``
    (only asked when the file's attributes changed). ``carries(row, snap)``: ``snap`` begins with
    the content ``row`` had read (fingerprint prefix and offset marker match). ``retired(snap)``:
    earlier rows of the same stream that are no longer active, newest first. ``stream_of(snap)``:
    the stream id the file belongs to (copies are only looked for within a stream).
    """
    actions: list[Action] = []
    claimed: set[int] = set()
    placed: set[str] = set()
    released: list[TrackedFile] = []  # truncated this poll: their content may live on in a copy

    for snap in snaps:  # 1. same path, same inode
        row = active.get(snap.path)
        if row is None or (row.dev, row.ino) != (snap.dev, snap.ino):
            continue
        claimed.add(row.id)
        placed.add(snap.path)
        # Offsets in a .gz/.bz2 count decompressed bytes: only a plain file's size says anything.
        fits = snap.compressed or row.offset <= snap.size
        unchanged = row.attr_hash == snap.attr_hash and fits
        if unchanged or (fits and still_valid(row, snap)):
            actions.append(Continue(snap, row))
        else:
            actions.append(Truncated(snap, row))
            released.append(row)

    by_inode = {(s.dev, s.ino): s for s in snaps if s.path not in placed}
    for row in active.values():  # 2. renamed: the inode is at another path, same content
        if row.id in claimed:
            continue
        renamed = by_inode.get((row.dev, row.ino))
        if renamed is not None and renamed.path not in placed and carries(row, renamed):
            claimed.add(row.id)
            placed.add(renamed.path)
            actions.append(Moved(renamed, row))

    unclaimed = [row for row in active.values() if row.id not in claimed]
    for snap in snaps:  # 3. files with no row: a copy of something known, or new
        if snap.path in placed:
            continue
        placed.add(snap.path)
        stream = stream_of(snap)
        candidates = [r for r in unclaimed if r.id not in claimed and r.stream_id == stream]
        match = next((r for r in candidates if carries(r, snap)), None)
        if match is not None:  # e.g. app.log.1 -> app.log.1.gz in the same poll
            claimed.add(match.id)
            actions.append(Moved(snap, match))
            continue
        earlier = [*released, *retired(snap)]
        resume = next((r for r in earlier if r.offset > 0 and carries(r, snap)), None)
        actions.append(New(snap, resume))

    on_disk = {s.path for s in snaps}
    for row in active.values():  # 4. what is left is gone
        if row.id not in claimed:
            status = "replaced" if row.path in on_disk else "deleted"
            actions.append(Gone(row, status, max(row.size - row.offset, 0)))
    return actions
