"""identity.reconcile: every identity case of RELIABILITY.md §4, without a filesystem."""

from __future__ import annotations

from logwatch.identity import Continue, Gone, Moved, New, Truncated, reconcile
from logwatch.records import FileSnapshot, TrackedFile


def snap(path: str, ino: int, size: int = 100, attr: str = "a") -> FileSnapshot:
    return FileSnapshot(path, path, "app.log", 1, ino, size, 0, 0, attr, path.endswith(".gz"))


def row(
    rid: int,
    path: str,
    ino: int,
    offset: int = 100,
    size: int = 100,
    attr: str = "a",
    status: str = "active",
) -> TrackedFile:
    return TrackedFile(rid, path, 7, 1, ino, size, 0, attr, 64, f"fp{rid}", offset, 10, status)


def decide(
    snaps: list[FileSnapshot],
    rows: list[TrackedFile],
    *,
    valid: bool = True,
    carries: set[tuple[int, str]] | None = None,
    retired: list[TrackedFile] | None = None,
) -> list[object]:
    """``carries`` lists (row id, path) pairs whose content matches."""
    return reconcile(
        snaps,
        {r.path: r for r in rows},
        still_valid=lambda r, s: valid,
        carries=lambda r, s: (r.id, s.path) in (carries or set()),
        retired=lambda s: retired or [],
        stream_of=lambda s: 7,
    )


def test_unchanged_file_continues_without_any_content_check() -> None:
    r = row(1, "app.log", 11)
    calls: list[str] = []
    actions = reconcile(
        [snap("app.log", 11)],
        {"app.log": r},
        still_valid=lambda *a: calls.append("valid") or True,
        carries=lambda *a: calls.append("carries") or True,
        retired=lambda s: [],
        stream_of=lambda s: 7,
    )
    assert actions == [Continue(snap("app.log", 11), r)] and calls == []


def test_grown_and_valid_continues() -> None:
    r = row(1, "app.log", 11)
    s = snap("app.log", 11, size=150, attr="b")
    assert decide([s], [r]) == [Continue(s, r)]


def test_shrunk_below_offset_is_truncated() -> None:
    r = row(1, "app.log", 11)
    s = snap("app.log", 11, size=10, attr="b")
    assert decide([s], [r]) == [Truncated(s, r)]


def test_rewritten_past_the_old_offset_is_truncated() -> None:
    r = row(1, "app.log", 11)
    s = snap("app.log", 11, size=500, attr="b")  # bigger, but the marker no longer matches
    assert decide([s], [r], valid=False) == [Truncated(s, r)]


def test_rename_rotation_moves_the_row_and_the_new_file_starts_at_zero() -> None:
    old = row(1, "app.log", 11, offset=80, size=100)
    rotated, fresh = snap("app.log.1", 11, size=120, attr="b"), snap("app.log", 12, size=30)
    actions = decide([fresh, rotated], [old], carries={(1, "app.log.1")})
    assert actions == [Moved(rotated, old), New(fresh, None)]


def test_inode_reuse_with_other_content_is_a_new_file() -> None:
    old = row(1, "app.log", 11)
    reused = snap("other.log", 11, size=40)  # same inode number, content does not match
    actions = decide([reused], [old])
    assert actions == [New(reused, None), Gone(old, "deleted", 0)]


def test_copytruncate_resumes_the_copy_at_the_old_offset() -> None:
    old = row(1, "app.log", 11, offset=100)
    truncated = snap("app.log", 11, size=20, attr="b")
    copy = snap("app.log.1", 12, size=100)
    actions = decide([truncated, copy], [old], carries={(1, "app.log.1")})
    assert actions == [Truncated(truncated, old), New(copy, old)]


def test_compressed_copy_in_the_same_poll_adopts_the_row() -> None:
    old = row(1, "app.log.1", 11, offset=100)
    gz = snap("app.log.1.gz", 13, size=40)
    assert decide([gz], [old], carries={(1, "app.log.1.gz")}) == [Moved(gz, old)]


def test_compressed_copy_of_a_retired_file_resumes() -> None:
    gone = row(1, "app.log.1", 11, offset=100, status="deleted")
    gz = snap("app.log.1.gz", 13, size=40)
    assert decide([gz], [], carries={(1, "app.log.1.gz")}, retired=[gone]) == [New(gz, gone)]


def test_same_first_bytes_but_different_files_are_both_new() -> None:
    a, b = snap("a.log", 21), snap("b.log", 22)
    assert decide([a, b], []) == [New(a, None), New(b, None)]


def test_deleted_with_unread_bytes_reports_the_gap() -> None:
    r = row(1, "app.log", 11, offset=100, size=140)
    assert decide([], [r]) == [Gone(r, "deleted", 40)]


def test_atomic_replace_retires_the_old_row_as_replaced() -> None:
    r = row(1, "app.log", 11, offset=100, size=100)
    s = snap("app.log", 12, size=60)
    assert decide([s], [r]) == [New(s, None), Gone(r, "replaced", 0)]


def test_replacement_that_keeps_the_old_content_continues_on_the_new_inode() -> None:
    r = row(1, "app.log", 11, offset=100, size=100)
    s = snap("app.log", 12, size=160)  # e.g. an editor's save: old bytes first, then new ones
    assert decide([s], [r], carries={(1, "app.log")}) == [Moved(s, r)]
