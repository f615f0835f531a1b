"""Sessions: ids found in real lines, idle expiry and eviction, and a session-only anomaly that the
session model finds while every single line is ordinary."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from logwatch.config import Config
from logwatch.errors import ConfigError, NotFittedError, StateCorruptError
from logwatch.sessions import ClosedSession, SessionKeys, SessionModel, SessionTracker
from logwatch.templates import StreamTemplates

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"

# Verbatim lines of loghub's HDFS_2k.log (github.com/logpai/loghub, HDFS/HDFS_2k.log). The shared
# data folder has no HDFS sample, so the lines that matter are kept here.
HDFS_LINES = {
    "081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block "
    "blk_-6952295868487656571 terminating": ("blk_-6952295868487656571",),
    "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: "
    "10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864": (
        "blk_7128370237687728475",
    ),
    "081109 204815 653 INFO dfs.DataNode$DataXceiver: Receiving block blk_5792489080791696128 "
    "src: /10.251.30.6:33145 dest: /10.251.30.6:50010": ("blk_5792489080791696128",),
    "081109 205035 28 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/"
    "_temporary/_task_200811092030_0001_m_000590_0/part-00590. blk_-1727475099218615100": (
        "blk_-1727475099218615100",
    ),
    "081109 205931 13 INFO dfs.DataBlockScanner: Verification succeeded for "
    "blk_-4980916519894289629": ("blk_-4980916519894289629",),
    # The same block twice (the block and its file): one key.
    "081109 213837 19 INFO dfs.FSDataset: Deleting block blk_1781953582842324563 file "
    "/mnt/hadoop/dfs/data/current/subdir5/blk_1781953582842324563": ("blk_1781953582842324563",),
    "081109 214043 2561 WARN dfs.DataNode$DataXceiver: 10.251.30.85:50010:Got exception while "
    "serving blk_-2918118818249673980 to /10.251.90.64:": ("blk_-2918118818249673980",),
}


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (see /work/shared/data/README.md)")
    return path


# ----------------------------------------------------------------------------------------------
# Keys


@pytest.mark.parametrize("line", sorted(HDFS_LINES))
def test_hdfs_block_ids(line: str) -> None:
    assert SessionKeys().keys("hdfs.log", line) == HDFS_LINES[line]


def test_whole_hdfs_sample_when_present() -> None:
    path = need(DATA / "HDFS" / "HDFS_2k.log")
    keys = SessionKeys()
    lines = path.read_text().splitlines()
    for line in lines:
        expected = tuple(dict.fromkeys(re.findall(r"blk_-?\d+", line)))
        assert keys.keys("HDFS_2k.log", line) == expected


def test_real_hadoop_lines_give_the_block_without_its_generation_stamp() -> None:
    lines = need(DATA / "Hadoop" / "Hadoop_2k.log").read_text().splitlines()
    keys = SessionKeys()
    with_block = [line for line in lines if "blk_" in line]
    assert len(with_block) == 5
    assert {keys.keys("Hadoop_2k.log", line) for line in with_block} == {("blk_1073743512",)}
    # Lines without any id give none: nothing is made up from timestamps, IPs or job names.
    others = [keys.keys("Hadoop_2k.log", line) for line in lines if "blk_" not in line]
    assert Counter(others) == Counter({(): len(lines) - 5})


def test_real_windows_and_mac_uuids() -> None:
    keys = SessionKeys()
    windows = need(DATA / "Windows" / "Windows_2k.log").read_text().splitlines()
    found = Counter(k for line in windows for k in keys.keys("Windows_2k.log", line))
    # 17 lines carry a braced GUID: 16 load registry hives into one key, 1 names a CBS transaction.
    assert found == Counter(
        {"bf1a281b-ad7b-4476-ac95-f47682990ce7": 16, "d16d444c-56d8-11d5-882d-0080c847b195": 1}
    )
    mac = need(DATA / "Mac" / "Mac_2k.log").read_text().splitlines()
    line = next(line for line in mac if "131FE7ED-87F7-471D-8797-C11107688DF7" in line)
    assert keys.keys("Mac_2k.log", line) == ("131FE7ED-87F7-471D-8797-C11107688DF7",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2024-05-01 10:00:00.123 INFO nova.api [req-3f2a9c1e-0b4d-4c8e-9a7f-1234567890ab "
            "admin admin] GET /v2/servers",
            ("req-3f2a9c1e-0b4d-4c8e-9a7f-1234567890ab",),
        ),
        (  # the OpenStack id named as a request id is still one key
            "request_id=req-3f2a9c1e-0b4d-4c8e-9a7f-1234567890ab status=200",
            ("req-3f2a9c1e-0b4d-4c8e-9a7f-1234567890ab",),
        ),
        (
            "X-Request-ID: 9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
            ("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",),
        ),
        (
            '{"ts": "2024-05-01T10:00:00Z", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", '
            '"pid": 7}',
            ("4bf92f3577b34da6a3ce929d0e0e4736",),
        ),
        ("GET /cart requestId=abc123 correlation-id: order.77", ("abc123", "order.77")),
        (
            "instance 6a1b2c3d-0000-4000-8000-00000000abcd attached to "
            "volume 7a1b2c3d-0000-4000-8000-00000000abcd",
            ("6a1b2c3d-0000-4000-8000-00000000abcd", "7a1b2c3d-0000-4000-8000-00000000abcd"),
        ),
        # Not ids: other *id fields, empty values, hex runs glued to words, dates with dashes.
        ("sshd[2211]: pid=123 uid=0 session_id=77 request_id=null", ()),
        ("build x6a1b2c3d-0000-4000-8000-00000000abcd 2024-05-01-10-00", ()),
    ],
)
def test_default_id_patterns(text: str, expected: tuple[str, ...]) -> None:
    assert SessionKeys().keys("app.log", text) == expected


def test_per_stream_patterns_first_group_is_the_id() -> None:
    keys = SessionKeys(
        {
            "shop*.log": [r"order #(\d+)", r"cart-[a-z]{4}"],  # a group, and no group (whole match)
            "billing.log": r"invoice (INV-\d+)",  # a single string is one pattern
        }
    )
    text = "order #42 paid, cart-abcd emptied, invoice INV-9, request_id=r1"
    assert keys.keys("shop-eu.log", text) == ("42", "cart-abcd", "r1")
    assert keys.keys("billing.log", text) == ("INV-9", "r1")
    assert keys.keys("other.log", text) == ("r1",)


def test_patterns_that_cannot_be_fused_still_match() -> None:
    # A numbered back-reference would point elsewhere once fused; (?i) is legal only at the start.
    keys = SessionKeys({"*": [r"(['\"])(\w+)\1 queued", r"(?i)JOB=(\w+)"]})
    assert keys.keys("x.log", "task 'build7' queued; job=nightly") == ("'", "nightly")


def test_invalid_patterns_are_config_errors_naming_stream_and_pattern() -> None:
    with pytest.raises(ConfigError) as bad:
        SessionKeys({"hdfs*": [r"blk_(\d+"]})
    assert str(bad.value) == (
        "sessions: pattern 'blk_(\\\\d+' for streams 'hdfs*' is not a valid regular expression: "
        "missing ), unterminated subpattern at position 4"
    )
    with pytest.raises(ConfigError, match=r"sessions: 'app\.log' must be a list of regular"):
        SessionKeys({"app.log": 3})  # type: ignore[dict-item]


def test_from_config() -> None:
    keys = SessionKeys.from_config(Config(sessions={"app*": [r"user=(\w+)"]}))
    assert keys.keys("app.log", "login user=ann") == ("ann",)


# ----------------------------------------------------------------------------------------------
# Tracker


def test_idle_sessions_close_on_the_streams_own_clock() -> None:
    tracker = SessionTracker(idle_seconds=300, max_open=100)
    log_time = 1_226_260_000.0  # a 2008 replay, checked against a 2024 wall clock
    wall = 1_714_557_600.0
    tracker.observe("hdfs", "blk_1", 1, "hdfs.log", 1, log_time)
    tracker.observe("hdfs", "blk_2", 1, "hdfs.log", 2, log_time + 100)
    tracker.observe("hdfs", "blk_1", 2, "hdfs.log", 3, log_time + 200)
    assert tracker.expire(wall) == []  # wall time says nothing about a replayed log
    tracker.observe("hdfs", "blk_3", 1, "hdfs.log", 4, log_time + 450)
    closed = tracker.expire(wall + 1)
    assert [(s.key, s.closed_by, s.events) for s in closed] == [("blk_2", "idle", 1)]
    assert tracker.open_count == 2
    # The stream goes quiet: its clock runs on with the wall clock from the last time it moved.
    assert tracker.expire(wall + 50) == []  # blk_1: 250 s idle by the log + 49 s of silence
    assert [s.key for s in tracker.expire(wall + 51)] == ["blk_1"]
    assert [s.key for s in tracker.expire(wall + 301)] == ["blk_3"]
    assert tracker.open_count == 0


def test_a_closed_session_records_counts_first_and_last() -> None:
    tracker = SessionTracker(idle_seconds=60, max_open=10)
    tracker.observe("s", "k", 7, "a.log", 10, 100.0)
    tracker.observe("s", "k", 8, "a.log", 11, 101.0)
    tracker.observe("s", "k", 8, "a.log.1", 3, 99.0)  # late, from a sibling file
    (session,) = tracker.close_all()
    assert session.counts == Counter({7: 1, 8: 2})
    assert (session.first.path, session.first.line, session.first.at) == ("a.log", 10, 100.0)
    assert (session.last.path, session.last.line, session.last.at) == ("a.log.1", 3, 101.0)
    assert (session.events, session.first_template, session.closed_by) == (3, 7, "end")


def test_eviction_closes_the_least_recently_active_first() -> None:
    tracker = SessionTracker(idle_seconds=1e9, max_open=3)
    for i, key in enumerate(["a", "b", "c"]):
        tracker.observe("s", key, 1, "x.log", i + 1, float(i))
    tracker.observe("s", "a", 2, "x.log", 4, 3.0)  # a is active again: b is now the oldest
    tracker.observe("s", "d", 1, "x.log", 5, 4.0)
    tracker.observe("t", "e", 1, "y.log", 1, 5.0)
    assert tracker.evicted == 2
    assert tracker.open_count == 3
    evicted = tracker.expire(5.0)  # evicted sessions come out with the next expire
    assert [(s.key, s.closed_by) for s in evicted] == [("b", "evicted"), ("c", "evicted")]
    assert sorted(s.key for s in tracker.close_all()) == ["a", "d", "e"]


def test_templates_per_session_are_bounded() -> None:
    tracker = SessionTracker(idle_seconds=60, max_open=10, max_templates=3)
    for template in [1, 2, 3, 4, 5, 1, 4]:
        tracker.observe("s", "k", template, "x.log", template, 0.0)
    (session,) = tracker.close_all()
    assert session.counts == Counter({1: 2, 2: 1, 3: 1})
    assert (session.events, session.overflow) == (7, 3)  # 4, 5, 4


# ----------------------------------------------------------------------------------------------
# A block lifecycle log where only sessions are wrong

BROKEN = {  # block -> what goes wrong with it
    "blk_-900001": "stops half way",
    "blk_-900002": "stops half way",
    "blk_-900003": "skips ack",
    "blk_-900004": "skips ack",
    "blk_-900005": "skips allocate",
    "blk_-900006": "skips delete",
}


def lifecycle_log(n_blocks: int = 300, seed: int = 7) -> list[tuple[float, str]]:
    """(time, line) of HDFS-style block lifecycles, interleaved: allocate -> receive x3 -> ack x3
    (addStoredBlock) -> 0-2 reads -> delete. BROKEN blocks' lines are written like all others."""
    rng = random.Random(seed)
    out: list[tuple[float, str]] = []

    def ip() -> str:
        return f"10.251.{rng.randint(1, 250)}.{rng.randint(1, 250)}"

    blocks = [f"blk_{rng.randint(10**17, 10**18)}" for _ in range(n_blocks)] + list(BROKEN)
    rng.shuffle(blocks)
    for i, blk in enumerate(blocks):
        t = 1_226_260_000.0 + 5 * i
        fault = BROKEN.get(blk)
        steps = [
            f"BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_{i:06d}_0/"
            f"part-{i:05d}. {blk}"
        ]
        steps += [f"Receiving block {blk} src: /{ip()}:{rng.randint(30000, 60000)} dest: "
                  f"/{ip()}:50010" for _ in range(3)]  # fmt: skip
        if fault == "stops half way":
            steps = steps[:2]
        else:
            if fault != "skips ack":
                steps += [
                    f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip()}:50010 is added "
                    f"to {blk} size 67108864"
                    for _ in range(3)
                ]
            steps += [f"{ip()}:50010 Served block {blk} to /{ip()}" for _ in range(i % 3)]
            if fault != "skips delete":
                steps.append(
                    f"Deleting block {blk} file /mnt/hadoop/dfs/data/current/subdir{i % 60}/{blk}"
                )
            if fault == "skips allocate":
                steps = steps[1:]
        out += [(t + 3 * j + rng.random(), step) for j, step in enumerate(steps)]
    return sorted(out)


