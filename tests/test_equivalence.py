"""The speed-ups of issue 7 change no result: with the fast paths of templating on (the
exact-repeat cache, and ``--once`` replaying its learning pass instead of templating each event
twice) and off, template ids and texts, slot values and stored anomalies are identical."""

from __future__ import annotations

import importlib
import random
import shutil
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES

from logwatch import templates
from logwatch.config import Config
from logwatch.parser import parse_line
from logwatch.pipeline import Pipeline
from logwatch.storage import Store
from logwatch.templates import StreamTemplates

ROOT = Path(__file__).resolve().parents[1]
LOGHUB = ROOT.parent / "shared" / "data" / "loghub"
SYSTEMS = sorted(p.name for p in LOGHUB.glob("*") if (p / f"{p.name}_2k.log").is_file())
needs_loghub = pytest.mark.skipif(not SYSTEMS, reason=f"loghub samples not found at {LOGHUB}")
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def _switch(on: bool) -> None:
    templates.FAST_PATHS = on


@pytest.fixture(autouse=True)
def _restore_switch() -> Iterator[None]:
    saved = templates.FAST_PATHS
    yield
    templates.FAST_PATHS = saved


def _messages(system: str) -> list[str]:
    text = (LOGHUB / system / f"{system}_2k.log").read_text(encoding="utf-8")
    return [parse_line(line).message for line in text.splitlines()]


def _generated(tmp: Path, lines: int, systems: Sequence[str], seed: int = 3) -> list[Path]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        bench_generate = importlib.import_module("generate")  # bench/generate.py
    finally:
        sys.path.remove(str(ROOT / "bench"))
    paths: list[Path] = bench_generate.generate(tmp, lines, list(systems), None, seed, LOGHUB)
    return paths


def _trace(
    messages: Sequence[str],
    *,
    fast: bool,
    learned: Sequence[str] | None = None,
    warm: int = 0,
    **params: Any,
) -> tuple[list[tuple[Any, ...]], list[Any], list[Any], int]:
    """Every match of ``messages`` (after ``warm`` of them were added first), then the rows.
    ``learned``: a copy learns these first, recording, and the templates replay that recording."""
    _switch(fast)
    st = StreamTemplates(**params)
    for message in messages[:warm]:
        st.add(message)
    if learned is not None:
        scratch = st.copy()
        scratch.record()
        for message in learned:
            scratch.add(message)
        st.replay(scratch.recording())
    out = []
    for message in messages[warm:]:
        m = st.add(message)
        out.append((m.template_id, m.template, m.change, m.slot_values))
    return out, st.rows(), st.dirty_rows(), st.total


def _assert_same(messages: Sequence[str], **kw: Any) -> None:
    slow = _trace(messages, fast=False, **{k: v for k, v in kw.items() if k != "learned"})
    quick = _trace(messages, fast=True, **kw)
    for i, (a, b) in enumerate(zip(slow[0], quick[0], strict=True)):
        assert a == b, (i, messages[i + kw.get("warm", 0)])
    assert slow[1:] == quick[1:]


@needs_loghub
@pytest.mark.parametrize("system", SYSTEMS)
def test_templates_identical_on_each_loghub_sample(system: str) -> None:
    messages = _messages(system)
    _assert_same(messages)  # exact-repeat cache
    _assert_same(messages, learned=messages[500:], warm=500)  # replay of a learning pass


@needs_loghub
@pytest.mark.parametrize("max_children", [4, 100])
def test_templates_identical_on_mixed_streams(max_children: int) -> None:
    """All systems in one stream, shuffled in runs: crowded tree nodes, many template changes."""
    rng = random.Random(7)
    runs = [m for s in SYSTEMS for m in _messages(s)]
    chunks = [runs[i : i + rng.randint(1, 30)] for i in range(0, len(runs), 30)]
    rng.shuffle(chunks)
    messages = [m for c in chunks for m in c] * 2  # the second round is mostly exact repeats
    _assert_same(messages, max_children=max_children)
    _assert_same(messages, learned=messages, max_children=max_children)


@needs_loghub
def test_replay_of_another_sequence_falls_back() -> None:
    """A recording of other messages (a file that changed between the passes) is dropped at the
    first difference and the rest is templated as usual."""
    messages = _messages("OpenSSH") + _messages("Linux")
    other = messages[:1500] + _messages("Mac")
    _assert_same(messages, learned=other)
    _assert_same(messages, learned=messages[:700])  # a recording cut short (its memory cap)


@needs_loghub
def test_templates_identical_on_generated_input(tmp_path: Path) -> None:
    for path in _generated(tmp_path, 24_000, SYSTEMS):
        messages = [parse_line(line).message for line in path.read_text().splitlines()]
        _assert_same(messages)
        _assert_same(messages, learned=messages)


def _once(log_dir: Path, db: Path, fast: bool) -> list[tuple[Any, ...]]:
    _switch(fast)
    store = Store(f"sqlite:///{db}")
    store.upgrade()
    try:
        Pipeline(Config(log_dir=log_dir, db_url=store.url, once=True), store).run_once(NOW)
        return [
            (a.path, a.line, a.severity, a.reasons, a.template, a.template_id, a.score, a.closest)
            for a in store.anomalies()
        ]
    finally:
        store.close()


def _assert_same_anomalies(log_dir: Path, tmp: Path) -> None:
    slow = _once(log_dir, tmp / "slow.db", fast=False)
    quick = _once(log_dir, tmp / "fast.db", fast=True)
    assert slow, "no anomalies at all: nothing was compared"
    assert quick == slow


def test_once_anomalies_identical_on_sample_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(SAMPLES, logs)
    _assert_same_anomalies(logs, tmp_path)


@needs_loghub
def test_once_anomalies_identical_on_loghub_samples(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for system in ("Apache", "HDFS", "Linux", "OpenSSH", "Zookeeper"):
        if system in SYSTEMS:
            (logs / system).mkdir(parents=True)
            shutil.copy(LOGHUB / system / f"{system}_2k.log", logs / system / f"{system}.log")
    _assert_same_anomalies(logs, tmp_path)


@needs_loghub
def test_once_anomalies_identical_on_generated_input(tmp_path: Path) -> None:
    _generated(tmp_path / "logs", 6_000, ["HealthApp", "Hadoop", "Proxifier"], seed=5)
    _assert_same_anomalies(tmp_path / "logs", tmp_path)
