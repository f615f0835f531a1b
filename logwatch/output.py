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
        return json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
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
    text = escape_terminal(text.replace("\n", " ⏎ "))
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
