"""Tests for logwatch.templates: masking, slot values, persistence and grouping quality."""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwatch.parser import parse_line
from logwatch.records import TemplateChange
from logwatch.templates import Masker, StreamTemplates

DATA = Path(__file__).parents[1].parent / "shared" / "data"
LOGHUB = DATA / "loghub"
needs_loghub = pytest.mark.skipif(
    not LOGHUB.is_dir(), reason=f"loghub samples not found at {LOGHUB} (shared test data missing)"
)

masker = Masker()


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("user=123 logged in", "user=<NUM> logged in"),
        ("took -5 and +7.25 tries", "took <NUM> and <NUM> tries"),
        ("flags=0x1f addr 0xDEADBEEF", "flags=<HEX> addr <HEX>"),
        ("commit 3f9a2b7c1d", "commit <NUM>"),
        # a hex counter without 0x shares <NUM> with decimal ones: one slot prints both
        ("vis=c0000700 diff=40000008 mask=ffffffff", "vis=<NUM> diff=<NUM> mask=ffffffff"),
        ("from 10.0.0.1:8080 to 192.168.1.20", "from <IP> to <IP>"),
        ("v6 fe80::1ff:fe23:4567:890a and ::1", "v6 <IP> and <IP>"),
        ("v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 up", "v6 <IP> up"),
        ("id 123e4567-e89b-12d3-a456-426614174000 done", "id <UUID> done"),
        ("open /var/log/app/x.log failed", "open <PATH> failed"),
        (r"load C:\Windows\System32\x.dll", "load <PATH>"),
        ("get https://example.com/a?b=1 ok", "get <URL> ok"),
        ("mail to bob.smith@example.org sent", "mail to <EMAIL> sent"),
        ("at 2015-10-18 18:01:47,978 start", "at <TIME> <TIME> start"),
        ("stamp 2023-01-02T03:04:05.123Z end", "stamp <TIME> end"),
        ("on 17/06/09 ok", "on <TIME> ok"),
        ("Receiving blk_-1608999687919862906 src", "Receiving <ID> src"),
        ("nic 00:1A:2b:3c:4D:5e up", "nic <MAC> up"),
        ("read 3.5KB in 12ms", "read <SIZE> in <DUR>"),
        ("proxy.cse.cuhk.edu.hk:5070 open", "<HOST> open"),
        ("reverse lookup ns.example.com failed", "reverse lookup <HOST> failed"),
        ("BAYMSGR2012806.gateway.messenger.live.com:443 close", "<HOST> close"),
        # a camelCase dotted name before a colon is a field, not a host and port
        ("state.clipTopAmount:180, i:0", "state.clipTopAmount:<NUM>, i:<NUM>"),
        ("appattempt_1445144423722_0020_000001", "appattempt_<NUM>_<NUM>_<NUM>"),
        # Not values: digits glued to letters, file names in stack traces, hex-letter words.
        ("utf8 t761 defaced", "utf8 t761 defaced"),
        ("at Foo.java:42", "at Foo.java:<NUM>"),
    ],
)
def test_masks_each_kind(message: str, expected: str) -> None:
    assert masker.mask(message) == expected
    masked, original = masker.tokenize(message)
    assert masked == expected.split()
    assert original == message.split()


@pytest.mark.parametrize(
    ("message", "masked", "original"),
    [
        (
            "x:80 close, 1190 bytes (1.16 KB) sent, 0 bytes received, lifetime <1 sec",
            "x:<NUM> close, <SIZE> sent, <SIZE> received, lifetime <DUR>",
            ["x:80", "close,", "1190 bytes (1.16 KB)", "sent,", "0 bytes", "received,"]
            + ["lifetime", "<1 sec"],
        ),
        (
            "estimated size 5.2 KB, free 14.0 MiB)",
            "estimated size <SIZE>, free <SIZE>)",
            ["estimated", "size", "5.2 KB,", "free", "14.0 MiB)"],
        ),
        (
            "connection from 1.2.3.4 () at Fri Jul  1 07:57:30 2005",
            "connection from <IP> () at <TIME>",
            ["connection", "from", "1.2.3.4", "()", "at", "Fri Jul  1 07:57:30 2005"],
        ),
        (
            "up since Jun 14 15:16:01, ok",
            "up since <TIME>, ok",
            ["up", "since", "Jun 14 15:16:01,", "ok"],
        ),
        ("retry in 5 seconds", "retry in <DUR>", ["retry", "in", "5 seconds"]),
        # not spanning: a unit word must be unambiguous, and a month needs a day and a time
        ("found 5 s and 3 m in May 2020", "found <NUM> s and <NUM> m in May <NUM>", None),
    ],
)
def test_values_written_as_several_words_are_one_token(
    message: str, masked: str, original: list[str] | None
) -> None:
    # One value printed as several words ("1190 bytes (1.16 KB)") must not change the token count,
    # or lines of one template would land in Drain clusters of different lengths.
    assert masker.mask(message) == masked
    tokens, originals = masker.tokenize(message)
    assert tokens == masked.split()
    assert originals == (original if original is not None else message.split())


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_masked_and_original_tokens_stay_aligned(message: str) -> None:
    masked, original = masker.tokenize(message)
    assert len(masked) == len(original)
    for m, o in zip(masked, original, strict=True):
        assert ("<" in m) or m == o  # a token only ever changes by gaining a placeholder