Lifecycle = tuple[list[ClosedSession], StreamTemplates, Counter[int]]


def run_sessions(lines: list[tuple[float, str]]) -> Lifecycle:
    keys, tracker, templates = SessionKeys(), SessionTracker(300, 10_000), StreamTemplates()
    sizes: Counter[int] = Counter()
    closed: list[ClosedSession] = []
    for line_no, (at, text) in enumerate(lines, 1):
        template_id = templates.add(text).template_id
        sizes[template_id] += 1
        for key in keys.keys("hdfs.log", text):
            tracker.observe("hdfs.log", key, template_id, "hdfs.log", line_no, at)
        if line_no % 100 == 0:
            closed += tracker.expire(at)  # what a live pipeline does after each batch
    return closed + tracker.close_all(), templates, sizes


@pytest.fixture(scope="module")
def lifecycle() -> Lifecycle:
    return run_sessions(lifecycle_log())


def template_named(templates: StreamTemplates, word: str) -> int:
    (found,) = [r.template_id for r in templates.rows() if word in " ".join(r.template_tokens)]
    return found


def test_every_line_of_the_lifecycle_log_is_ordinary(lifecycle: Lifecycle) -> None:
    sessions, templates, sizes = lifecycle
    # Five templates (allocate, receive, ack, read, delete), each over 10% of the log: no
    # line-level rarity or novelty to flag, and broken blocks use the templates normal ones use.
    assert len(sizes) == 5
    assert min(sizes.values()) / sum(sizes.values()) > 0.10
    broken = [s for s in sessions if s.key in BROKEN]
    assert {t for s in broken for t in s.counts} <= set(sizes)
    assert len(sessions) == 306
    assert {s.closed_by for s in sessions} == {"idle", "end"}  # most closed idle, mid-run


