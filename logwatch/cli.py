"""Command line. Thin: build the Config, open the Store or Pipeline, call one method, print.

Every LogwatchError becomes ``Error: <one line>`` and exit code 1; usage mistakes exit 2.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from logwatch import __version__
from logwatch.config import Config, load_config
from logwatch.errors import ConfigError, LogwatchError, SourceError
from logwatch.output import FORMATS, render
from logwatch.signals import STOP, catch_stop_signals
from logwatch.storage import Store, redact

if TYPE_CHECKING:  # the pipeline (and scikit-learn) is imported only by the commands that run it
    from logwatch.pipeline import PollSummary

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class DefaultToRun(click.Group):
    """``logwatch --log_dir DIR`` means ``logwatch run --log_dir DIR`` (the seed's entry point)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def common_options(fn: F) -> F:
    """--config, --db-url, -v/-q: shared by every command."""
    fn = click.option("-q", "--quiet", count=True, help="Less output (errors only).")(fn)
    fn = click.option("-v", "--verbose", count=True, help="More output; repeat for debug.")(fn)
    fn = click.option(
        "--db-url",
        envvar="LOGWATCH_DB_URL",
        show_envvar=True,
        metavar="URL",
        help="SQLAlchemy URL of the database [default: sqlite in $XDG_STATE_HOME/logwatch, "
        "i.e. ~/.local/state/logwatch/logwatch.db].",
    )(fn)
    fn = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="TOML configuration file (settings at top level or under [logwatch]).",
    )(fn)
    return fn


def format_option(fn: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(fn)


def build_config(config_file: Path | None, verbose: int, quiet: int, **overrides: Any) -> Config:
    overrides["verbosity"] = verbose - quiet if (verbose or quiet) else None
    config = load_config(config_file, overrides=overrides)
    _setup_logging(config.verbosity)
    return config


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(min(verbosity, 2), -1), logging.DEBUG
    )
    # Alembic announces every migration step at INFO; that is debug detail for a user.
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def open_store(config: Config) -> Store:
    store = Store(config.db_url)
    store.upgrade()
    return store


def with_store(
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
    use: Callable[[Store], T],
) -> T:
    """The read-only commands' frame: build the Config, open (and upgrade) the store, ``use`` it,
    close it; a LogwatchError anywhere becomes ``Error: ...`` and exit 1."""
    try:
        store = open_store(build_config(config_file, verbose, quiet, db_url=db_url))
        try:
            return use(store)
        finally:
            store.close()
    except LogwatchError as exc:
        raise _fail(exc) from None


def _fail(exc: LogwatchError) -> click.ClickException:
    return click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