def test_slot_values_keep_the_original_text_of_masked_and_wildcard_tokens() -> None:
    st_ = StreamTemplates()
    for i in range(20):
        st_.add(f"GET /api/item/{i} status 200 in {i + 3}ms")
    match = st_.add("GET /api/item/7 status 503 in 9ms")
    assert match.template == "GET <PATH> status <NUM> in <DUR>"
    assert match.slot_values == ("/api/item/7", "503", "9ms")  # the status code survives

    fw = StreamTemplates()
    fw.add("rule 7 matched action=ALLOW src=10.0.0.1")
    match = fw.add("rule 7 matched action=BLOCK src=10.0.0.2")
    assert match.template == "rule <NUM> matched <*> src=<IP>"
    assert match.slot_values == ("7", "action=BLOCK", "src=10.0.0.2")


def test_change_types_and_sizes() -> None:
    st_ = StreamTemplates()
    first = st_.add("disk sda1 is full")
    assert first.change is TemplateChange.CREATED
    assert st_.add("disk sda1 is full").change is TemplateChange.NONE
    changed = st_.add("disk sdb2 is full")
    assert changed.change is TemplateChange.CHANGED
    assert changed.template_id == first.template_id
    assert changed.template == "disk <*> is full"
    assert changed.slot_values == ("sdb2",)
    assert st_.size(first.template_id) == 3
    assert st_.template(first.template_id) == "disk <*> is full"
    assert st_.total == 3
    with pytest.raises(KeyError):
        st_.size(99)


def test_match_does_not_learn() -> None:
    st_ = StreamTemplates()
    tid = st_.add("connection from 10.0.0.1 closed").template_id
    found = st_.match("connection from 10.9.9.9 closed")
    assert found is not None
    assert found.template_id == tid
    assert found.change is TemplateChange.NONE
    assert found.slot_values == ("10.9.9.9",)
    assert st_.match("something never seen before") is None
    assert st_.size(tid) == 1 and st_.total == 1 and len(st_.rows()) == 1


def test_dirty_rows_track_creations_changes_and_sizes() -> None:
    st_ = StreamTemplates()
    a = st_.add("alpha job started").template_id
    b = st_.add("beta worker 3 stopped now").template_id
    assert [r.template_id for r in st_.dirty_rows()] == [a, b]
    st_.mark_clean()
    assert st_.dirty_rows() == []
    st_.add("alpha job started")  # size only
    [row] = st_.dirty_rows()
    assert row.template_id == a and row.size == 2
    assert row.creation_tokens == ("alpha", "job", "started")
    # The stream's own counts (duplicates collapsed in a batch count in full) replace Drain's
    # size where they have the template; elsewhere Drain's size stays.
    st_.add("beta worker 4 stopped now")
    assert [(r.template_id, r.size) for r in st_.dirty_rows({a: 7})] == [(a, 7), (b, 2)]


def test_copy_is_independent() -> None:
    st_ = StreamTemplates()
    st_.add("alpha job number one started")
    clone = st_.copy()
    clone.add("alpha job number one restarted")
    clone.add("totally different line here")
    assert st_.rows() != clone.rows()
    assert len(st_.rows()) == 1 and st_.total == 1
    assert st_.template(1) == "alpha job number one started"
    assert clone.template(1) == "alpha job number one <*>"
    assert len(clone.rows()) == 2 and clone.total == 3


def _assert_same_behaviour(a: StreamTemplates, b: StreamTemplates, lines: Sequence[str]) -> None:
    for line in lines:
        assert a.match(line) == b.match(line)
        assert a.add(line) == b.add(line)
    assert a.rows() == b.rows()
    assert a.total == b.total


def _synthetic_lines(rng: random.Random, n: int) -> list[str]:
    words = ["start", "stop", "open", "close", "read", "write", "fail", "retry", "ok", "slow"]
    lines = []
    for _ in range(n):
        k = rng.randint(1, 7)
        toks = [
            rng.choice(words) if rng.random() < 0.8 else str(rng.randint(0, 999)) for _ in range(k)
        ]
        if rng.random() < 0.3:
            toks.insert(0, f"w{rng.randint(0, 50)}x")  # many distinct first tokens: max_children
        lines.append(" ".join(toks))
    return lines