def test_session_model_flags_exactly_the_broken_blocks(lifecycle: Lifecycle) -> None:
    sessions, templates, _ = lifecycle
    model = SessionModel(random_state=0).fit(sessions)
    verdicts = model.score(sessions)
    flagged = {v.session.key: v for v in verdicts if v.severity >= 40 and v.evident}
    assert set(flagged) == set(BROKEN)
    normal = [v.severity for v in verdicts if v.session.key not in BROKEN]
    assert max(normal) < 25

    ack = template_named(templates, "addStoredBlock")
    delete = template_named(templates, "Deleting")
    allocate = template_named(templates, "allocateBlock")
    missing = {key: {t for t, _ in v.missing} for key, v in flagged.items()}
    assert missing["blk_-900001"] == missing["blk_-900002"] == {ack, delete}
    assert missing["blk_-900003"] == missing["blk_-900004"] == {ack}
    assert missing["blk_-900005"] == {allocate}
    assert missing["blk_-900006"] == {delete}
    names = {r.template_id: " ".join(r.template_tokens) for r in templates.rows()}
    (reason,) = flagged["blk_-900003"].reasons(names)
    assert reason.startswith("missing 'BLOCK* NameSystem.addStoredBlock: blockMap updated:")
    # 4 of the 305 training sessions that start with allocate lack the ack: the broken ones.
    assert reason.endswith("present in 99% of normal sessions that start like this")
    v = flagged["blk_-900001"]
    assert (v.session.first.line, v.session.events) < (v.session.last.line, 3)


