"""The committed sample logs come from tools/make_sample_logs.py, and their labels are right."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "tools" / "make_sample_logs.py"
SAMPLES = ROOT / "sample_input_logs"
LOG_FILES = ("auth.log", "access.log.1", "access.log", "app.log", "waf.jsonl")
KINDS = {
    "auth.log": {"failed_password_burst", "root_login", "new_user", "segfault"},
    "access.log": {"http_5xx", "sql_injection", "path_traversal", "scanner"},
    "app.log": {"exception", "oom", "db_down"},
    "waf.jsonl": {
        "waf_block",
        "waf_unknown_source",
        "waf_4xx",
        "waf_5xx",
        "waf_unknown_country",
        "waf_delete",
    },
}
NGINX = re.compile(
    r'^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" '
    r'(?P<status>\d{3}) (?P<size>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$'
)
JAVA = re.compile(r"^2026-03-03 \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) +\[[^\]]+\] \S+ - ")
SYSLOG = re.compile(r"^Mar  3 \d\d:\d\d:\d\d web01 [\w.-]+(\[\d+\])?: ")


def generate(out: Path, seed: int) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), "--seed", str(seed)],
        check=True,
        capture_output=True,
    )


def read_lines(name: str) -> list[str]:
    return (SAMPLES / name).read_text(encoding="utf-8").splitlines()


def read_labels(folder: Path = SAMPLES) -> list[tuple[str, int, str]]:
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "line", "kind"]
    return [(path, int(line), kind) for path, line, kind in rows[1:]]


def stream(path: str) -> str:
    return "access.log" if path.startswith("access.log") else path


def waf(line: str) -> dict[str, object]:
    record = json.loads(line)
    assert isinstance(record, dict)
    return record


def waf_request(line: str) -> dict[str, object]:
    request = waf(line)["httpRequest"]
    assert isinstance(request, dict)
    return request


def nginx(line: str) -> dict[str, str]:
    match = NGINX.match(line)
    assert match, line
    return match.groupdict()


def java_level(line: str) -> str | None:
    match = JAVA.match(line)
    return match.group("level") if match else None


# What a labelled line of each kind must look like (text of its first line, the lines after it).
CHECKS: dict[str, Callable[[str, list[str]], bool]] = {
    "failed_password_burst": lambda line, _: bool(
        re.search(
            r"sshd\[\d+\]: Failed password for invalid user \w+ from 203\.0\.113\.7 port \d+ ssh2$",
            line,
        )
    ),
    "root_login": lambda line, _: bool(
        re.search(r"sshd\[\d+\]: Accepted password for root from \d+\.\d+\.\d+\.\d+ port \d+", line)
    ),
    "new_user": lambda line, _: "useradd[" in line and "new user: name=backdoor, UID=0" in line,
    "segfault": lambda line, _: " kernel: " in line and "segfault at" in line,
    "http_5xx": lambda line, _: nginx(line)["status"] in {"500", "502", "503"},
    "sql_injection": lambda line, _: "UNION%20SELECT" in nginx(line)["path"],
    "path_traversal": lambda line, _: (
        "../" in nginx(line)["path"] and "etc/passwd" in nginx(line)["path"]
    ),
    "scanner": lambda line, _: bool(re.search(r"sqlmap|Nikto", nginx(line)["agent"])),
    "exception": lambda line, after: (
        java_level(line) == "ERROR"
        and bool(re.match(r"^[\w.$]+(Exception|Error)\b", after[0]))
        and after[1].startswith("\tat ")
        and any(a.startswith("Caused by: ") for a in after)
        and any(re.match(r"^\t\.\.\. \d+ more$", a) for a in after)
    ),
    "oom": lambda line, after: (
        java_level(line) in {"ERROR", "FATAL"}
        and "java.lang.OutOfMemoryError: Java heap space" in line
        and after[0] == "java.lang.OutOfMemoryError: Java heap space"
    ),
    "db_down": lambda line, _: (
        java_level(line) == "ERROR"
        and "HikariPool-1 - Connection is not available, request timed out after 30000ms" in line
    ),
    "waf_block": lambda line, _: '"action": "BLOCK"' in line,
    "waf_unknown_source": lambda line, _: waf(line)["httpSourceName"] not in {"ALB", "CF"},
    "waf_4xx": lambda line, _: waf(line)["httpStatus"] in {403, 404, 429},
    "waf_5xx": lambda line, _: waf(line)["httpStatus"] in {500, 503},
    "waf_unknown_country": lambda line, _: (
        waf_request(line)["country"] not in {"US", "GB", "DE", "FR", "NL"}
    ),
    "waf_delete": lambda line, _: waf_request(line)["httpMethod"] == "DELETE",
}


def test_committed_samples_are_the_generator_output(tmp_path: Path) -> None:
    generate(tmp_path, 7)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in SAMPLES.iterdir())
    for name in made:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name


def test_default_seed_is_seven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, str(GENERATOR)], check=True, capture_output=True)
    for name in (*LOG_FILES, "labels.csv"):
        assert (tmp_path / "sample_input_logs" / name).read_bytes() == (SAMPLES / name).read_bytes()


def test_another_seed_gives_other_content(tmp_path: Path) -> None:
    generate(tmp_path, 8)
    for name in (*LOG_FILES, "labels.csv"):
        assert (tmp_path / name).read_bytes() != (SAMPLES / name).read_bytes(), name
    assert read_labels(tmp_path) != read_labels()


def test_every_label_points_at_a_line_of_its_kind() -> None:
    files = {name: read_lines(name) for name in LOG_FILES}
    labels = read_labels()
    assert labels == sorted(labels)
    assert len(set(labels)) == len(labels)
    for path, line, kind in labels:
        assert kind in KINDS[stream(path)], (path, kind)
        lines = files[path]
        assert 100 < line <= len(lines), (path, line)
        text, after = lines[line - 1], lines[line : line + 12]
        assert CHECKS[kind](text, after), (path, line, kind, text)


def test_every_kind_appears_in_sensible_amounts() -> None:
    labels = read_labels()
    seen = Counter((stream(path), kind) for path, _, kind in labels)
    for name, kinds in KINDS.items():
        for kind in kinds:
            assert seen[name, kind] >= 1, (name, kind)
    for name in ("access.log", "waf.jsonl"):  # each kind 2-4 times (both access files together)
        for kind in KINDS[name]:
            assert 2 <= seen[name, kind] <= 4, (name, kind)
    bursts = [line for path, line, kind in labels if kind == "failed_password_burst"]
    assert len(bursts) >= 10  # several bursts of 5-8 lines each
    for name in LOG_FILES:
        count = sum(1 for path, _, _ in labels if path == name)
        total = len(read_lines(name))
        assert 900 <= total <= 1_800, (name, total)
        assert 0.005 <= count / total <= 0.025, (name, count, total)


def test_anomalies_are_spread_through_each_file() -> None:
    labels = read_labels()
    for name in LOG_FILES:
        lines = sorted(line for path, line, _ in labels if path == name)
        total = len(read_lines(name))
        assert lines[0] < total / 3 and lines[-1] > 2 * total / 3, (name, lines)


def test_unlabelled_lines_do_not_look_like_anomalies() -> None:
    """Labels are complete: no ordinary line matches an anomaly kind of its file."""
    labelled = {(path, line) for path, line, _ in read_labels()}
    for name in LOG_FILES:
        lines = read_lines(name)
        kinds = KINDS[stream(name)]
        for number, text in enumerate(lines, start=1):
            if (name, number) in labelled:
                continue
            if name == "app.log" and java_level(text) is None:
                continue  # a stack-trace line belongs to the event above it
            after = lines[number : number + 12] + ["", ""]
            matches = [kind for kind in kinds if CHECKS[kind](text, after)]
            assert not matches, (name, number, matches, text)
            if name == "app.log":
                assert java_level(text) in {"DEBUG", "INFO", "WARN"}, (number, text)


def test_lines_parse_in_their_format() -> None:
    for text in read_lines("auth.log"):
        assert SYSLOG.match(text), text
    for name in ("access.log.1", "access.log"):
        for text in read_lines(name):
            nginx(text)
    for text in read_lines("waf.jsonl"):
        record = waf(text)
        assert list(record) == [
            "timestamp",
            "action",
            "httpSourceName",
            "httpStatus",
            "terminatingRuleId",
            "httpRequest",
        ]
        assert list(waf_request(text)) == ["clientIp", "country", "httpMethod", "uri"]
    app = read_lines("app.log")
    assert java_level(app[0]) == "INFO"
    assert Counter(java_level(t) for t in app)["WARN"] >= 5  # WARN alone is not anomalous


def test_normal_traffic_is_varied() -> None:
    access = [nginx(t) for t in read_lines("access.log.1") + read_lines("access.log")]
    assert len({a["ip"] for a in access}) > 100
    assert len({a["path"] for a in access}) > 300
    assert len({a["agent"] for a in access}) >= 8
    waf_normal = [waf(t) for t in read_lines("waf.jsonl")]
    assert len({str(w["httpRequest"]) for w in waf_normal}) > 1_000
    app_msgs = {t.split(" - ", 1)[-1] for t in read_lines("app.log")}
    assert len(app_msgs) > 1_000


def test_timestamps_never_go_backwards() -> None:
    for name in ("access.log.1", "access.log"):
        times = [nginx(t)["time"] for t in read_lines(name)]
        assert times == sorted(times), name
    stamps = [waf(t)["timestamp"] for t in read_lines("waf.jsonl")]
    assert stamps == sorted(stamps, key=lambda s: int(str(s)))
    app_times = [t[:23] for t in read_lines("app.log") if java_level(t)]
    assert app_times == sorted(app_times)
    auth_times = [t[:15] for t in read_lines("auth.log")]
    assert auth_times == sorted(auth_times)
    last_old = nginx(read_lines("access.log.1")[-1])["time"]
    first_new = nginx(read_lines("access.log")[0])["time"]
    assert last_old < first_new  # access.log.1 is the older, rotated file