@pytest.mark.parametrize("max_children", [100, 3])
def test_rebuild_from_rows_behaves_identically(max_children: int) -> None:
    rng = random.Random(7)
    lines = _synthetic_lines(rng, 1500)
    original = StreamTemplates(max_children=max_children)
    for line in lines[:1000]:
        original.add(line)
    rebuilt = StreamTemplates.from_rows(original.rows(), max_children=max_children)
    assert rebuilt.rows() == original.rows()
    assert rebuilt.total == original.total
    _assert_same_behaviour(original, rebuilt, lines[1000:])


def _loghub_lines(limit_per_system: int = 400) -> list[str]:
    lines: list[str] = []
    for path in sorted(LOGHUB.glob("*/*_2k.log_structured.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            lines += [row["Content"] for row in csv.DictReader(f)][:limit_per_system]
    return lines


@needs_loghub
@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 400), st.sampled_from([4, 100]))
def test_rebuild_is_exact_on_random_loghub_streams(
    rng: random.Random, split: int, max_children: int
) -> None:
    lines = rng.sample(LOGHUB_LINES, 600)  # mixed systems: many templates, crowded tree nodes
    original = StreamTemplates(max_children=max_children)
    for line in lines[:split]:
        original.add(line)
    rebuilt = StreamTemplates.from_rows(original.rows(), max_children=max_children)
    _assert_same_behaviour(original, rebuilt, lines[split:])


LOGHUB_LINES = _loghub_lines() if LOGHUB.is_dir() else []


def _grouping_accuracy(truth: Sequence[str], found: Sequence[int]) -> float:
    true_groups: dict[str, set[int]] = defaultdict(set)
    found_groups: dict[int, set[int]] = defaultdict(set)
    for i, (t, f) in enumerate(zip(truth, found, strict=True)):
        true_groups[t].add(i)
        found_groups[f].add(i)
    correct = sum(
        len(members)
        for members in found_groups.values()
        if true_groups[truth[next(iter(members))]] == members
    )
    return correct / len(truth)


# Measured with the default parameters (bench/grouping.py: messages from logwatch.parser, so header
# stripping counts too), minus a small margin where there is room. The issue asks for >= 0.90 on
# average and >= 0.75 everywhere; Linux (0.751) and Mac (0.753) sit right at that floor.
EXPECTED_FLOOR = {
    "Android": 0.90,
    "Apache": 0.99,
    "HPC": 0.89,
    "Hadoop": 0.97,
    "HealthApp": 0.98,
    "Linux": 0.75,
    "Mac": 0.75,
    "OpenSSH": 0.98,
    "Proxifier": 0.98,
    "Spark": 0.90,
    "Windows": 0.98,
    "Zookeeper": 0.97,
}
EXPECTED_AVERAGE = 0.93


@needs_loghub
def test_grouping_accuracy_on_loghub() -> None:
    accuracy = {}
    for path in sorted(LOGHUB.glob("*/*_2k.log_structured.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        raw = path.with_name(path.name.removesuffix("_structured.csv")).read_text(encoding="utf-8")
        lines = raw.splitlines()
        assert len(lines) == len(rows), path
        st_ = StreamTemplates()
        found = [st_.add(parse_line(line).message).template_id for line in lines]
        accuracy[path.parent.name] = _grouping_accuracy([row["EventId"] for row in rows], found)
    assert accuracy, f"no *_2k.log_structured.csv under {LOGHUB}"
    low = {name: acc for name, acc in accuracy.items() if acc < EXPECTED_FLOOR.get(name, 0.75)}
    assert not low, f"grouping accuracy regressed: {low}"
    assert sum(accuracy.values()) / len(accuracy) >= EXPECTED_AVERAGE


def test_an_established_constant_word_is_not_made_a_variable_by_one_message() -> None:
    """600 sessions "initialized by client WindowsUpdateAgent." then one "... client SPP.": the
    one-off is another event, not proof that the client name was a variable all along. Early on,
    before a cluster is established, differing words still generalise as Drain does."""
    st_ = StreamTemplates()
    early = [st_.add(f"Invalid user {name} from 10.0.0.{i}") for i, name in enumerate("abcde")]
    assert early[-1].template == "Invalid user <*> from <IP>"
    assert len({m.template_id for m in early}) == 1
    steady = [
        st_.add(f"Session: {i}_{i * 7} initialized by client WindowsUpdateAgent.")
        for i in range(60)
    ]
    odd = st_.add("Session: 61_427 initialized by client SPP.")
    assert odd.template_id != steady[-1].template_id
    assert st_.template(steady[-1].template_id).endswith("client WindowsUpdateAgent.")
    assert odd.change is TemplateChange.CREATED
