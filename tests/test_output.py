"""Rendering rows: table, json, jsonl, csv; terminal escaping of attacker-controlled log text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from logwatch.output import FORMATS, escape_terminal, render

COLUMNS = ("id", "severity", "reasons", "text")
ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "severity": 90,
        "score": 0.123456,
        "reasons": ["new template", "rare"],
        "text": "plain ascii",
        "timestamp": None,
    },
    {
        "id": 2,
        "severity": 7,
        "score": 1.5,
        "reasons": [],
        "text": "héllo wörld ✓ 日本語 😀",
        "timestamp": "2026-03-03T05:06:07+00:00",
    },
    {
        "id": 3,
        "severity": 55,
        "score": 0.0,
        "reasons": ["line one\nline two"],
        "text": "first line\n\tat com.example.Foo(Foo.java:1)\nlast line",
        "timestamp": None,
    },
    {
        "id": 4,
        "severity": 100,
        "score": 9.75,
        "reasons": ["esc \x1b[2J"],
        "text": "red \x1b[31mALERT\x1b[0m bell\x07 nul\x00 cr\r del\x7f c1\x9b <script>x</script>",
        "timestamp": None,
    },
    {
        "id": 5,
        "severity": 1,
        "score": -0.5,
        "reasons": ['a, "quoted"; b'],
        "text": 'comma, "quote", semicolon;',
        "timestamp": None,
    },
]
RAW_CONTROLS = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))]


def test_formats() -> None:
    assert set(FORMATS) == {"table", "json", "jsonl", "csv"}


# --- escape_terminal -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00", "nul\\x00"),
        ("bell\x07", "bell\\x07"),
        ("cr\r", "cr\\x0d"),
        ("del\x7f", "del\\x7f"),
        ("csi\x9b2J", "csi\\x9b2J"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC: set window title
        ("", ""),
        ("héllo ✓ 日本語 😀 <script>", "héllo ✓ 日本語 😀 <script>"),
        ("back\\x1b slash", "back\\x1b slash"),
    ],
)
def test_escape_terminal(raw: str, shown: str) -> None:
    assert escape_terminal(raw) == shown


def test_escape_terminal_leaves_no_control_character() -> None:
    everything = "".join(chr(c) for c in range(0x00, 0x100))
    escaped = escape_terminal(everything)
    assert not any(c in escaped for c in RAW_CONTROLS)
    assert "ÿ" in escaped and "A" in escaped


# --- json / jsonl --------------------------------------------------------------------------------


def test_json_round_trips() -> None:
    out = render(ROWS, "json", COLUMNS)
    assert out.endswith("\n")
    assert json.loads(out) == ROWS
    assert "\x1b" not in out and "\x00" not in out
    assert "日本語" in out  # unicode kept readable, not \\u-escaped


def test_json_empty() -> None:
    assert json.loads(render([], "json", COLUMNS)) == []


def test_jsonl_one_object_per_line() -> None:
    out = render(ROWS, "jsonl", COLUMNS)
    lines = out.splitlines()
    assert len(lines) == len(ROWS) and out.endswith("\n")
    assert [json.loads(line) for line in lines] == ROWS
    assert "\x1b" not in out and "\r" not in out
    assert render([], "jsonl", COLUMNS) == ""


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_escapes_del_and_c1_controls(fmt: str) -> None:
    out = render([{"text": "del\x7f csi\x9b2J"}], fmt, ("text",))
    assert "\x7f" not in out and "\x9b" not in out
    assert json.loads(out.splitlines()[0] if fmt == "jsonl" else out) in (
        {"text": "del\x7f csi\x9b2J"},
        [{"text": "del\x7f csi\x9b2J"}],
    )


# --- csv -----------------------------------------------------------------------------------------


def test_csv_parses_with_a_header() -> None:
    out = render(ROWS, "csv", COLUMNS)
    reader = csv.DictReader(io.StringIO(out))
    parsed = list(reader)
    assert reader.fieldnames == list(ROWS[0])  # every key, not only the table columns
    assert len(parsed) == len(ROWS)
    assert [int(r["id"]) for r in parsed] == [r["id"] for r in ROWS]
    assert parsed[0]["reasons"] == "new template; rare"
    assert parsed[0]["timestamp"] == ""
    assert parsed[1]["text"] == ROWS[1]["text"]
    assert parsed[4]["text"] == 'comma, "quote", semicolon;'
    assert parsed[2]["text"] == "first line\\n\tat com.example.Foo(Foo.java:1)\\nlast line"
    assert parsed[2]["reasons"] in ("line one\\nline two", "line one\nline two")
    assert not any(c in out for c in RAW_CONTROLS)
    assert "\\x1b[31mALERT" in parsed[3]["text"] and "\\x1b[2J" in parsed[3]["reasons"]


def test_csv_empty_has_the_column_header() -> None:
    assert render([], "csv", COLUMNS) == "id,severity,reasons,text\n"


# --- table ---------------------------------------------------------------------------------------


def test_table_header_and_rows() -> None:
    out = render(ROWS, "table", COLUMNS)
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "SEVERITY", "REASONS", "TEXT"]
    assert len(lines) == 1 + len(ROWS)  # newlines inside values do not add lines
    assert lines[1].startswith("1 ")
    assert "new template; rare" in lines[1]
    assert "héllo wörld ✓ 日本語 😀" in lines[2]
    assert "first line ⏎ " in lines[3] and "line one ⏎ line two" in lines[3]
    assert all(line == line.rstrip() for line in lines)


def test_table_escapes_control_characters() -> None:
    out = render(ROWS, "table", COLUMNS)
    assert not any(c in out.replace("\n", "").replace("\t", "") for c in RAW_CONTROLS)
    assert "red \\x1b[31mALERT\\x1b[0m bell\\x07 nul\\x00 cr\\x0d del\\x7f c1\\x9b" in out
    assert "<script>x</script>" in out
    assert "esc \\x1b[2J" in out


def test_table_escapes_tabs() -> None:
    out = render([{"text": "a\tb"}], "table", ("text",))
    assert "\t" not in out


def test_table_columns_are_aligned() -> None:
    rows = [{"a": "x", "b": "1"}, {"a": "longer value", "b": "22"}]
    lines = render(rows, "table", ("a", "b")).splitlines()
    starts = {line.index(v) for line, v in zip(lines, ["B", "1", "22"], strict=True)}
    assert len(starts) == 1


def test_table_widths_truncate_with_an_ellipsis() -> None:
    out = render([{"text": "x" * 100}], "table", ("text",), {"text": 10})
    assert out.splitlines()[1] == "x" * 9 + "…"
    short = render([{"text": "short"}], "table", ("text",), {"text": 10})
    assert short.splitlines()[1] == "short"


def test_table_values() -> None:
    row = {"f": 0.123456, "n": None, "l": ["a", "b"], "i": 7}
    out = render([row], "table", ("f", "n", "l", "i"))
    cells = out.splitlines()[1].split()
    assert cells == ["0.123", "a;", "b", "7"]


def test_table_missing_column_is_blank() -> None:
    out = render([{"a": "1"}], "table", ("a", "missing"))
    assert out.splitlines()[0].split() == ["A", "MISSING"]
    assert out.splitlines()[1] == "1"


def test_table_empty() -> None:
    assert render([], "table", COLUMNS) == "(none)\n"