def test_unusual_and_excess_counts_are_explained(lifecycle: Lifecycle) -> None:
    sessions, templates, _ = lifecycle
    model = SessionModel(random_state=0).fit(sessions)
    served = template_named(templates, "Served")
    base = next(s for s in sessions if s.key not in BROKEN and s.counts[served] == 2)
    odd = ClosedSession(
        stream=base.stream,
        key="blk_odd",
        counts=base.counts + Counter({served: 40, 999: 1}),
        first=base.first,
        last=base.last,
        events=base.events + 41,
        first_template=base.first_template,
    )
    (verdict,) = model.score([odd])
    assert verdict.unusual == ((999, 0.0),)
    assert verdict.excess == ((served, 42, 2),)
    assert verdict.missing == ()
    assert verdict.severity >= 60
    assert verdict.reasons({})[0] == "unusual template 999, never in a normal session"


def test_state_round_trip_scores_identically(lifecycle: Lifecycle) -> None:
    sessions, _, _ = lifecycle
    model = SessionModel(random_state=3, idf=True).fit(sessions)
    state = json.loads(json.dumps(model.to_state()))  # JSON-safe, nothing pickled
    assert sorted(state) == ["first_templates", "params", "pending", "training", "vocabulary"]
    again = SessionModel.from_state(state)
    before = [(v.score, v.severity, v.missing) for v in model.score(sessions)]
    assert [(v.score, v.severity, v.missing) for v in again.score(sessions)] == before
    with pytest.raises(StateCorruptError, match="stored session model state is unusable"):
        SessionModel.from_state({**state, "vocabulary": state["vocabulary"][:-1]})


