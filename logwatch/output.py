"""Rendering rows for the terminal and for machines: table, json, jsonl, csv.

Log text is attacker-controlled: in a table, control characters (ANSI escapes included) are shown
escaped, never sent to the terminal raw. JSON escapes them by construction.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "json", "jsonl", "csv")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# json.dumps escapes U+0000-U+001F only; DEL and the C1 controls (U+009B is a one-byte CSI,
# the start of a terminal command) would reach the terminal raw.
_JSON_UNESCAPED_CONTROL = re.compile(r"[\x7f-\x9f]")


def _json(value: Any, indent: int | None = None) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_UNESCAPED_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_terminal(value: str) -> str:
    """Make text safe to print: control characters become visible escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def render(
    rows: Sequence[dict[str, Any]],
    fmt: str,
    columns: Sequence[str],
    widths: dict[str, int] | None = None,
) -> str:
    if fmt == "json":
        return _json(list(rows), indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(_json(r) + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf,
            fieldnames=list(rows[0].keys()) if rows else list(columns),
            extrasaction="ignore",
            lineterminator="\n",
        )
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_cell(v) for k, v in r.items()})
        return buf.getvalue()
    return _table(rows, columns, widths or {})


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "; ".join(escape_terminal(str(v)) for v in value)
    if isinstance(value, str):
        return escape_terminal(value).replace("\n", "\\n")
    return value


def _cell(value: Any, width: int | None) -> str:
    if value is None:
        text = ""
    elif isinstance(value, list | tuple):
        text = "; ".join(str(v) for v in value)
    elif isinstance(value, float):
        text = f"{value:.3f}"
    else:
        text = str(value)
    text = escape_terminal(text.replace("\n", " ⏎ ").replace("\t", "\\t"))
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 1)] + "…"
    return text


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], widths: dict[str, int]) -> str:
    if not rows:
        return "(none)\n"
    cells = [[_cell(r.get(c), widths.get(c)) for c in columns] for r in rows]
    size = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(size[i]) for i, c in enumerate(columns)).rstrip()]
    lines += ["  ".join(v.ljust(size[i]) for i, v in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"
