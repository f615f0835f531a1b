"""Runs the stages for one poll. The only module that knows their order.

watcher -> reader -> parser -> templates -> features -> detectors -> decide -> storage, one
transaction per file batch. Live mode scores each batch against the stream's statistics so far;
``--once`` mode first learns each stream completely on a scratch copy of its state, fits the stream
model on it, then processes (and commits) the stream with every event scored by that model.
"""

from __future__ import annotations

import dataclasses
import difflib
import gc
import logging
import os
import random
import re
import stat
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from logwatch import identity, parser, reader, watcher
from logwatch.ahead import Ahead, AheadFailed, can_fork
from logwatch.config import Config
from logwatch.crashpoints import crash_point
from logwatch.decide import STARTUP_EVENTS, decide, severity_from_tail, warmup_severity
from logwatch.detectors import NoveltyDetector, StreamDetector
from logwatch.errors import SourceError, StorageError
from logwatch.features import (
    FEATURE_NAMES,
    FeatureContext,
    StreamStats,
    as_matrix,
    event_features,
    has_trouble_words,
)
from logwatch.feedback import FeedbackRules
from logwatch.incidents import Incident
from logwatch.metrics import MetricsSink, NullMetrics
from logwatch.overview import Overview, OverviewResult
from logwatch.progress import ArchiveProgress, NullProgress, ProgressSink
from logwatch.records import (
    Anomaly,
    Event,
    EventSketch,
    Features,
    FileSnapshot,
    TemplateMatch,
    TemplateRow,
    TrackedFile,
    epoch_seconds,
)
from logwatch.storage import FileUpdate, Store, StoredModel, StoredStream, StreamUpdate
from logwatch.templates import StreamTemplates, _Recording

log = logging.getLogger(__name__)

_VARIABLE = re.compile(r"<[A-Za-z*]+>")
# A template is "rare" (worth a novelty check) up to this many events, "established" from this many.
_RARE_MAX = 3
_ESTABLISHED_MIN = 5
# Anomalies a poll hands on (to alerting) at most; the rest are stored and counted, not sent.
MAX_FOUND_PER_POLL = 10_000
# Example lines kept per template (the closest normal line shown beside an anomaly).
_EXAMPLE_CHARS = 500
# Identity: a fingerprint covers a file's first KiB; below 16 bytes it cannot tell files apart.
_FINGERPRINT_BYTES = 1024
_MIN_FINGERPRINT = 16
# --once learns a stream in a child process ahead of its turn from this much unread input; below,
# the fork and the transfer of what was learned cost more than the overlap gains.
LEARN_AHEAD_MIN_BYTES = 256 * 1024


@dataclass
class StreamRuntime:
    """What the pipeline keeps in memory for one stream; rebuilt from the database on demand."""

    id: int
    name: str
    templates: StreamTemplates
    stats: StreamStats
    detector: StreamDetector | None
    recent: deque[EventSketch]  # training reservoir: recent events the stream did not flag
    examples: dict[int, str] = field(default_factory=dict)  # template id -> a normal line of it
    since_fit: int = 0  # events since the stream model was (re)fitted


@dataclass
class Scoring:
    """What events are scored against: live state, or the frozen result of a --once learning."""

    stats: StreamStats
    templates: StreamTemplates
    detector: StreamDetector | None
    examples: dict[int, str] = field(default_factory=dict)
    # --once: the rows the learned detector was fitted on, until the model is stored.
    training: list[list[float]] | None = None


