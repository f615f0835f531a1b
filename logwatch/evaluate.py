"""Score reported anomalies against a labels file (``path,line[,kind]``): precision, recall, F1.

A label matches an anomaly of the same file whose event starts at that line; ``path`` in the labels
file is relative to the log root (or absolute).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from logwatch.errors import ConfigError
from logwatch.records import Anomaly


@dataclass(frozen=True)
class Label:
    path: str
    line: int
    kind: str


class Scores:
    """Precision, recall and F1 from ``labelled``, ``reported`` and ``true_positives``."""

    labelled: int
    reported: int
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.reported if self.reported else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.labelled if self.labelled else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Evaluation(Scores):
    labelled: int
    reported: int
    true_positives: int
    lines_total: int | None
    missed: tuple[Label, ...]
    kinds_found: dict[str, tuple[int, int]]  # kind -> (found, labelled)

    @property
    def false_positive_rate(self) -> float | None:
        if not self.lines_total:
            return None
        negatives = self.lines_total - self.labelled
        return (self.reported - self.true_positives) / negatives if negatives else 0.0


def read_labels(path: Path) -> list[Label]:
    labels = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                try:
                    line = int(row["line"])
                    if line < 1:
                        raise ValueError
                    labels.append(Label(row["path"], line, row.get("kind") or ""))
                except (KeyError, TypeError, ValueError):
                    raise ConfigError(
                        f"{path}:{reader.line_num}: expected columns path,line[,kind] with a line "
                        f"number of 1 or more, got {row!r}"
                    ) from None
    except OSError as exc:
        raise ConfigError(f"labels file {str(path)!r} cannot be read: {exc.strerror}") from None
    return labels


def evaluate(
    anomalies: Iterable[Anomaly],
    labels: Iterable[Label],
    root: Path,
    lines_total: int | None = None,
) -> Evaluation:
    root = root.resolve()

    def key(path: str) -> str:
        p = Path(path)
        return str((p if p.is_absolute() else root / p).resolve())

    label_list = list(labels)
    wanted = {(key(lb.path), lb.line): lb for lb in label_list}
    reported = {(key(a.path), a.line) for a in anomalies}
    hits = reported & wanted.keys()
    kinds: dict[str, tuple[int, int]] = {}
    for k, lb in wanted.items():
        found, total = kinds.get(lb.kind, (0, 0))
        kinds[lb.kind] = (found + (k in hits), total + 1)
    missed = tuple(lb for k, lb in wanted.items() if k not in hits)
    return Evaluation(len(wanted), len(reported), len(hits), lines_total, missed, kinds)


# ---------------------------------------------------------------- session level


@dataclass(frozen=True)
class SessionLabel:
    key: str  # the session id (a block id, a request id ...)
    anomalous: bool


@dataclass(frozen=True)
class SessionEvaluation(Scores):
    """Labelled sessions against flagged ones: a session is flagged when the session model
    flagged it or any of its lines was reported."""

    labelled: int  # sessions labelled anomalous
    sessions_total: int  # sessions in the labels file
    reported: int  # labelled sessions that were flagged
    true_positives: int
    missed: tuple[str, ...]

    @property
    def false_positive_rate(self) -> float | None:
        negatives = self.sessions_total - self.labelled
        return (self.reported - self.true_positives) / negatives if negatives else None


_ANOMALOUS = {"1", "true", "yes", "anomaly", "anomalous", "abnormal"}
_NORMAL = {"0", "false", "no", "normal"}


def is_session_labels(path: Path) -> bool:
    """A labels file whose header has a ``session`` column (and no ``line``) is session level."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return False
    names = {h.strip().lower() for h in header}
    return "session" in names and "line" not in names


def read_session_labels(path: Path) -> list[SessionLabel]:
    """``session,label`` rows: label 1/0, Anomaly/Normal, true/false (loghub's HDFS
    anomaly_label.csv, renamed header, works as is)."""
    out = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                raw = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                label = raw.get("label", "").lower()
                if not raw.get("session") or label not in _ANOMALOUS | _NORMAL:
                    raise ConfigError(
                        f"{path}:{reader.line_num}: expected columns session,label with label "
                        f"1/0 or Anomaly/Normal, got {row!r}"
                    )
                out.append(SessionLabel(raw["session"], label in _ANOMALOUS))
    except OSError as exc:
        raise ConfigError(f"labels file {str(path)!r} cannot be read: {exc.strerror}") from None
    return out


def evaluate_sessions(labels: Iterable[SessionLabel], flagged: set[str]) -> SessionEvaluation:
    label_list = {lb.key: lb.anomalous for lb in labels}
    anomalous = {k for k, bad in label_list.items() if bad}
    reported = {k for k in label_list if k in flagged}
    hits = reported & anomalous
    return SessionEvaluation(
        len(anomalous),
        len(label_list),
        len(reported),
        len(hits),
        tuple(sorted(anomalous - hits)),
    )
