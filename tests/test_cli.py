"""The command line: every command through CliRunner, on SQLite and PostgreSQL.

One ``run --once`` over a copy of the samples per database is shared by the read-only tests of this
module (``populated``); tests that need their own database or logs make them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from conftest import PG_URL, ROOT, SAMPLES, private_pg_url
from sqlalchemy.engine import make_url

from logwatch import __version__
from logwatch.cli import cli

LOG_FILES = ("access.log", "access.log.1", "app.log", "auth.log", "waf.jsonl")
STREAMS = {"access.log", "app.log", "auth.log", "waf.jsonl"}
JSONL_KEYS = {
    "id",
    "stream",
    "path",
    "line",
    "offset",
    "timestamp",
    "detected_at",
    "severity",
    "score",
    "reasons",
    "template",
    "text",
}
PASSWORD = "Sup3rS3cretPW"  # noqa: S105 - a fake password that must never be printed
SUMMARY = re.compile(
    r"^Processed (\d+) of (\d+) files: ([\d,]+) lines, ([\d,]+) events .*; "
    r"([\d,]+) new anomalies",
    re.M,
)


def invoke(
    args: list[str], state: Path, env: dict[str, str | None] | None = None, catch: bool = False
) -> Result:
    """Run the CLI with the home directory out of reach and no inherited LOGWATCH_DB_URL."""
    full_env: dict[str, str | None] = {"XDG_STATE_HOME": str(state), "LOGWATCH_DB_URL": None}
    full_env.update(env or {})
    return CliRunner(env=full_env).invoke(cli, args, catch_exceptions=catch)


def sample_copy(target: Path) -> Path:
    shutil.copytree(SAMPLES, target)
    (target / "labels.csv").unlink()
    return target


def total_lines(log_dir: Path) -> int:
    return sum((log_dir / name).read_bytes().count(b"\n") for name in LOG_FILES)


def parse_summary(output: str) -> tuple[int, int, int, int, int]:
    m = SUMMARY.search(output)
    assert m, f"no once-summary in output: {output!r}"
    return tuple(int(g.replace(",", "")) for g in m.groups())  # type: ignore[return-value]


@dataclass
class Populated:
    kind: str
    url: str
    log_dir: Path
    state: Path
    first_output: str

    def cli(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        return invoke([*args, "--db-url", self.url], self.state, env=env)

    def anomalies(self, *args: str) -> list[dict[str, Any]]:
        result = self.cli("anomalies", "--format", "jsonl", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def populated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Populated]:
    """A database filled by one ``run --once`` over a copy of the samples (shared, read-only)."""
    base = tmp_path_factory.mktemp(f"populated-{request.param}")
    log_dir = sample_copy(base / "logs")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{base / 'logwatch.db'}"
        else:
            url = stack.enter_context(private_pg_url())
        state = base / "state"
        result = invoke(["run", "--log-dir", str(log_dir), "--once", "--db-url", url], state)
        assert result.exit_code == 0, result.output
        yield Populated(request.param, url, log_dir, state, result.output)


# --- run --once ------------------------------------------------------------------------------


def test_once_prints_summary_with_line_count(populated: Populated) -> None:
    files_read, files_seen, lines, events, new = parse_summary(populated.first_output)
    assert (files_read, files_seen) == (5, 5)
    assert lines == total_lines(populated.log_dir) == 6733
    assert 0 < events <= lines
    assert new == len(populated.anomalies()) > 0
    assert "Traceback" not in populated.first_output


def test_second_once_run_is_idempotent(populated: Populated) -> None:
    before = populated.anomalies()
    result = populated.cli("run", "--log-dir", str(populated.log_dir), "--once")
    assert result.exit_code == 0, result.output
    assert parse_summary(result.output)[4] == 0
    assert populated.anomalies() == before


# --- anomalies ----------------------------------------------------------------------------------


def test_anomalies_jsonl_has_the_documented_keys(populated: Populated) -> None:
    result = populated.cli("anomalies", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines
    for line in lines:
        a = json.loads(line)
        assert isinstance(a, dict)
        assert JSONL_KEYS <= a.keys(), JSONL_KEYS - a.keys()
        assert a["stream"] in STREAMS
        assert isinstance(a["reasons"], list) and a["reasons"]
        assert all(isinstance(r, str) and r for r in a["reasons"])
        assert isinstance(a["severity"], int) and 0 <= a["severity"] <= 100
        assert isinstance(a["score"], float)
        assert isinstance(a["line"], int) and a["line"] >= 1
        assert a["timestamp"] is None or isinstance(a["timestamp"], str)
        datetime.fromisoformat(a["detected_at"])
    ids = [json.loads(line)["id"] for line in lines]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_anomaly_line_and_offset_point_at_the_event(populated: Populated) -> None:
    found = populated.anomalies()
    for a in found:
        data = Path(a["path"]).read_bytes()
        file_lines = data.split(b"\n")
        offset = sum(len(x) + 1 for x in file_lines[: a["line"] - 1])
        first = a["text"].split("\n")[0].encode("utf-8")
        assert a["offset"] == offset, a
        assert data[offset:].startswith(first), a
        assert file_lines[a["line"] - 1].startswith(first), a
    assert Path(found[0]["path"]).parent == populated.log_dir


def test_anomalies_json_csv_and_table_agree(populated: Populated) -> None:
    jsonl = populated.anomalies()
    as_json = populated.cli("anomalies", "--format", "json")
    assert as_json.exit_code == 0
    parsed = json.loads(as_json.stdout)
    assert isinstance(parsed, list) and parsed == jsonl

    as_csv = populated.cli("anomalies", "--format", "csv")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == len(jsonl)
    assert JSONL_KEYS <= set(rows[0])
    assert [int(r["id"]) for r in rows] == [a["id"] for a in jsonl]
    assert [int(r["line"]) for r in rows] == [a["line"] for a in jsonl]

    table = populated.cli("anomalies")
    assert table.exit_code == 0
    header, *body = table.stdout.splitlines()
    assert header.split() == [
        "ID",
        "SEVERITY",
        "ACKED",
        "STREAM",
        "LINE",
        "TIMESTAMP",
        "REASONS",
        "TEXT",
    ]
    assert len(body) == len(jsonl)
    assert [int(line.split()[0]) for line in body] == [a["id"] for a in jsonl]


def test_anomalies_min_severity_limit_stream(populated: Populated) -> None:
    everything = populated.anomalies()
    high = populated.anomalies("--min-severity", "70")
    assert high == [a for a in everything if a["severity"] >= 70]
    assert 0 < len(high) < len(everything)

    assert populated.anomalies("--limit", "3") == everything[:3]

    access = populated.anomalies("--stream", "access.log")
    assert access == [a for a in everything if a["stream"] == "access.log"] != []
    assert {Path(a["path"]).name for a in access} <= {"access.log", "access.log.1"}
    assert populated.anomalies("--stream", "no-such.log") == []

    combined = populated.anomalies("--stream", "auth.log", "--min-severity", "50", "--limit", "2")
    assert (
        combined == [a for a in everything if a["stream"] == "auth.log" and a["severity"] >= 50][:2]
    )


@pytest.mark.parametrize("args", [["--min-severity", "101"], ["--limit", "0"], ["--format", "xml"]])
def test_anomalies_bad_values_are_usage_errors(populated: Populated, args: list[str]) -> None:
    result = populated.cli("anomalies", *args)
    assert result.exit_code == 2
    assert args[1] in result.output
    assert "Traceback" not in result.output


def test_anomalies_since(populated: Populated) -> None:
    everything = populated.anomalies()
    assert populated.anomalies("--since", "1h") == everything
    assert populated.anomalies("--since", "2000-01-01") == everything
    assert populated.anomalies("--since", "2999-01-01") == []
    assert populated.anomalies("--since", "0s") == []
    empty_table = populated.cli("anomalies", "--since", "2999-01-01")
    assert empty_table.exit_code == 0 and empty_table.stdout == "(none)\n"


def test_anomalies_since_with_a_zone_offset(populated: Populated) -> None:
    everything = populated.anomalies()
    plus5 = timezone(timedelta(hours=5))
    minus5 = timezone(timedelta(hours=-5))
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).astimezone(plus5)
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).astimezone(minus5)
    assert populated.anomalies("--since", an_hour_ago.isoformat()) == everything
    assert populated.anomalies("--since", in_an_hour.isoformat()) == []


def test_anomalies_bad_since_names_the_value(populated: Populated) -> None:
    result = populated.cli("anomalies", "--since", "yesterday-ish")
    assert result.exit_code == 2
    assert "'yesterday-ish'" in result.output
    assert "Traceback" not in result.output


# --- files, templates, status -------------------------------------------------------------------


def test_files_lists_every_sample_with_no_lag(populated: Populated) -> None:
    result = populated.cli("files", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert sorted(by_name) == sorted(LOG_FILES)
    for name, r in by_name.items():
        size = (populated.log_dir / name).stat().st_size
        assert (r["offset"], r["size"], r["lag_bytes"]) == (size, size, 0), r
        assert r["lines_read"] == (populated.log_dir / name).read_bytes().count(b"\n")
        assert r["status"] == "active"
        assert not r["last_error"]
    assert by_name["access.log.1"]["stream"] == "access.log"
    assert by_name["access.log"]["stream"] == "access.log"
    assert by_name["waf.jsonl"]["stream"] == "waf.jsonl"

    table = populated.cli("files")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["PATH", "STREAM", "STATUS"]
    assert len(table.stdout.splitlines()) == 1 + len(LOG_FILES)


def test_templates_json(populated: Populated) -> None:
    result = populated.cli("templates", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["stream"] for r in rows} == STREAMS
    assert all({"stream", "template_id", "count", "template"} <= r.keys() for r in rows)
    events = parse_summary(populated.first_output)[3]
    assert sum(r["count"] for r in rows) == events
    for stream in STREAMS:
        counts = [r["count"] for r in rows if r["stream"] == stream]
        assert counts == sorted(counts, reverse=True)


def test_templates_of_one_stream_with_first_and_last_seen(populated: Populated) -> None:
    everything = json.loads(populated.cli("templates", "--format", "json").stdout)
    result = populated.cli("templates", "--stream", "auth.log", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == [r for r in everything if r["stream"] == "auth.log"] != []
    for r in rows:
        assert datetime.fromisoformat(r["first_seen"]) <= datetime.fromisoformat(r["last_seen"])


def test_streams_agree_with_files_templates_and_anomalies(populated: Populated) -> None:
    result = populated.cli("streams", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["stream"]: r for r in json.loads(result.stdout)}
    assert set(rows) == STREAMS
    files = json.loads(populated.cli("files", "--format", "json").stdout)
    templates = json.loads(populated.cli("templates", "--format", "json").stdout)
    found = populated.anomalies()
    for name, r in rows.items():
        assert r["files"] == sum(f["stream"] == name for f in files)
        assert r["events"] == sum(t["count"] for t in templates if t["stream"] == name)
        assert r["templates"] == sum(t["stream"] == name for t in templates)
        assert r["anomalies"] == r["unacked"] == sum(a["stream"] == name for a in found)
        # Every sample stream is big enough to train its model in --once mode.
        assert r["model_trained"] is True and r["model_trained_at"]
        assert r["last_read"] and r["last_anomaly"]
    assert rows["access.log"]["files"] == 2  # access.log and access.log.1
    table = populated.cli("streams").stdout.splitlines()
    assert table[0].split()[:5] == ["STREAM", "FILES", "EVENTS", "TEMPLATES", "ANOMALIES"]
    assert len(table) == 1 + len(STREAMS)


def test_anomalies_unacked_and_context_on_the_samples(populated: Populated) -> None:
    everything = populated.anomalies()
    assert all(a["acked"] is False for a in everything)
    assert populated.anomalies("--unacked") == everything
    with_context = populated.anomalies("--context", "2", "--limit", "5")
    for a in with_context:
        lines = Path(a["path"]).read_text(encoding="utf-8").split("\n")
        first = max(1, a["line"] - 2)
        assert a["context"] == [
            {"line": n, "text": lines[n - 1]} for n in range(first, a["line"] + 3)
        ]
        assert a["context"][a["line"] - first]["text"] == a["text"].split("\n")[0]
    table = populated.cli("anomalies", "--context", "1", "--limit", "2").stdout.splitlines()
    # header, then per anomaly: its row and three indented lines, the middle one marked.
    assert len(table) == 1 + 2 * 4
    assert table[3].startswith("    > ") and table[2].startswith("      ")


def test_status_json_has_counts(populated: Populated) -> None:
    result = populated.cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    report = parsed[0] if isinstance(parsed, list) else parsed
    assert report["anomalies"] == len(populated.anomalies())
    assert report["files_active"] == len(LOG_FILES)
    assert report["streams"] == len(STREAMS)
    assert report["lag_bytes"] == 0
    templates = json.loads(populated.cli("templates", "--format", "json").stdout)
    assert report["templates"] == len(templates)
    assert report["models"] >= 1
    table = populated.cli("status")
    assert table.exit_code == 0
    assert re.search(rf"^anomalies\s+{report['anomalies']}$", table.stdout, re.M)


def _pg_url_with_password(user: str) -> str:
    return (
        make_url(PG_URL).set(username=user, password=PASSWORD).render_as_string(hide_password=False)
    )


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--format", "json"],
        ["anomalies"],
        ["files"],
        ["db", "upgrade"],
        ["status", "-vv"],
    ],
)
def test_database_password_is_never_printed(tmp_path: Path, args: list[str]) -> None:
    url = _pg_url_with_password("lw_no_such_role")  # cannot log in, reachable or not
    assert PASSWORD in url
    result = invoke([*args, "--db-url", url], tmp_path)
    assert result.exit_code == 1, result.output
    assert PASSWORD not in result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output


def test_run_never_prints_the_password(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    url = _pg_url_with_password("lw_no_such_role")
    result = invoke(["run", "--log-dir", str(log_dir), "--once", "-v", "--db-url", url], tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") or "\nError: " in result.output
    assert PASSWORD not in result.output


def test_db_upgrade(db_url: str, tmp_path: Path) -> None:
    for _ in range(2):  # idempotent
        result = invoke(["db", "upgrade", "--db-url", db_url], tmp_path, catch=False)
        assert result.exit_code == 0, result.output
        assert "newest schema" in result.output
    quiet = invoke(["db", "upgrade", "-q", "--db-url", db_url], tmp_path, catch=False)
    assert quiet.exit_code == 0 and quiet.output == ""


# --- entry points, errors, help -----------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--log_dir", "--log-dir"])
def test_seed_compatible_invocation_runs(tmp_path: Path, flag: str) -> None:
    log_dir = sample_copy(tmp_path / "logs")
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    result = invoke([flag, str(log_dir), "--once", "--db-url", url], tmp_path / "state")
    assert result.exit_code == 0, result.output
    assert parse_summary(result.output)[2] == total_lines(log_dir)
    listed = invoke(["anomalies", "--format", "jsonl", "--db-url", url], tmp_path / "state")
    assert len(listed.stdout.splitlines()) == parse_summary(result.output)[4]


def test_main_py_is_the_seed_entry_point(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    env = {"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--log_dir", str(missing)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"Error: log directory '{missing}' does not exist\n"


@pytest.mark.parametrize("flag", ["--log_dir", "--log-dir"])
def test_missing_log_dir_is_one_error_line(tmp_path: Path, flag: str) -> None:
    missing = tmp_path / "does-not-exist"
    result = invoke([flag, str(missing), "--db-url", f"sqlite:///{tmp_path / 'x.db'}"], tmp_path)
    assert result.exit_code == 1
    assert result.output == f"Error: log directory '{missing}' does not exist\n"


def test_log_dir_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "app.log"
    a_file.write_text("hello\n")
    result = invoke(["run", "--log-dir", str(a_file), "--once"], tmp_path)
    assert result.exit_code == 1
    assert result.output == f"Error: log directory '{a_file}' is not a directory\n"


def test_no_log_dir_at_all(tmp_path: Path) -> None:
    result = invoke(["run", "--once"], tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "--log-dir" in result.output
    assert len(result.output.splitlines()) == 1


def test_poll_interval_zero_is_a_config_error(tmp_path: Path) -> None:
    result = invoke(["run", "--log-dir", str(tmp_path), "--poll-interval", "0"], tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "poll_interval" in result.output
    assert "0" in result.output and len(result.output.splitlines()) == 1


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_poll_interval_not_finite_is_a_config_error(
    tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logwatch.daemon

    started: list[Any] = []
    monkeypatch.setattr(logwatch.daemon, "run_daemon", lambda *a, **k: started.append(a))
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = invoke(
        ["run", "--log-dir", str(tmp_path), "--poll-interval", value, "--db-url", url], tmp_path
    )
    assert started == []
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "poll_interval" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--bogus"],
        ["--bogus"],
        ["anomalies", "--bogus"],
        ["db", "upgrade", "-x"],
        ["no-such-command-or-option", "x"],
    ],
)
def test_unknown_option_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    result = invoke(args, tmp_path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))


HELP_CASES = [
    pytest.param(
        path,
        id=" ".join(path) or "logwatch",
    )
    for path in [(), *_command_paths(cli)]
]


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("path", HELP_CASES)
def test_help_on_every_command_has_an_example(
    tmp_path: Path, path: tuple[str, ...], flag: str
) -> None:
    result = invoke([*path, flag], tmp_path, catch=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    assert "Example" in result.output


def test_version(tmp_path: Path) -> None:
    result = invoke(["--version"], tmp_path, catch=False)
    assert result.exit_code == 0
    assert __version__ in result.output and "logwatch" in result.output


def test_logwatch_db_url_env_var_is_honoured(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    env = {"LOGWATCH_DB_URL": f"sqlite:///{db}"}
    result = invoke(["db", "upgrade"], tmp_path / "state", env=env, catch=False)
    assert result.exit_code == 0, result.output
    assert db.exists()
    status = invoke(["status", "--format", "json"], tmp_path / "state", env=env, catch=False)
    parsed = json.loads(status.stdout)
    report = parsed[0] if isinstance(parsed, list) else parsed
    assert report["database"] == f"sqlite:///{db}"
    assert not (tmp_path / "state" / "logwatch" / "logwatch.db").exists()
    # --db-url wins over the environment
    flag_db = tmp_path / "from-flag.db"
    invoke(["db", "upgrade", "--db-url", f"sqlite:///{flag_db}"], tmp_path / "state", env=env)
    assert flag_db.exists()


def test_default_database_lives_under_xdg_state_home(tmp_path: Path) -> None:
    result = invoke(["db", "upgrade"], tmp_path / "state", catch=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "state" / "logwatch" / "logwatch.db").exists()


def test_log_content_is_escaped_in_the_table(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    normal = (SAMPLES / "app.log").read_bytes()
    assert normal.count(b"\n") > 300
    payload = b"2026-03-03 09:00:00,123 ERROR [x] p: \x1b[31m<script>alert(1)</script>\x1b[0m\n"
    (log_dir / "app.log").write_bytes(normal + payload)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    state = tmp_path / "state"
    assert (
        invoke(
            ["run", "--log-dir", str(log_dir), "--once", "--db-url", url], state, catch=False
        ).exit_code
        == 0
    )
    jsonl = invoke(["anomalies", "--format", "jsonl", "--db-url", url], state, catch=False)
    flagged = [json.loads(line) for line in jsonl.stdout.splitlines()]
    evil = [a for a in flagged if "<script>" in a["text"]]
    assert evil, "the injected line was not flagged"
    assert evil[0]["text"].startswith("2026-03-03 09:00:00,123 ERROR [x] p: \x1b[31m<script>")
    assert "\x1b" not in jsonl.stdout

    for fmt in ("table", "csv", "json"):
        out = invoke(["anomalies", "--format", fmt, "--db-url", url], state, catch=False).stdout
        assert "\x1b" not in out, fmt
        assert "<script>" in out, fmt
    table = invoke(["anomalies", "--db-url", url], state, catch=False).stdout
    assert "\\x1b[31m<script>" in table
    templates = invoke(["templates", "--db-url", url], state, catch=False).stdout
    assert "\x1b" not in templates


def test_evaluate_scores_the_run_against_labels(populated: Populated) -> None:
    labels = Path(__file__).resolve().parents[1] / "sample_input_logs" / "labels.csv"
    result = populated.cli(
        "evaluate", "--labels", str(labels), "--log-dir", str(populated.log_dir), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert summary["labelled"] == 70
    assert summary["reported"] == len(populated.anomalies())
    assert summary["recall"] >= 0.95 and summary["precision"] >= 0.8
    assert summary["kinds"]["waf_block"] == {"found": 4, "labelled": 4}
    assert 0 < summary["false_positive_rate"] < 0.01
    table = populated.cli("evaluate", "--labels", str(labels), "--log-dir", str(populated.log_dir))
    assert re.search(r"^recall\s+0\.9\d+$", table.stdout, re.M)


def test_evaluate_with_a_missing_labels_file_is_one_line_error(populated: Populated) -> None:
    result = populated.cli("evaluate", "--labels", "/nonexistent/labels.csv")
    assert result.exit_code == 1
    assert result.output == (
        "Error: labels file '/nonexistent/labels.csv' cannot be read: No such file or directory\n"
    )