@dataclass
class PollSummary:
    files_seen: int = 0
    files_read: int = 0
    lines: int = 0
    events: int = 0
    anomalies: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    found: list[Anomaly] = field(default_factory=list)  # stored this poll (bounded), for alerts
    incidents: list[Incident] = field(default_factory=list)  # created or changed this poll
    sessions: int = 0  # anomalous sessions found
    windows: int = 0  # time windows the master model flagged

    def add(self, other: PollSummary) -> None:
        for name in ("files_read", "lines", "events", "anomalies", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.found.extend(other.found[: max(0, MAX_FOUND_PER_POLL - len(self.found))])


class Pipeline:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        stop: threading.Event | None = None,
        metrics: MetricsSink | None = None,
        node: str = "",
    ) -> None:
        if config.log_dir is None:
            raise SourceError("no log directory given; pass --log-dir DIR")
        self.config = config
        self.store = store
        self.root = Path(config.log_dir)
        self.novelty = NoveltyDetector()
        self.metrics: MetricsSink = metrics or NullMetrics()
        self.progress: ProgressSink = NullProgress()
        # Operator feedback (mark-normal, suppressions), reloaded by the caller every poll.
        self.feedback: FeedbackRules | None = None
        self.marked_normal = 0  # anomalies not recorded because their template was marked normal
        self.overview = Overview(config, store, self._template_text, node=node)
        # Checked between batches: a stop request finishes the batch in hand, then returns.
        self.stop = stop or threading.Event()
        # Streams in memory, least recently used first; beyond max_live_streams the oldest is
        # dropped (everything it knows is in the database; only its training reservoir is lost).
        self._streams: OrderedDict[str, StreamRuntime] = OrderedDict()
        self._stream_ids: dict[str, int] = {}
        # Streams this process created and has not loaded yet: nothing is stored for them, so
        # the first load is skipped (a first run over thousands of new files, one stream each,
        # saved three queries per file).
        self._fresh_streams: set[int] = set()
        self._files: dict[str, TrackedFile] = store.active_files()
        self._files_stale = False
        self._skips_noted: set[tuple[str, str]] = set()
        # Daemon mode: file id -> [descriptor, last activity (epoch s)], least recent first.
        self._handles: OrderedDict[int, list[float]] = OrderedDict()
        self._draining: list[tuple[TrackedFile, str]] = []  # gone; a descriptor still reads it

    # ------------------------------------------------------------------ entry points

    def poll(self, now: datetime) -> PollSummary:
        """One live poll: read what is new in every changed file and commit it batch by batch."""
        scan = self._scan()
        summary = PollSummary(files_seen=len(scan.files), skipped=list(scan.skipped))
        for snap, row in self._plan_or_reload(scan.files):
            if self.stop.is_set():
                break
            if self._nothing_due(row, snap, now, final=False):
                # The idle case, most files most polls: not opened, nothing to add up.
                self._touch_handle(row, snap, now, grew=False)
                continue
            summary.add(self._process_file(snap, row, now, scoring=None))
        while self._draining and not self.stop.is_set():
            row, status = self._draining.pop(0)
            summary.add(self._drain(row, status, now))
        self._close_idle_handles(now)
        self._overview(summary, self.overview.poll_end(now))
        return summary

    @property
    def leader(self) -> bool:
        """Whether this daemon runs the master model (one daemon of a fleet does)."""
        return self.overview.leader

    @leader.setter
    def leader(self, value: bool) -> None:
        self.overview.leader = value

    def _overview(self, summary: PollSummary, result: OverviewResult) -> None:
        summary.incidents = result.incidents
        summary.sessions = len(result.sessions)
        summary.windows = len(result.windows)

    def _template_text(self, stream: str, template_id: int) -> str | None:
        runtime = self._streams.get(stream)
        if runtime is None:  # not in memory: the database has every template's text
            return self.store.template_texts(stream).get(template_id)
        try:
            return runtime.templates.template(template_id)
        except KeyError:
            return None

    def run_once(
        self,
        now: datetime,
        progress: Callable[[int, int], ArchiveProgress | NullProgress] | None = None,
    ) -> PollSummary:
        """Everything present, each stream learned completely before any of its events is scored.

        ``progress(total_bytes, total_files)`` makes the progress display (a terminal bar)."""
        scan = self._scan()
        self.feedback = FeedbackRules.load(self.store, now)
        summary = PollSummary(files_seen=len(scan.files), skipped=list(scan.skipped))
        by_stream: dict[str, list[tuple[FileSnapshot, TrackedFile]]] = {}
        for snap, row in self._plan_or_reload(scan.files):
            by_stream.setdefault(snap.stream, []).append((snap, row))
        # A stream with nothing new in any of its files is not loaded, learned or visited: a
        # second run over the same folder does nothing, and fast.
        by_stream = {
            name: work
            for name, work in by_stream.items()
            if not all(self._nothing_due(row, snap, now, final=True) for snap, row in work)
        }
        total_files = sum(len(w) for w in by_stream.values())
        total_bytes = sum(max(s.size - r.offset, 0) for w in by_stream.values() for s, r in w)
        display = progress(total_bytes, total_files) if progress else NullProgress()
        order = sorted(by_stream.items())
        for _, work in order:
            work.sort(key=lambda item: _oldest_first(item[0]))
        with display:
            self.progress = display
            next_learning: tuple[str, Ahead] | None = None
            try:
                for index, (name, work) in enumerate(order):
                    if self.stop.is_set():
                        break
                    display.describe(f"learning {name}")
                    # The next stream is learned in a child process while this one is learned
                    # (or waited for) and scored: two cores busy instead of one.
                    this_learning = next_learning
                    next_learning = self._learn_ahead(order[index + 1 :], now)
                    scoring = self._learned(name, work, now, this_learning)
                    if scoring is None:  # stopped while a child was learning it
                        break
                    display.describe(name)
                    for snap, row in work:
                        if self.stop.is_set():
                            break
                        summary.add(self._process_file(snap, row, now, scoring=scoring))
                        if snap.compressed:  # offsets count decompressed bytes: size at the end
                            display.advance(max(snap.size - row.offset, 0))
                        display.file_done()
            finally:
                if next_learning is not None:
                    next_learning[1].cancel()
                self.progress = NullProgress()
                # _learn froze what it had learned out of the collector's way; let it go now.
                gc.unfreeze()
        if not self.stop.is_set():
            self._overview(summary, self.overview.finish_once(now))
        return summary

    def lag(self) -> tuple[int, int]:
        """(bytes not yet read across tracked files, files tracked), for metrics."""
        files = self._files.values()
        return sum(max(f.size - f.offset, 0) for f in files), len(self._files)

    def _scan(self) -> watcher.ScanResult:
        if self._files_stale:
            self._files = self.store.active_files()
            self._files_stale = False
        if not self.root.is_dir():
            raise SourceError(
                f"log directory {str(self.root)!r} does not exist or is not a directory"
            )
        include = self.config.include or watcher.DEFAULT_INCLUDE
        scan = watcher.scan(self.root, include, self.config.exclude)
        for path, reason in scan.skipped:
            if (path, reason) not in self._skips_noted:  # once per process, not every poll
                log.warning("skipping %s: %s", path, reason)
                rel = os.path.relpath(path, self.root)
                self.store.note_skipped(
                    path, self.store.stream_id(watcher.stream_name(rel)), reason
                )
                self._skips_noted.add((path, reason))
        return scan

    # ------------------------------------------------------------------ streams

    def _stream_id(self, name: str) -> int:
        """A stream's id without loading it (identity planning needs no templates or model)."""
        runtime = self._streams.get(name)
        if runtime is not None:
            return runtime.id
        stream_id = self._stream_ids.get(name)
        if stream_id is None:
            stream_id, created = self.store.stream_id_created(name)
            self._stream_ids[name] = stream_id
            if created:
                self._fresh_streams.add(stream_id)
        return stream_id

    def _stream(self, name: str) -> StreamRuntime:
        runtime = self._streams.get(name)
        if runtime is not None:
            self._streams.move_to_end(name)
            return runtime
        while len(self._streams) >= self.config.max_live_streams:
            self._streams.popitem(last=False)
        stream_id = self._stream_id(name)
        if stream_id in self._fresh_streams:
            self._fresh_streams.discard(stream_id)  # from now on its batches are committed
            stored = StoredStream.empty(stream_id, name)
        else:
            stored = self.store.load_stream(stream_id)
        templates = StreamTemplates.from_rows(
            stored.templates, sim_th=self.config.template_sim_th, depth=self.config.template_depth
        )
        stats = StreamStats.restore(
            stored.events_total,
            stored.level_counts,
            {t.template_id: t.size for t in stored.templates},
            stored.slot_values,
            stored.field_stats,
            stored.trouble_events,
        )
        detector = None
        # A model fitted on other feature columns (an older release) is refitted, not misread.
        if stored.model is not None and tuple(stored.model.feature_names) == FEATURE_NAMES:
            detector = StreamDetector.from_state(
                stored.model.params, stored.model.feature_names, stored.model.training
            )
        runtime = StreamRuntime(
            stored.id,
            name,
            templates,
            stats,
            detector,
            deque(maxlen=self.config.max_train_samples),
            dict(stored.examples),
        )
        self._streams[name] = runtime
        return runtime

    def _learned(
        self,
        name: str,
        work: Sequence[tuple[FileSnapshot, TrackedFile]],
        now: datetime,
        learning: tuple[str, Ahead] | None,
    ) -> Scoring | None:
        """The stream's learning: from the child that learned it ahead, else learned here;
        None when a stop request came while waiting for the child."""
        if learning is not None and learning[0] == name:
            try:
                scoring, recording = learning[1].result(self.stop)
            except AheadFailed as exc:
                if self.stop.is_set():
                    return None
                log.debug("learning %s again in this process: %s", name, exc)
            else:
                self._stream(name).templates.replay(recording)
                return cast(Scoring, scoring)
        return self._learn(name, work, now)

    def _learn_ahead(
        self, rest: Sequence[tuple[str, list[tuple[FileSnapshot, TrackedFile]]]], now: datetime
    ) -> tuple[str, Ahead] | None:
        """Start learning the next stream in a child process, when that is worth a fork."""
        if not rest or not self.config.learn_ahead or not can_fork():
            return None
        name, work = rest[0]
        unread = sum(max(snap.size - row.offset, 0) for snap, row in work)
        if unread < LEARN_AHEAD_MIN_BYTES:
            return None
        runtime = self._stream(name)  # loaded here: the child never touches the database
        try:
            return name, Ahead(lambda: self._learn_scratch(runtime, work, now), name)
        except OSError as exc:  # no fork (memory, process limits): learned in turn instead
            log.debug("cannot learn %s ahead: %s", name, exc)
            return None

    def _learn(
        self, name: str, work: Sequence[tuple[FileSnapshot, TrackedFile]], now: datetime
    ) -> Scoring:
        """--once learning pass on a scratch copy: templates and statistics of the whole stream,
        then a model fitted on a seeded reservoir sample of its events. Nothing is committed."""
        runtime = self._stream(name)
        scratch, recording = self._learn_scratch(runtime, work, now)
        runtime.templates.replay(recording)
        return scratch

    def _learn_scratch(
        self,
        runtime: StreamRuntime,
        work: Sequence[tuple[FileSnapshot, TrackedFile]],
        now: datetime,
    ) -> tuple[Scoring, _Recording | None]:
        """The learning itself, on copies of ``runtime``'s state, without the database (it may
        run in a child process): what was learned, and the record of where each event went, so
        that processing the stream next (from the same template state, with the same events)
        replays it instead of templating again."""
        # What is alive now (modules, the streams so far) is left out of the cyclic collector's
        # full passes, which over millions of events cost a fifth of the time while finding
        # nearly nothing; acyclic objects are still freed as soon as they are unreferenced.
        # (run_once may call gc.unfreeze() when it is done.)
        gc.freeze()
        scratch = Scoring(
            runtime.stats.copy(), runtime.templates.copy(), None, dict(runtime.examples)
        )
        reservoir: list[EventSketch] = []
        rng = random.Random(self.config.random_state)
        seen = 0
        limit = self.config.max_train_samples
        scratch.templates.record()
        for snap, row in work:
            batches = self._batches(snap, row.offset, row.line_no, flush=True, year=now.year)
            for events, _, _ in batches:
                with reader.collector_paused():
                    for event in _collapse(events):
                        sketch = self._observe(scratch.templates, scratch.stats, event)
                        scratch.examples[sketch.template_id] = _example(event)
                        seen += 1
                        # Reservoir sampling keeps the training sample bounded and unbiased.
                        if len(reservoir) < limit:
                            reservoir.append(sketch)
                        else:
                            slot = rng.randrange(seen)
                            if slot < limit:
                                reservoir[slot] = sketch
        recording = scratch.templates.recording()
        # A forest fitted on a handful of events says nothing; tiny streams are scored by the plain
        # signals (novel template, rare ERROR), as in daemon mode before a stream is trained.
        if len(reservoir) >= self.config.train_min_events:
            scratch.training = as_matrix(self._features(reservoir, scratch))
            scratch.detector = self._fit(scratch.training)
        gc.freeze()  # and what was learned: it is scored against until the stream is processed
        return scratch, recording

    # ------------------------------------------------------------------ files

    def _process_file(
        self,
        snap: FileSnapshot,
        tracked: TrackedFile,
        now: datetime,
        scoring: Scoring | None,
        drain_fd: int | None = None,
    ) -> PollSummary:
        summary = PollSummary()
        once = scoring is not None
        if self._nothing_due(tracked, snap, now, final=once or drain_fd is not None):
            self._touch_handle(tracked, snap, now, grew=False)
            return summary
        quiet = drain_fd is not None or not self._recent(snap, now)
        if not once and drain_fd is None:
            self._touch_handle(tracked, snap, now, grew=True)
        runtime = self._stream(snap.stream)
        summary.files_read = 1
        try:
            for events, result_end, lines in self._batches(
                snap,
                tracked.offset,
                tracked.line_no,
                flush=once or quiet,
                year=now.year,
                fd=drain_fd,
            ):
                end_offset, end_line_no, n_lines, n_truncated = result_end
                with reader.collector_paused():
                    anomalies, update, scored = self._analyse(runtime, events, snap, now, scoring)
                file_update = FileUpdate(
                    file_id=tracked.id,
                    expected_offset=tracked.offset,
                    offset=end_offset,
                    line_no=end_line_no,
                    # The file may have grown between the scan's stat and this read.
                    size=max(snap.size, end_offset) if not snap.compressed else snap.size,
                    mtime_ns=snap.mtime_ns,
                    ctime_ns=snap.ctime_ns,
                    attr_hash=snap.attr_hash,
                    lines_read=n_lines,
                    events_read=sum(e.count for e in events),
                    lines_truncated=n_truncated,
                )
                self._identity_hashes(snap, tracked, file_update)
                crash_point("batch:read")
                try:
                    inserted = self.store.commit_batch(file_update, update, anomalies)
                except Exception:
                    # In-memory state ran ahead of the database: rebuild both from it next time.
                    self._streams.pop(snap.stream, None)
                    self._files_stale = True
                    raise
                runtime.templates.mark_clean()
                self.overview.observe(snap.stream, snap.path, *scored, now.timestamp())
                self.overview.found(anomalies, now.timestamp())
                self.metrics.observe_stream(snap.stream, n_lines, len(events))
                for found in anomalies:
                    self.metrics.observe_anomaly(snap.stream, found.severity)
                if update.model is not None:
                    self.metrics.model_trained(snap.stream)
                if not snap.compressed:
                    self.progress.advance(lines)
                room = MAX_FOUND_PER_POLL - len(summary.found)
                summary.found.extend(anomalies[: max(room, 0)])
                tracked = dataclasses.replace(
                    tracked,
                    offset=end_offset,
                    line_no=end_line_no,
                    fp_len=file_update.fp_len if file_update.fp_len is not None else tracked.fp_len,
                    fp_hash=file_update.fp_hash or tracked.fp_hash,
                    marker_len=file_update.marker_len or 0,
                    marker_hash=file_update.marker_hash or "",
                )
                if drain_fd is None:  # a drained file's path may hold a new file by now
                    self._files[snap.path] = tracked
                summary.lines += n_lines
                summary.events += len(events)
                summary.anomalies += inserted
                summary.bytes += lines
                if self.stop.is_set():
                    break
        except SourceError as exc:
            summary.errors.append((snap.path, str(exc)))
            self.store.note_file_error(tracked.id, str(exc))
        if drain_fd is None:
            # The attribute hash is kept even when nothing complete was read: not reopened.
            self._files[snap.path] = dataclasses.replace(
                tracked, attr_hash=snap.attr_hash, size=snap.size, mtime_ns=snap.mtime_ns
            )
        return summary

    def _nothing_due(
        self, row: TrackedFile, snap: FileSnapshot, now: datetime, *, final: bool
    ) -> bool:
        """Unchanged since it was last read and nothing to read now: everything was read, or
        only a held-back last event (it may still get continuation lines) is left, and it is not
        due yet (``final``: the file is done, so it is due)."""
        if row.attr_hash != snap.attr_hash:
            return False
        return row.offset >= snap.size or (not final and self._recent(snap, now))

    def _recent(self, snap: FileSnapshot, now: datetime) -> bool:
        """Written to within multiline_flush_seconds: its last event may still grow."""
        return now.timestamp() - snap.mtime_ns / 1e9 < self.config.multiline_flush_seconds

    # ------------------------------------------------------------------ descriptors

    def _touch_handle(
        self, row: TrackedFile, snap: FileSnapshot, now: datetime, *, grew: bool
    ) -> None:
        """Keep a descriptor on a live plain file (daemon mode), so that if it is deleted or moved
        away with bytes not yet read, those bytes can still be read (RELIABILITY.md §4)."""
        if self.config.once or snap.compressed:
            return
        held = self._handles.get(row.id)
        if held is not None:
            if grew:
                held[1] = now.timestamp()
                self._handles.move_to_end(row.id)
            return
        if not grew:
            return  # an idle file needs no descriptor: nothing unread can be lost with it
        try:
            fd = os.open(snap.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return  # gone already, or out of descriptors: the poll's identity check will see
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (snap.dev, snap.ino):
            os.close(fd)  # replaced between the scan and now
            return
        self._handles[row.id] = [fd, now.timestamp()]
        while len(self._handles) > self.config.max_open_files:
            _, (old_fd, _) = self._handles.popitem(last=False)
            os.close(int(old_fd))

    def _close_idle_handles(self, now: datetime) -> None:
        cutoff = now.timestamp() - self.config.close_inactive
        for file_id in [fid for fid, (_, used) in self._handles.items() if used < cutoff]:
            os.close(int(self._handles.pop(file_id)[0]))

    def _drain(self, row: TrackedFile, status: str, now: datetime) -> PollSummary:
        """Read a file that is gone from the log root to its end through the descriptor still held
        on it, then retire it; whatever could not be read is recorded as a gap."""
        fd = int(self._handles.pop(row.id)[0])
        try:
            st = os.fstat(fd)
            stream = self.store.stream_name(row.stream_id)
            snap = FileSnapshot(
                row.path,
                row.path,
                stream,
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                "drained",
                False,
            )
            summary = self._process_file(snap, row, now, scoring=None, drain_fd=fd)
            gap = max(st.st_size - self.store.file_offset(row.id), 0)
            if gap:
                log.warning(
                    "%s was %s with %d bytes unread (recorded as a gap)", row.path, status, gap
                )
            else:
                log.info(
                    "%s was %s; its last bytes were read through the open descriptor",
                    row.path,
                    status,
                )
            self.store.retire_file(row.id, status, gap_bytes=gap)
            return summary
        finally:
            os.close(fd)

    def close(self) -> None:
        """Save the bird's-eye models and release every descriptor held on log files."""
        try:
            self.overview.close(datetime.now(UTC))
        except StorageError as exc:
            log.warning("could not save session and master model state: %s", exc)
        while self._handles:
            _, (fd, _) = self._handles.popitem()
            os.close(int(fd))

    # ------------------------------------------------------------------ identity

    def _plan_or_reload(
        self, snaps: Sequence[FileSnapshot]
    ) -> list[tuple[FileSnapshot, TrackedFile]]:
        try:
            return self._plan(snaps)
        except Exception:
            # Some of the plan's writes may have committed (a new file's row, say): the in-memory
            # map of files is reloaded from the database before the next attempt, or that file
            # would get a second row and be read twice.
            self._files_stale = True
            raise

    def _plan(self, snaps: Sequence[FileSnapshot]) -> list[tuple[FileSnapshot, TrackedFile]]:
        """Match files on disk to stored rows (identity.reconcile) and record the outcome."""
        # Unchanged files (same path, same attributes: same inode) continue as they are; only the
        # rest needs reconciling. On an idle poll that is all of them, and reconcile does nothing.
        files = self._files
        steady: list[tuple[FileSnapshot, TrackedFile]] = []
        rest: list[FileSnapshot] = []
        for snap in snaps:
            row = files.get(snap.path)
            if row is not None and row.attr_hash == snap.attr_hash:
                steady.append((snap, row))
            else:
                rest.append(snap)
        if not rest and len(steady) == len(files):
            # Every tracked file is there, unchanged (the idle poll): nothing to reconcile, and
            # the map of files stands as it is.
            return steady
        order = {snap.path: i for i, snap in enumerate(snaps)}
        kept = {snap.path for snap, _ in steady}
        others = {path: row for path, row in files.items() if path not in kept}
        fresh_before = frozenset(self._fresh_streams)
        retired_cache: dict[int, list[TrackedFile]] = {}

        def retired(snap: FileSnapshot) -> list[TrackedFile]:
            stream_id = self._stream_id(snap.stream)
            if stream_id not in retired_cache:
                # A stream created during this reconcile has no retired files (files are retired
                # only after it, below): not worth a query.
                born = stream_id in self._fresh_streams and stream_id not in fresh_before
                retired_cache[stream_id] = [] if born else self.store.recent_retired(stream_id)
            return retired_cache[stream_id]

        actions = identity.reconcile(
            rest,
            others,
            still_valid=self._still_valid,
            carries=self._carries,
            retired=retired,
            stream_of=lambda snap: self._stream_id(snap.stream),
        )
        continued = [(a.snap, a.row) for a in actions if isinstance(a, identity.Continue)]
        # Files in scan order, as if reconcile had seen them all.
        work = sorted(steady + continued, key=lambda item: order[item[0].path])
        for action in actions:
            if isinstance(action, identity.Continue):
                continue
            elif isinstance(action, identity.Truncated):
                log.warning("%s was truncated; reading it again from the start", action.snap.path)
                self.store.retire_file(action.row.id, "truncated", truncated=True)
                work.append((action.snap, self._add(action.snap)))
            elif isinstance(action, identity.Moved):
                log.info("%s is now %s", action.row.path, action.snap.path)
                moved = self.store.move_file(
                    action.row.id, path=action.snap.path, dev=action.snap.dev, ino=action.snap.ino
                )
                work.append((action.snap, moved))
            elif isinstance(action, identity.New):
                if action.resume is not None:
                    log.info(
                        "%s carries %s: resuming at byte %d",
                        action.snap.path,
                        action.resume.path,
                        action.resume.offset,
                    )
                work.append((action.snap, self._add(action.snap, action.resume)))
            elif action.row.id in self._handles and not self.config.once:
                self._draining.append((action.row, action.status))
            else:
                if action.gap_bytes:
                    log.warning(
                        "%s was %s with %d bytes unread (recorded as a gap)",
                        action.row.path,
                        action.status,
                        action.gap_bytes,
                    )
                self.store.retire_file(action.row.id, action.status, gap_bytes=action.gap_bytes)
        self._files = {snap.path: row for snap, row in work}
        return work

    def _add(self, snap: FileSnapshot, resume: TrackedFile | None = None) -> TrackedFile:
        fp_len, fp_hash = watcher.fingerprint(snap.path, compressed=snap.compressed)
        return self.store.add_file(
            path=snap.path,
            stream_id=self._stream_id(snap.stream),
            dev=snap.dev,
            ino=snap.ino,
            fp_len=fp_len,
            fp_hash=fp_hash,
            size=snap.size,
            resume=resume,
        )

    def _still_valid(self, row: TrackedFile, snap: FileSnapshot) -> bool:
        """The bytes ``row`` read are still where they were (not truncated and rewritten)."""
        return self._carries(row, snap, minimum=0)

    def _carries(
        self, row: TrackedFile, snap: FileSnapshot, minimum: int = _MIN_FINGERPRINT
    ) -> bool:
        """``snap`` starts with the content ``row`` read: fingerprint prefix and offset marker."""
        if row.fp_len < minimum:
            return False  # too little content to tell files apart
        try:
            if row.fp_len:
                got = watcher.fingerprint(snap.path, compressed=snap.compressed, length=row.fp_len)
                if got != (row.fp_len, row.fp_hash):
                    return False
            if row.marker_len:
                at = watcher.marker(
                    snap.path, row.offset, compressed=snap.compressed, length=row.marker_len
                )
                if at != (row.marker_len, row.marker_hash):
                    return False
        except (OSError, SourceError):
            return False
        return True

    def _identity_hashes(self, snap: FileSnapshot, row: TrackedFile, update: FileUpdate) -> None:
        """Refresh the offset marker (and a fingerprint still shorter than 1 KiB) for the commit.

        Compressed archives are immutable and re-hashing them means decompressing: skipped."""
        if snap.compressed:
            return
        try:
            update.marker_len, update.marker_hash = watcher.marker(
                snap.path, update.offset, compressed=False
            )
            if row.fp_len < _FINGERPRINT_BYTES and snap.size > row.fp_len:
                update.fp_len, update.fp_hash = watcher.fingerprint(snap.path, compressed=False)
        except (OSError, SourceError):
            pass  # the next poll's identity check sees what happened to the file

    def _batches(
        self,
        snap: FileSnapshot,
        offset: int,
        line_no: int,
        *,
        flush: bool,
        year: int,
        fd: int | None = None,
    ) -> Iterator[tuple[list[Event], tuple[int, int, int, int], int]]:
        """Bounded batches of complete events:
        (events, (end offset, end line no, lines, lines cut at max_line_bytes), bytes).

        A last event that may still get continuation lines is held back: the offset stops at its
        first line, so it is read again (whole) next time, unless ``flush`` says the file is done.
        """
        # A partial last line is read only when no more can come: one-shot mode, or a file that
        # is gone and being drained through its descriptor.
        final_read = self.config.once or fd is not None
        while True:
            result = reader.read_lines(
                snap.path,
                offset,
                line_no,
                compressed=snap.compressed,
                chunk_bytes=self.config.chunk_bytes,
                max_line_bytes=self.config.max_line_bytes,
                final=final_read,
                fd=fd,
            )
            if result.problem:
                log.warning("%s: %s", snap.path, result.problem)
            lines = result.lines
            final = flush and result.at_eof
            # Parsing makes a few objects per line, none in a cycle.
            with reader.collector_paused():
                events, consumed = parser.group_events(lines, final=final, default_year=year)
                if consumed == 0 and lines and not result.at_eof:
                    # One event larger than a whole chunk: emit it rather than never advancing.
                    events, consumed = parser.group_events(lines, final=True, default_year=year)
            if consumed == len(lines):
                end_offset, end_line_no = result.end_offset, result.end_line_no
            else:
                end_offset, end_line_no = lines[consumed].offset, lines[consumed].line_no - 1
            if end_offset == offset:
                return
            cut = sum(1 for line in lines[:consumed] if line.truncated)
            yield events, (end_offset, end_line_no, end_line_no - line_no, cut), end_offset - offset
            offset, line_no = end_offset, end_line_no
            if result.at_eof:
                return

    # ------------------------------------------------------------------ analysis

    def _observe(self, templates: StreamTemplates, stats: StreamStats, event: Event) -> EventSketch:
        parsed = event.parsed
        match = templates.add(parsed.message)
        positions, trouble = _FACTS.get(match.template) or _template_facts(match.template)
        fields = (
            tuple(
                (k, str(v))
                for k, v in parsed.fields.items()
                if v is not None and not isinstance(v, float)
            )
            if parsed.fields
            else ()
        )
        ts = epoch_seconds(parsed.timestamp)
        last = stats.last_ts  # stats.gap_before(ts), inline
        sketch = EventSketch(
            match.template_id,
            parsed.level,
            positions,
            match.slot_values,
            len(parsed.message),
            trouble,
            fields,
            # Counted up to STARTUP_EVENTS, all that decide() asks of it: a small int is shared
            # instead of allocated for each of the sketches the training reservoirs keep.
            min(stats.events_total, STARTUP_EVENTS),
            None if ts is None or last is None else max(0.0, ts - last),
        )
        stats.observe(sketch, event.count, ts)
        return sketch

    def _analyse(
        self,
        runtime: StreamRuntime,
        events: list[Event],
        snap: FileSnapshot,
        now: datetime,
        scoring: Scoring | None,
    ) -> tuple[list[Anomaly], StreamUpdate, tuple[list[Event], list[int]]]:
        """Score a batch: its anomalies, the stream update to commit with it, and the events it
        scored (duplicates collapsed) with their template ids, for the bird's-eye stage."""
        unique = _collapse(events)
        sketches = [self._observe(runtime.templates, runtime.stats, e) for e in unique]
        runtime.since_fit += len(sketches)
        update = StreamUpdate(
            runtime.id,
            runtime.stats.events_total,
            dict(runtime.stats.level_counts),
            runtime.stats.fields_json(),
            runtime.stats.trouble_events,
        )
        if scoring is None:
            scoring = Scoring(runtime.stats, runtime.templates, runtime.detector, runtime.examples)
            due = (
                runtime.detector is None
                and runtime.stats.events_total >= self.config.train_min_events
            ) or (
                runtime.detector is not None
                and runtime.since_fit >= self.config.retrain_every_events
            )
            if due:
                # The reservoir (recent events not flagged) plus this batch, bounded.
                reservoir = [*runtime.recent, *sketches][-self.config.max_train_samples :]
                training = as_matrix(self._features(reservoir, scoring))
                runtime.detector = scoring.detector = self._fit(training)
                runtime.since_fit = 0
                update.model = StoredModel(
                    "stream", runtime.detector.get_params(), FEATURE_NAMES, training
                )
        elif scoring.detector is not None and runtime.detector is None:
            runtime.detector = scoring.detector
            assert scoring.training is not None  # set with the detector by the learning pass
            update.model = StoredModel(
                "stream", scoring.detector.get_params(), FEATURE_NAMES, scoring.training
            )
        features = self._features(sketches, scoring)
        detected_at = now.astimezone(UTC).isoformat()
        if scoring.detector is not None:
            raw = scoring.detector.score(as_matrix(features))
            scores, tails = raw.tolist(), scoring.detector.tail(raw).tolist()
            # A batch's rows take few distinct scores (most are a common template's ordinary
            # line): each tail's severity is computed once.
            by_tail: dict[float, int] = {}
            judged: list[tuple[float, int]] = []
            for s, t, f in zip(scores, tails, features, strict=True):
                severity = by_tail.get(t)
                if severity is None:
                    severity = by_tail[t] = severity_from_tail(t)
                # Plain signals (a novel template, a rare ERROR) keep a floor under the model's
                # verdict: a model fitted on uniform traffic cannot separate anything and would
                # otherwise mute them.
                judged.append((s, max(severity, warmup_severity(f)[1])))
        else:
            judged = [warmup_severity(f) for f in features]
        anomalies = []
        for event, sketch, feats, (score, severity) in zip(
            unique, sketches, features, judged, strict=True
        ):
            found = decide(
                event,
                feats,
                score=score,
                severity=severity,
                template=scoring.templates.template(sketch.template_id),
                stream=runtime.name,
                path=snap.path,
                detected_at=detected_at,
                min_severity=self.config.min_severity,
            )
            if found is not None:
                found = dataclasses.replace(found, template_id=sketch.template_id)
                if self.feedback is not None and self.feedback.verdict(found) == "normal":
                    # An operator said this template is normal here (and it is not clearly
                    # more severe than when they said so): counted, not recorded.
                    self.marked_normal += 1
                    found = None
            if found is not None:
                closest = self._closest(event, sketch, feats, scoring)
                anomalies.append(dataclasses.replace(found, closest=closest))
            if found is None or self.config.train_on_flagged:
                # Flagged events stay out of the training reservoir and are no one's example of
                # a normal line.
                runtime.recent.append(sketch)
                runtime.examples[sketch.template_id] = _example(event)
        update.templates = [
            (
                row,
                runtime.templates.template(row.template_id),
                runtime.stats.slots_json(row.template_id),
                runtime.examples.get(row.template_id),
            )
            for row in self._changed_rows(runtime)
        ]
        return anomalies, update, (unique, [s.template_id for s in sketches])

    def _closest(
        self, event: Event, sketch: EventSketch, feats: Features, scoring: Scoring
    ) -> str | None:
        """The closest normal line of the stream, its tokens that differ from the event marked:
        a line of the event's own template when that template is established, else a line of the
        nearest established template."""
        own = scoring.stats.template_counts.get(sketch.template_id, 0)
        candidates = []
        if own >= _ESTABLISHED_MIN:
            candidates.append(scoring.examples.get(sketch.template_id))
        if feats.nearest_id is not None:
            candidates.append(scoring.examples.get(feats.nearest_id) or feats.nearest)
        message = event.parsed.message
        for line in candidates:
            if line and line != message[:_EXAMPLE_CHARS]:
                return mark_differences(message, line)
        return None

    def _changed_rows(self, runtime: StreamRuntime) -> list[TemplateRow]:
        # Every template an event touched is dirty (its size changed). The stream statistics own the
        # count, because duplicates collapsed within a batch count in full there.
        return runtime.templates.dirty_rows(runtime.stats.template_counts)

    def _features(self, sketches: Sequence[EventSketch], scoring: Scoring) -> list[Features]:
        stats, templates = scoring.stats, scoring.templates
        established = sorted(
            (tid for tid, n in stats.template_counts.items() if n >= _ESTABLISHED_MIN),
            key=lambda tid: -stats.template_counts[tid],
        )
        established_text = [templates.template(tid) for tid in established[:200]]
        template_ids = dict(zip(established_text, established[:200], strict=True))
        generation = hash(tuple(established[:200]))
        rare_share = stats.rare_template_share()  # O(templates): once per batch, not per event
        context = FeatureContext(stats, rare_share)  # the rest of what is the same for all
        counts = stats.template_counts
        out = []
        for sketch in sketches:
            novelty, nearest, nearest_id = 0.0, None, None
            if counts.get(sketch.template_id, 0) <= _RARE_MAX and established_text:
                novelty, nearest = self.novelty.nearest(
                    templates.template(sketch.template_id), established_text, generation
                )
                if nearest is not None:
                    nearest_id = template_ids.get(nearest)
            out.append(
                event_features(
                    sketch,
                    stats,
                    novelty=novelty,
                    nearest=nearest,
                    rare_template_share=rare_share,
                    nearest_id=nearest_id,
                    context=context,
                )
            )
        return out

    def _fit(self, matrix: list[list[float]]) -> StreamDetector:
        return StreamDetector(
            n_estimators=self.config.n_estimators, random_state=self.config.random_state
        ).fit(matrix, FEATURE_NAMES)


def _example(event: Event) -> str:
    return event.parsed.message[:_EXAMPLE_CHARS]


def mark_differences(event_text: str, normal_text: str) -> str:
    """``normal_text`` with its tokens that differ from ``event_text`` wrapped in [[...]]."""
    mine, theirs = event_text.split(), normal_text.split()
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
    for op, _, _, j1, j2 in matcher.get_opcodes():
        chunk = theirs[j1:j2]
        if not chunk:
            continue
        out.append(" ".join(chunk) if op == "equal" else "[[" + " ".join(chunk) + "]]")
    return " ".join(out)


def _slots(match: TemplateMatch) -> tuple[tuple[int, str], ...]:
    positions = _template_facts(match.template)[0]
    return tuple(zip(positions, match.slot_values, strict=False))


# Template text -> (positions of its variable tokens, whether it has a trouble word): a few
# hundred templates per stream, so a regex per token per event becomes one dict lookup.
_FACTS: dict[str, tuple[tuple[int, ...], bool]] = {}


def _template_facts(template: str) -> tuple[tuple[int, ...], bool]:
    facts = _FACTS.get(template)
    if facts is None:
        if len(_FACTS) >= 16_384:  # bounded: templates of many streams, old texts of changed ones
            _FACTS.clear()
        positions = tuple(i for i, tok in enumerate(template.split()) if _VARIABLE.search(tok))
        facts = _FACTS[template] = (positions, has_trouble_words(template))
    return facts


def _collapse(events: list[Event]) -> list[Event]:
    """Identical lines within a batch are scored once (at the first); their count is kept."""
    first: dict[str, int] = {}
    out: list[Event] = []
    for event in events:
        key = event.text
        index = first.get(key)
        if index is None:
            first[key] = len(out)
            out.append(event)
        else:
            out[index] = dataclasses.replace(out[index], count=out[index].count + event.count)
    return out


def _oldest_first(snap: FileSnapshot) -> tuple[int, str]:
    """Rotated siblings oldest first: app.log.3.gz, app.log.2, app.log.1, then app.log."""
    match = re.search(r"\.(\d+)(?:\.(?:gz|bz2))?$", snap.rel_path)
    return (-int(match.group(1)) if match else 0, snap.rel_path)