def test_same_seed_same_scores_other_seed_other_scores(lifecycle: Lifecycle) -> None:
    sessions, _, _ = lifecycle
    a = [v.score for v in SessionModel(random_state=5).fit(sessions).score(sessions)]
    b = [v.score for v in SessionModel(random_state=5).fit(sessions).score(sessions)]
    c = [v.score for v in SessionModel(random_state=6).fit(sessions).score(sessions)]
    assert a == b
    assert a != c


def test_live_learning_fits_at_min_sessions_and_keeps_flagged_out(lifecycle: Lifecycle) -> None:
    sessions, _, _ = lifecycle
    model = SessionModel(min_sessions=50, refit_every=100, random_state=0)
    with pytest.raises(NotFittedError):
        model.score(sessions[:1])
    assert model.learn(sessions[:49]) is False
    assert not model.fitted
    assert model.learn(sessions[49:50]) is True  # the 50th session fits the model
    rest = sessions[50:]
    verdicts = model.score(rest)
    flagged = sum(v.severity >= model.protect_severity for v in verdicts)
    assert flagged >= 4
    assert model.learn(rest, verdicts) is True  # 256 new sessions >= refit_every
    assert len(model.training_) == len(sessions) - flagged
    # Sessions learned since the last fit survive a restart.
    model.learn(rest[:10])
    state = json.loads(json.dumps(model.to_state()))
    assert len(state["pending"]) == 10
    assert SessionModel.from_state(state).since_fit_ == 10
