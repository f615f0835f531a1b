"""Scoring anomalies against a labels file: reading labels, precision, recall, F1, kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES

from logwatch.errors import ConfigError
from logwatch.evaluate import Label, evaluate, read_labels
from logwatch.records import Anomaly


def anomaly(path: str | Path, line: int) -> Anomaly:
    return Anomaly(
        stream=Path(path).name,
        path=str(path),
        line=line,
        offset=0,
        timestamp=None,
        detected_at="2026-03-03T00:00:00+00:00",
        severity=80,
        score=0.9,
        reasons=("test",),
        template="t",
        text="x",
    )


def write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    return path


# --- read_labels ---------------------------------------------------------------------------------


def test_read_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "path,line,kind\napp.log,12,oom\nsub/auth.log,3,\n")
    assert read_labels(path) == [Label("app.log", 12, "oom"), Label("sub/auth.log", 3, "")]


def test_read_labels_kind_is_optional(tmp_path: Path) -> None:
    assert read_labels(write(tmp_path, "path,line\na.log,1\n")) == [Label("a.log", 1, "")]


def test_read_the_sample_labels() -> None:
    labels = read_labels(SAMPLES / "labels.csv")
    assert len(labels) > 10
    assert all(lb.line >= 1 and lb.kind and lb.path for lb in labels)
    assert all((SAMPLES / lb.path).is_file() for lb in labels)


def test_missing_labels_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(ConfigError) as info:
        read_labels(missing)
    assert str(missing) in str(info.value)
    assert "cannot be read" in str(info.value)


def test_labels_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        read_labels(tmp_path)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("path,line,kind\na.log,1,x\na.log,twelve,y\n", 3),
        ("path,line,kind\na.log,1.5,x\n", 2),
        ("path,line,kind\na.log,,x\n", 2),
        ("path,line,kind\na.log\n", 2),  # too few fields
        ("path,kind\na.log,x\n", 2),  # no line column
        ("file,line\na.log,1\n", 2),  # no path column
    ],
)
def test_bad_row_names_the_line(tmp_path: Path, content: str, line: int) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as info:
        read_labels(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert "path,line" in message
    assert "\n" not in message


def test_bad_row_after_a_blank_line_names_the_physical_line(tmp_path: Path) -> None:
    path = write(tmp_path, "path,line\n\na.log,1\n\n\na.log,oops\n")
    with pytest.raises(ConfigError, match=rf"^{path}:6:"):
        read_labels(path)


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_line_numbers_are_one_based(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=":2:"):
        read_labels(write(tmp_path, f"path,line\na.log,{bad}\n"))


# --- evaluate ------------------------------------------------------------------------------------


def test_evaluate_hand_made_example(tmp_path: Path) -> None:
    labels = [
        Label("a.log", 3, "crash"),
        Label("a.log", 10, "login"),
        Label("sub/b.log", 5, "crash"),
        Label(str(tmp_path / "c.log"), 7, "scan"),  # absolute path in the labels file
    ]
    found = [
        anomaly(tmp_path / "a.log", 3),  # hit
        anomaly(tmp_path / "sub" / "b.log", 5),  # hit
        anomaly(tmp_path / "sub" / ".." / "c.log", 7),  # hit, through a non-normal path
        anomaly(tmp_path / "a.log", 4),  # false positive: next line
        anomaly(tmp_path / "b.log", 5),  # false positive: other file, same line
    ]
    ev = evaluate(found, labels, tmp_path, lines_total=105)
    assert (ev.labelled, ev.reported, ev.true_positives) == (4, 5, 3)
    assert ev.precision == pytest.approx(3 / 5)
    assert ev.recall == pytest.approx(3 / 4)
    assert ev.f1 == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))
    assert ev.kinds_found == {"crash": (2, 2), "login": (0, 1), "scan": (1, 1)}
    assert ev.missed == (Label("a.log", 10, "login"),)
    assert ev.false_positive_rate == pytest.approx(2 / (105 - 4))


def test_evaluate_relative_anomaly_paths_resolve_against_the_root(tmp_path: Path) -> None:
    ev = evaluate([anomaly("a.log", 1)], [Label("a.log", 1, "k")], tmp_path)
    assert ev.true_positives == 1 and ev.f1 == 1.0
    assert ev.false_positive_rate is None


def test_evaluate_counts_duplicates_once(tmp_path: Path) -> None:
    found = [anomaly(tmp_path / "a.log", 1), anomaly(tmp_path / "a.log", 1)]
    labels = [Label("a.log", 1, "k"), Label("a.log", 1, "k")]
    ev = evaluate(found, labels, tmp_path)
    assert (ev.labelled, ev.reported, ev.true_positives) == (1, 1, 1)
    assert (ev.precision, ev.recall, ev.f1) == (1.0, 1.0, 1.0)


def test_evaluate_nothing(tmp_path: Path) -> None:
    ev = evaluate([], [], tmp_path, lines_total=10)
    assert (ev.precision, ev.recall, ev.f1) == (0.0, 0.0, 0.0)
    assert ev.missed == () and ev.kinds_found == {}
    assert ev.false_positive_rate == 0.0


def test_evaluate_no_hits(tmp_path: Path) -> None:
    ev = evaluate([anomaly(tmp_path / "a.log", 2)], [Label("a.log", 1, "k")], tmp_path, 50)
    assert (ev.precision, ev.recall, ev.f1) == (0.0, 0.0, 0.0)
    assert ev.kinds_found == {"k": (0, 1)}
    assert ev.false_positive_rate == pytest.approx(1 / 49)


# ---------------------------------------------------------------- session level


def test_session_labels_are_recognised_by_their_header(tmp_path: Path) -> None:
    from logwatch.evaluate import is_session_labels, read_session_labels

    sessions = tmp_path / "sessions.csv"
    sessions.write_text("session,label\nblk_1,Anomaly\nblk_2,Normal\nblk_3,1\nblk_4,0\n")
    assert is_session_labels(sessions)
    assert not is_session_labels(SAMPLES / "labels.csv")
    labels = read_session_labels(sessions)
    assert [(lb.key, lb.anomalous) for lb in labels] == [
        ("blk_1", True),
        ("blk_2", False),
        ("blk_3", True),
        ("blk_4", False),
    ]


def test_session_labels_bad_label_names_the_line(tmp_path: Path) -> None:
    from logwatch.evaluate import read_session_labels

    sessions = tmp_path / "sessions.csv"
    sessions.write_text("session,label\nblk_1,Anomaly\nblk_2,maybe\n")
    with pytest.raises(ConfigError, match=r"sessions.csv:3: expected columns session,label"):
        read_session_labels(sessions)


def test_evaluate_sessions_counts() -> None:
    from logwatch.evaluate import SessionLabel, evaluate_sessions

    labels = [SessionLabel(f"blk_{i}", i < 4) for i in range(20)]
    result = evaluate_sessions(labels, {"blk_0", "blk_1", "blk_2", "blk_9", "blk_unlabelled"})
    assert (result.labelled, result.sessions_total) == (4, 20)
    assert (result.reported, result.true_positives) == (4, 3)
    assert result.precision == 0.75 and result.recall == 0.75
    assert result.false_positive_rate == 1 / 16
    assert result.missed == ("blk_3",)


def test_evaluate_cli_session_level_uses_session_findings_and_line_ids(tmp_path: Path) -> None:
    """A session counts as flagged when the session model flagged it (a stored finding) or when a
    reported line carries its id."""
    import json
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from logwatch import incident_store
    from logwatch.cli import cli
    from logwatch.config import Config
    from logwatch.pipeline import Pipeline
    from logwatch.storage import Store

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [
        f"2026-03-04 12:00:{i % 60:02d} INFO Receiving block blk_{100 + i % 50} src 10.0.0.{i % 9}"
        for i in range(400)
    ]
    lines.append("2026-03-04 12:07:00 FATAL disk corrupted while writing block blk_7")
    (logs / "hdfs.log").write_text("\n".join(lines) + "\n")
    store = Store(url)
    store.upgrade()
    Pipeline(Config(log_dir=logs, db_url=url, once=True), store).run_once(
        datetime(2026, 3, 5, tzinfo=UTC)
    )
    assert any("blk_7" in a.text for a in store.anomalies())
    incident_store.save_sessions(
        store,
        [
            incident_store.SessionFinding(
                "hdfs.log", "blk_101", "p", 1, "p", 2, 0.0, 1.0, 2, 80, 0.3, ("missing x",)
            )
        ],
    )
    store.close()
    labels = tmp_path / "sessions.csv"
    labels.write_text(
        "session,label\nblk_7,Anomaly\nblk_101,Normal\nblk_8,Anomaly\nblk_102,Normal\n"
    )
    result = CliRunner().invoke(
        cli, ["evaluate", "--labels", str(labels), "--db-url", url, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert summary["level"] == "session"
    assert (summary["labelled"], summary["reported"], summary["true_positives"]) == (2, 2, 1)
    assert summary["recall"] == 0.5 and summary["false_positive_rate"] == 0.5