@click.group(cls=DefaultToRun, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="logwatch")
def cli() -> None:
    """logwatch: watch a log directory and report which lines are anomalous, and why.

    \b
    Examples:
      logwatch --log_dir /var/log/myapp          # the daemon (same as `logwatch run ...`)
      logwatch run --log-dir old_logs --once     # process an archived folder once, then exit
      logwatch anomalies --format jsonl          # what was found
    """


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--log-dir",
    "--log_dir",
    "log_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Root of the log files to watch (recursively).",
)
@click.option(
    "--once", is_flag=True, default=None, help="Process everything present, print a summary, exit."
)
@click.option("--poll-interval", type=float, metavar="SECONDS", help="Seconds between polls [2].")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Only files matching (repeatable) [default: log-ish names such as *.log*].",
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeatable).")
@click.option("--node", default=None, metavar="NAME", help="This daemon's name [host name].")
@common_options
def run(
    log_dir: Path | None,
    once: bool | None,
    poll_interval: float | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    node: str | None,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """Watch a log directory (the daemon), or process it once with --once.

    \b
    Examples:
      logwatch run --log-dir /var/log/myapp --poll-interval 5
      logwatch run --log-dir archive/ --once --db-url postgresql+psycopg2://me@db/logwatch
    """
    from logwatch.daemon import InstanceLock, run_daemon
    from logwatch.pipeline import Pipeline

    # Set up first thing (main.py did already, for the imports): a stop request at any moment from
    # here on ends in a graceful exit 0, never in a half-written batch.
    restore_signals = catch_stop_signals()
    try:
        config = build_config(
            config_file,
            verbose,
            quiet,
            log_dir=log_dir,
            once=once,
            poll_interval=poll_interval,
            include=include or None,
            exclude=exclude or None,
            db_url=db_url,
        )
        _check_log_dir(config.log_dir)
        catch_stop_signals(config.shutdown_timeout)
        store = open_store(config)
        lock = InstanceLock(store, node or socket.gethostname())
        lock.acquire()
        try:
            store.verify()
            if STOP.is_set():
                return  # stopped while starting: nothing was read, nothing to finish
            if config.once:
                t0 = time.monotonic()
                summary = Pipeline(config, store, stop=STOP).run_once(datetime.now(UTC))
                _print_once_summary(summary, time.monotonic() - t0, config)
            else:
                if config.verbosity >= 0:
                    click.echo(
                        f"logwatch: watching {config.log_dir} every {config.poll_interval:g}s "
                        f"(database {redact(config.db_url)}); Ctrl-C to stop",
                        err=True,
                    )
                run_daemon(config, store, node=node or socket.gethostname(), stop=STOP, lock=lock)
        finally:
            lock.release()
            store.close()
    except LogwatchError as exc:
        raise _fail(exc) from None
    finally:
        restore_signals()


def _check_log_dir(log_dir: Path | None) -> None:
    if log_dir is None:
        raise ConfigError("no log directory given; pass --log-dir DIR (or log_dir in --config)")
    if not log_dir.exists():
        raise SourceError(f"log directory {str(log_dir)!r} does not exist")
    if not log_dir.is_dir():
        raise SourceError(f"log directory {str(log_dir)!r} is not a directory")
    if not os.access(log_dir, os.R_OK | os.X_OK):
        raise SourceError(f"log directory {str(log_dir)!r} is not readable (permission denied)")


def _print_once_summary(summary: PollSummary, seconds: float, config: Config) -> None:
    if config.verbosity < 0:
        return
    rate = summary.lines / seconds if seconds > 0 else 0.0
    click.echo(
        f"Processed {summary.files_read} of {summary.files_seen} files: {summary.lines:,} lines, "
        f"{summary.events:,} events in {seconds:.1f}s ({rate:,.0f} lines/s); "
        f"{summary.anomalies:,} new anomalies. See them with: logwatch anomalies"
    )
    for path, reason in summary.skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    for path, error in summary.errors:
        click.echo(f"error {path}: {error}", err=True)


_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None) -> datetime | None:
    """'90m', '24h', '7d' ago, or an ISO-8601 date/time (UTC when no zone is given)."""
    if value is None:
        return None
    m = _DURATION.match(value.strip())
    if m:
        return datetime.now(UTC) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a duration (30m, 24h, 7d) or an ISO date/time (2026-03-01T12:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


ANOMALY_COLUMNS = ("id", "severity", "stream", "line", "timestamp", "reasons", "text")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--since", metavar="WHEN", help="Only detected since: 30m, 24h, 7d or an ISO time.")
@click.option("--stream", metavar="NAME", help="Only this stream (e.g. access.log).")
@click.option(
    "--min-severity",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Only anomalies at least this severe (0-100).",
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N anomalies.")
@format_option
@common_options
def anomalies(
    since: str | None,
    stream: str | None,
    min_severity: int,
    limit: int | None,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """List the anomalies found, oldest first.

    \b
    Examples:
      logwatch anomalies --since 24h --min-severity 70
      logwatch anomalies --format jsonl > anomalies.jsonl
    """
    since_at = parse_since(since)
    found = with_store(
        config_file,
        db_url,
        verbose,
        quiet,
        lambda store: store.anomalies(
            since=since_at, stream=stream, min_severity=min_severity, limit=limit
        ),
    )
    rows = [_anomaly_row(a) for a in found]
    click.echo(
        render(rows, fmt, ANOMALY_COLUMNS, {"text": 80, "reasons": 60, "stream": 24}), nl=False
    )


def _anomaly_row(a: Any) -> dict[str, Any]:
    row = dataclasses.asdict(a)
    row["reasons"] = list(a.reasons)
    order = (
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
        "count",
        "level",
    )
    return {k: row[k] for k in order}


def _listing(
    title: str,
    columns: tuple[str, ...],
    widths: dict[str, int] | None = None,
) -> Callable[[Callable[[Store], list[dict[str, Any]]]], click.Command]:
    """A read-only listing command: open the store, fetch rows, render them in --format."""

    def make(fetch: Callable[[Store], list[dict[str, Any]]]) -> click.Command:
        @format_option
        @common_options
        def command(
            fmt: str, config_file: Path | None, db_url: str | None, verbose: int, quiet: int
        ) -> None:
            rows = with_store(config_file, db_url, verbose, quiet, fetch)
            click.echo(render(rows, fmt, columns, widths), nl=False)

        command.__doc__ = title
        registered = click.command(fetch.__name__, context_settings=CONTEXT_SETTINGS)(command)
        cli.add_command(registered)
        return registered

    return make


@_listing(
    "List tracked files: stream, status, offset versus size (lag), lines read, rotations,\n"
    "truncations, gaps, last error.\n\n\b\nExample:\n  logwatch files --format json",
    (
        "path",
        "stream",
        "status",
        "offset",
        "size",
        "lag_bytes",
        "lines_read",
        "rotations",
        "truncations",
        "gap_bytes",
        "lines_truncated",
        "last_error",
    ),
    {"path": 60, "last_error": 40},
)
def files(store: Store) -> list[dict[str, Any]]:
    return store.files_report()


@_listing(
    "List templates per stream, most frequent first, with first and last seen.\n\n\b\n"
    "Example:\n  logwatch templates --format csv > templates.csv",
    ("stream", "template_id", "count", "template", "last_seen"),
    {"template": 90},
)
def templates(store: Store) -> list[dict[str, Any]]:
    return store.templates_report()


@cli.command(context_settings=CONTEXT_SETTINGS)
@format_option
@common_options
def status(
    fmt: str, config_file: Path | None, db_url: str | None, verbose: int, quiet: int
) -> None:
    """Health: daemons (last poll, state, last error), files, lag, templates, models.

    \b
    Example:
      logwatch status --format json
    """
    report = with_store(config_file, db_url, verbose, quiet, Store.status_report)
    if fmt == "table":
        for key, value in report.items():
            if key != "daemons":
                click.echo(f"{key:14} {value}")
        for d in report["daemons"]:
            click.echo(
                f"daemon {d['node']}: {d['state']} (pid {d['pid']}), last poll "
                f"{d['last_poll_at'] or 'never'}"
                + (f", last error: {d['last_error']}" if d["last_error"] else "")
            )
        return
    click.echo(render([report], fmt, tuple(report)), nl=False)


@cli.group(context_settings=CONTEXT_SETTINGS)
def db() -> None:
    """Database maintenance.

    \b
    Example:
      logwatch db upgrade --db-url sqlite:////var/lib/logwatch/logwatch.db
    """


@db.command(context_settings=CONTEXT_SETTINGS)
@common_options
def upgrade(config_file: Path | None, db_url: str | None, verbose: int, quiet: int) -> None:
    """Create or upgrade the schema to the newest version (also done on every start).

    \b
    Example:
      logwatch db upgrade --db-url postgresql+psycopg2://logwatch@db.example/logwatch
    """
    try:
        config = build_config(config_file, verbose, quiet, db_url=db_url)
        open_store(config).close()
    except LogwatchError as exc:
        raise _fail(exc) from None
    if config.verbosity >= 0:
        click.echo(f"database {redact(config.db_url)} is at the newest schema")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--labels",
    "labels_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="CSV with columns path,line[,kind]; paths relative to --log-dir.",
)
@click.option(
    "--log-dir",
    "--log_dir",
    "log_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Folder the label paths are relative to [default: the labels file's folder].",
)
@format_option
@common_options
def evaluate(
    labels_file: Path,
    log_dir: Path | None,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """Score the stored anomalies against a labels file: precision, recall, F1, false-positive rate.

    \b
    Example:
      logwatch run --log-dir sample_input_logs --once
      logwatch evaluate --labels sample_input_logs/labels.csv
    """
    from logwatch.evaluate import evaluate as score_run
    from logwatch.evaluate import read_labels

    try:
        labels = read_labels(labels_file)
    except LogwatchError as exc:
        raise _fail(exc) from None
    found, lines_total = with_store(
        config_file,
        db_url,
        verbose,
        quiet,
        lambda store: (
            store.anomalies(),
            sum(int(f["lines_read"]) for f in store.files_report()),
        ),
    )
    result = score_run(found, labels, log_dir or labels_file.parent, lines_total or None)
    fpr = result.false_positive_rate
    summary = {
        "labelled": result.labelled,
        "reported": result.reported,
        "true_positives": result.true_positives,
        "precision": round(result.precision, 4),
        "recall": round(result.recall, 4),
        "f1": round(result.f1, 4),
        "false_positive_rate": None if fpr is None else round(fpr, 6),
        "kinds": {
            k: {"found": f, "labelled": n} for k, (f, n) in sorted(result.kinds_found.items())
        },
    }
    if fmt != "table":
        click.echo(render([summary], fmt, tuple(summary)), nl=False)
        return
    for key in (
        "labelled",
        "reported",
        "true_positives",
        "precision",
        "recall",
        "f1",
        "false_positive_rate",
    ):
        click.echo(f"{key:20} {summary[key]}")
    for kind, (found_n, total) in sorted(result.kinds_found.items()):
        click.echo(f"  {kind or '(no kind)':30} {found_n}/{total}")
