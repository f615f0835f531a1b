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

from logwatch import __version__, feedback
from logwatch.config import Config, load_config
from logwatch.context import lines_around
from logwatch.errors import ConfigError, LogwatchError, SourceError
from logwatch.output import FORMATS, escape_terminal, render
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
      logwatch ack 42 --note "disk replaced"     # feedback: seen / muted / normal
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
@click.option(
    "--node",
    default=None,
    metavar="NAME",
    help="This daemon's name: it owns the files it reads under it [host name].",
)
@click.option(
    "--retention",
    callback=lambda ctx, param, value: parse_retention(ctx, param, value),
    metavar="DURATION",
    help="Prune anomalies, incidents and retired file rows older than this: 30d, 12w; "
    "0 keeps everything [30d].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Serve Prometheus metrics on 127.0.0.1:PORT [0 = off].",
)
@common_options
def run(
    log_dir: Path | None,
    once: bool | None,
    poll_interval: float | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    node: str | None,
    retention: float | None,
    metrics_port: int | None,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """Watch a log directory (the daemon), or process it once with --once.

    Several daemons (one per host, each with its own --node) can share one PostgreSQL: each
    reads only its own files, and one of them at a time is the master (master model, pruning).

    \b
    Examples:
      logwatch run --log-dir /var/log/myapp --poll-interval 5 --retention 30d
      logwatch run --log-dir archive/ --once --db-url postgresql+psycopg2://me@db/logwatch
      logwatch run --log-dir /var/log --node web-1 --db-url postgresql+psycopg2://lw@db/logwatch
    """
    from logwatch.alerts import AlertSettings, Dispatcher
    from logwatch.daemon import InstanceLock, run_daemon
    from logwatch.metrics import Metrics, MetricsServer
    from logwatch.pipeline import Pipeline
    from logwatch.progress import ArchiveProgress, NullProgress

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
            metrics_port=metrics_port,
            retention_days=retention,
        )
        _check_log_dir(config.log_dir)
        alert_settings = AlertSettings.from_config(config)  # a bad [alerts] table stops here
        catch_stop_signals(config.shutdown_timeout)
        store = open_store(config)
        store.node = node or socket.gethostname()  # the files and streams it owns
        lock = InstanceLock(store, store.node)
        lock.acquire()
        try:
            store.verify()
            if STOP.is_set():
                return  # stopped while starting: nothing was read, nothing to finish
            if config.once:
                t0 = time.monotonic()

                def progress(total_bytes: int, total_files: int) -> ArchiveProgress | NullProgress:
                    # At -v, log lines would break up the bar; off a terminal it stays silent.
                    if config.verbosity != 0:
                        return NullProgress()
                    return ArchiveProgress(total_bytes, total_files)

                summary = Pipeline(config, store, stop=STOP, node=store.node).run_once(
                    datetime.now(UTC), progress=progress
                )
                _print_once_summary(summary, time.monotonic() - t0, config)
            else:
                if config.verbosity >= 0:
                    click.echo(
                        f"logwatch: watching {config.log_dir} every {config.poll_interval:g}s "
                        f"(database {redact(config.db_url)}); Ctrl-C to stop",
                        err=True,
                    )
                metrics = Metrics()
                server: MetricsServer | None = None
                if config.metrics_port:
                    server = metrics.serve(config.metrics_port)
                try:
                    run_daemon(
                        config,
                        store,
                        node=store.node,
                        stop=STOP,
                        lock=lock,
                        metrics=metrics,
                        dispatcher=Dispatcher(alert_settings) if alert_settings.sinks else None,
                    )
                finally:
                    if server is not None:
                        server.close()
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


def parse_duration(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> timedelta | None:
    """A positive length of time: 30m, 12h, 7d, 2w; a malformed one is a usage error (exit 2).

    An option callback rather than a click.ParamType subclass: ParamType became generic in click
    8.2, and we support 8.1 too."""
    if value is None:
        return None
    m = _DURATION.match(value.strip())
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(
            f"{value!r} is not a positive duration; valid: a number and a unit s, m, h, d or w "
            "(30m, 12h, 7d, 2w)",
            ctx,
            param,
        )
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_retention(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> float | None:
    """``--retention``: a duration (30d, 12w, 36h) as days, or 0 to keep everything."""
    if value is None:
        return None
    if value.strip() == "0":
        return 0.0
    try:
        duration = parse_duration(ctx, param, value)
    except click.BadParameter:
        raise click.BadParameter(
            f"{value!r} is not a retention; valid: 0 (keep forever) or a number and a unit "
            "s, m, h, d or w (30d, 12w)",
            ctx,
            param,
        ) from None
    assert duration is not None
    return duration.total_seconds() / 86400.0


def _quiet(verbose: int, quiet: int) -> bool:
    return quiet > verbose


ANOMALY_COLUMNS = ("id", "severity", "acked", "stream", "line", "timestamp", "reasons", "text")


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
@click.option("--unacked", is_flag=True, help="Only anomalies nobody has acked yet.")
@click.option("--node", metavar="NAME", help="Only this node's (a daemon's --node).")
@click.option(
    "--context",
    "context_lines",
    type=click.IntRange(0, 1000),
    default=0,
    metavar="N",
    help="Show N lines before and after each anomaly, read from its file now.",
)
@format_option
@common_options
def anomalies(
    since: str | None,
    stream: str | None,
    min_severity: int,
    limit: int | None,
    unacked: bool,
    node: str | None,
    context_lines: int,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """List the anomalies found, oldest first, with whether each was acked.

    \b
    Examples:
      logwatch anomalies --since 24h --min-severity 70
      logwatch anomalies --unacked --context 3
      logwatch anomalies --node web-1 --since 1h
      logwatch anomalies --format jsonl > anomalies.jsonl
    """
    since_at = parse_since(since)

    def fetch(store: Store) -> list[dict[str, Any]]:
        # --unacked filters before --limit applies, so "the first N unacked" means what it says.
        found = store.anomalies(
            since=since_at,
            stream=stream,
            min_severity=min_severity,
            limit=None if unacked else limit,
            node=node,
        )
        acked = feedback.acks(store)
        rows = [_anomaly_row(a, acked.get(a.id) if a.id is not None else None) for a in found]
        if unacked:
            rows = [r for r in rows if not r["acked"]][:limit]
        return rows

    rows = with_store(config_file, db_url, verbose, quiet, fetch)
    if context_lines:
        for row in rows:
            row["context"] = [
                {"line": n, "text": text}
                for n, text in lines_around(row["path"], row["line"], context_lines)
            ]
    widths = {"text": 80, "reasons": 60, "stream": 24}
    if fmt != "table":
        if fmt == "csv" and context_lines:
            for row in rows:
                row["context"] = [f"{c['line']}: {c['text']}" for c in row["context"]]
        click.echo(render(rows, fmt, ANOMALY_COLUMNS, widths), nl=False)
        return
    shown = [{**r, "acked": "yes" if r["acked"] else "no"} for r in rows]
    table = render(shown, fmt, ANOMALY_COLUMNS, widths)
    if not context_lines or not rows:
        click.echo(table, nl=False)
        return
    header, *body = table.splitlines()
    out = [header]
    for line, row in zip(body, rows, strict=True):
        out.append(line)
        out.extend(_context_lines(row))
    click.echo("\n".join(out))


def _context_lines(row: dict[str, Any]) -> list[str]:
    """The lines around one anomaly, indented under its table row; ``>`` marks the event's own."""
    if not row["context"]:
        return ["      (lines not available: the file is gone or unreadable)"]
    first, last = row["line"], row["line"] + row["text"].count("\n")
    width = len(str(row["context"][-1]["line"]))
    return [
        f"    {'>' if first <= c['line'] <= last else ' '} {c['line']:>{width}}  "
        + escape_terminal(c["text"].replace("\t", "    "))
        for c in row["context"]
    ]


def _anomaly_row(a: Any, ack: feedback.Ack | None = None) -> dict[str, Any]:
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
    return {
        **{k: row[k] for k in order},
        "acked": ack is not None,
        "acked_at": ack.acked_at if ack else None,
        "ack_note": ack.note if ack else None,
    }


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


FILE_COLUMNS = (
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
)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--node", metavar="NAME", help="Only this node's (a daemon's --node).")
@format_option
@common_options
def files(
    node: str | None,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """List tracked files: stream, status, offset versus size (lag), lines read, rotations,
    truncations, gaps, last error (and, in json/csv, the node that owns each).

    \b
    Examples:
      logwatch files --format json
      logwatch files --node web-1
    """
    rows = with_store(
        config_file,
        db_url,
        verbose,
        quiet,
        lambda store: store.files_report(node=node, show_node=fmt != "table"),
    )
    columns = FILE_COLUMNS if fmt == "table" else ("node", *FILE_COLUMNS)
    click.echo(render(rows, fmt, columns, {"path": 60, "last_error": 40}), nl=False)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--stream", metavar="NAME", help="Only this stream (e.g. app.log).")
@format_option
@common_options
def templates(
    stream: str | None,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """List templates per stream, most frequent first: id, count, first and last seen.

    The TEMPLATE_ID (or the exact text) is what `logwatch suppress --template` takes.

    \b
    Examples:
      logwatch templates --stream app.log
      logwatch templates --format csv > templates.csv
    """
    rows = with_store(
        config_file, db_url, verbose, quiet, lambda store: store.templates_report(stream)
    )
    click.echo(
        render(
            rows,
            fmt,
            ("stream", "template_id", "count", "first_seen", "last_seen", "template"),
            {"template": 90},
        ),
        nl=False,
    )


@_listing(
    "Per stream: files being read, events, templates, anomalies (and how many are not acked),\n"
    "when it was last read, its last anomaly, and whether its model is trained.\n\n\b\n"
    "Example:\n  logwatch streams --format json",
    (
        "stream",
        "files",
        "events",
        "templates",
        "anomalies",
        "unacked",
        "last_read",
        "last_anomaly",
        "model_trained",
    ),
    {"stream": 40},
)
def streams(store: Store) -> list[dict[str, Any]]:
    return feedback.streams_report(store)


# --- feedback: what the operator says about anomalies (stored; the daemon applies it next poll)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("anomaly_id", metavar="ID", type=int)
@click.option("--note", metavar="TEXT", help="Why, or what was done (kept with the ack).")
@common_options
def ack(
    anomaly_id: int,
    note: str | None,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """Mark anomaly ID as seen: `logwatch anomalies --unacked` no longer lists it.

    Acking again keeps the first time; a new --note replaces the old one.

    \b
    Example:
      logwatch ack 42 --note "disk replaced, see ticket 1234"
    """
    done = with_store(
        config_file, db_url, verbose, quiet, lambda store: feedback.ack(store, anomaly_id, note)
    )
    if not _quiet(verbose, quiet):
        was = f" (already acked at {done.acked_at})" if done.already else ""
        click.echo(f"acked anomaly {anomaly_id}{was}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--stream", required=True, metavar="NAME", help="The stream (see logwatch streams).")
@click.option(
    "--template",
    required=True,
    metavar="ID|TEXT",
    help="A template id from `logwatch templates`, or its exact text.",
)
@click.option(
    "--for",
    "duration",
    callback=parse_duration,
    metavar="DURATION",
    help="Mute for this long: 30m, 12h, 7d, 2w [default: until removed].",
)
@click.option(
    "--reason", required=True, metavar="TEXT", help="Why it is muted (shown in listings)."
)
@common_options
def suppress(
    stream: str,
    template: str,
    duration: timedelta | None,
    reason: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """Mute a template of a stream: its anomalies are still recorded, but not alerted.

    \b
    Examples:
      logwatch suppress --stream app.log --template 12 --for 7d --reason "known bug #88"
      logwatch suppressions --remove 3
    """
    now = datetime.now(UTC)
    until = now + duration if duration is not None else None
    made = with_store(
        config_file,
        db_url,
        verbose,
        quiet,
        lambda store: feedback.suppress(store, stream, template, until, reason, now=now),
    )
    if not _quiet(verbose, quiet):
        click.echo(
            f"suppression {made.id}: template {made.template_id} "
            f"{made.template!r} of stream {made.stream!r} muted "
            + (f"until {made.expires_at}" if made.expires_at else "until removed")
        )


@cli.command("mark-normal", context_settings=CONTEXT_SETTINGS)
@click.argument("anomaly_id", metavar="ID", type=int)
@common_options
def mark_normal(
    anomaly_id: int, config_file: Path | None, db_url: str | None, verbose: int, quiet: int
) -> None:
    """Call the template of anomaly ID normal for its stream (and ack the anomaly).

    Its recurrences are no longer reported, unless clearly more severe: at least 15 above the
    severity of anomaly ID.

    \b
    Example:
      logwatch mark-normal 42
    """
    mark = with_store(
        config_file, db_url, verbose, quiet, lambda store: feedback.mark_normal(store, anomaly_id)
    )
    if not _quiet(verbose, quiet):
        click.echo(
            f"template {mark.template_id} {mark.template!r} is normal for stream "
            f"{mark.stream!r}; a recurrence at severity "
            f"{mark.severity + feedback.NORMAL_MARGIN} or more is still reported"
        )


SUPPRESSION_COLUMNS = (
    "id",
    "stream",
    "template_id",
    "state",
    "expires_at",
    "reason",
    "template",
)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--all", "show_all", is_flag=True, help="Include expired and removed ones.")
@click.option(
    "--remove",
    "remove_id",
    type=int,
    metavar="ID",
    help="End suppression ID now (kept as removed).",
)
@format_option
@common_options
def suppressions(
    show_all: bool,
    remove_id: int | None,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """List the suppressions in force (or --all), or end one with --remove ID.

    \b
    Examples:
      logwatch suppressions --all --format json
      logwatch suppressions --remove 3
    """
    if remove_id is not None:
        removed = with_store(
            config_file,
            db_url,
            verbose,
            quiet,
            lambda store: feedback.remove_suppression(store, remove_id),
        )
        if fmt != "table":
            click.echo(render([removed.as_row()], fmt, SUPPRESSION_COLUMNS), nl=False)
        elif not _quiet(verbose, quiet):
            click.echo(f"removed suppression {removed.id} (at {removed.removed_at})")
        return
    found = with_store(
        config_file,
        db_url,
        verbose,
        quiet,
        lambda store: feedback.list_suppressions(store, show_all),
    )
    rows = [s.as_row() for s in found]
    click.echo(render(rows, fmt, SUPPRESSION_COLUMNS, {"template": 60, "reason": 40}), nl=False)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--node", metavar="NAME", help="Only this node's (a daemon's --node).")
@format_option
@common_options
def status(
    node: str | None,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """Health: daemons (last poll, state, role, last error), which node is the master, files,
    lag, templates, models.

    \b
    Examples:
      logwatch status --format json
      logwatch status --node web-1
    """

    from logwatch import incident_store

    def fetch(store: Store) -> dict[str, Any]:
        return {
            **store.status_report(node=node),
            **incident_store.overview_report(store, node=node),
            "master": store.master_node(),
        }

    report = with_store(config_file, db_url, verbose, quiet, fetch)
    if fmt == "table":
        for key, value in report.items():
            if key != "daemons":
                click.echo(f"{key:18} {value}")
        for d in report["daemons"]:
            role = f", {d['role']}" if d["role"] else ""
            click.echo(
                f"daemon {d['node']}: {d['state']} (pid {d['pid']}{role}), last poll "
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
    help="CSV: path,line[,kind] (line level; paths relative to --log-dir) or session,label.",
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

    A file with columns path,line[,kind] is scored line by line; one with columns session,label
    (label 1/0 or Anomaly/Normal) session by session: a session is flagged when the session model
    flagged it or any line carrying its id was reported.

    \b
    Example:
      logwatch run --log-dir sample_input_logs --once
      logwatch evaluate --labels sample_input_logs/labels.csv
    """
    from logwatch.evaluate import evaluate as score_run
    from logwatch.evaluate import is_session_labels, read_labels

    if is_session_labels(labels_file):
        _evaluate_sessions(labels_file, fmt, config_file, db_url, verbose, quiet)
        return

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


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write.",
)
@click.option("--since", metavar="WHEN", help="Only detected since: 30m, 24h, 7d or an ISO time.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Anomalies shown in full, with context.",
)
@click.option(
    "--context",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Lines of context around each.",
)
@common_options
def report(
    output: Path,
    since: str | None,
    top: int,
    context: int,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """Write one self-contained HTML report: charts and the top anomalies with reasons.

    \b
    Example:
      logwatch report -o report.html --since 24h
    """
    from logwatch.report import write_report

    since_at = parse_since(since)
    written = with_store(
        config_file,
        db_url,
        verbose,
        quiet,
        lambda store: write_report(
            store, output, since=since_at, now=datetime.now(UTC), top=top, context=context
        ),
    )
    click.echo(
        f"wrote {written.path}: {written.anomalies} anomalies in {written.streams} streams, "
        f"{written.shown} in full"
    )


@cli.group(context_settings=CONTEXT_SETTINGS)
def alert() -> None:
    """Alert sinks (configured in the [alerts] table of the config file).

    \b
    Example:
      logwatch alert test --config /etc/logwatch/logwatch.toml
    """


@alert.command("test", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="TOML config file with the [alerts] table.",
)
def alert_test(config_file: Path | None) -> None:
    """Send one test alert to every configured sink and say which worked.

    \b
    Example:
      logwatch alert test --config /etc/logwatch/logwatch.toml
    """
    from logwatch.alerts import AlertSettings, send_test

    try:
        settings = AlertSettings.from_config(load_config(config_file))
    except LogwatchError as exc:
        raise _fail(exc) from None
    if not settings.sinks:
        raise click.ClickException("no alert sinks configured; add [[alerts.sinks]] to the config")
    failed = 0
    for name, error in send_test(settings):
        click.echo(f"{escape_terminal(name)}: {'ok' if error is None else escape_terminal(error)}")
        failed += error is not None
    if failed:
        sys.exit(1)


INCIDENT_COLUMNS = ("id", "severity", "first", "last", "count", "streams", "title")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--since", metavar="WHEN", help="Only incidents active since: 30m, 24h, 7d or ISO.")
@click.option(
    "--min-severity",
    type=click.IntRange(0, 100),
    default=0,
    metavar="N",
    help="Only incidents of at least this severity (0-100).",
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N incidents.")
@click.option("--node", metavar="NAME", help="Only incidents found by this daemon's node.")
@click.option("--lines", "show_lines", is_flag=True, help="Show each incident's telling lines.")
@format_option
@common_options
def incidents(
    since: str | None,
    min_severity: int,
    limit: int | None,
    node: str | None,
    show_lines: bool,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    """List incidents, most recent first: anomalies that belong together (same time window,
    a new template spreading, one anomalous session, a window abnormal across streams).

    \b
    Examples:
      logwatch incidents --since 24h
      logwatch incidents --lines --min-severity 70
      logwatch incidents --format json
    """
    from logwatch import incident_store

    since_at = parse_since(since)
    rows = with_store(
        config_file,
        db_url,
        verbose,
        quiet,
        lambda store: incident_store.incidents(
            store, since=since_at, min_severity=min_severity, limit=limit, node=node
        ),
    )
    if fmt != "table":
        if fmt == "csv":
            rows = [
                {
                    **r,
                    "kinds": " ".join(r["kinds"]),
                    "streams": " ".join(s["stream"] for s in r["streams"]),
                    "lines": " | ".join(f"{ln['path']}:{ln['line']}" for ln in r["lines"]),
                    "templates": " | ".join(r["templates"]),
                    "sessions": " ".join(r["sessions"]),
                }
                for r in rows
            ]
        click.echo(render(rows, fmt, INCIDENT_COLUMNS), nl=False)
        return
    shown = [{**r, "streams": ", ".join(s["stream"] for s in r["streams"])} for r in rows]
    table = render(shown, fmt, INCIDENT_COLUMNS, {"title": 70, "streams": 30})
    if not show_lines or not rows:
        click.echo(table, nl=False)
        return
    header, *body = table.splitlines()
    out = [header]
    for line, row in zip(body, rows, strict=True):
        out.append(line)
        for ln in row["lines"]:
            text = escape_terminal(str(ln["text"]).splitlines()[0][:160]) if ln["text"] else ""
            where = f"{escape_terminal(ln['path'])}:{ln['line']}"
            out.append(f"    {ln['severity']:>3} {where}  {text}")
    click.echo("\n".join(out))


def _evaluate_sessions(
    labels_file: Path,
    fmt: str,
    config_file: Path | None,
    db_url: str | None,
    verbose: int,
    quiet: int,
) -> None:
    from logwatch import incident_store
    from logwatch.evaluate import evaluate_sessions, read_session_labels
    from logwatch.sessions import SessionKeys

    try:
        labels = read_session_labels(labels_file)
        config = build_config(config_file, verbose, quiet, db_url=db_url)
    except LogwatchError as exc:
        raise _fail(exc) from None
    keys = SessionKeys.from_config(config)

    def flagged(store: Store) -> set[str]:
        found = {f.key for f in incident_store.sessions(store)}
        for a in store.anomalies():
            found.update(keys.keys(a.stream, a.text))
        return found

    result = evaluate_sessions(labels, with_store(config_file, db_url, verbose, quiet, flagged))
    fpr = result.false_positive_rate
    summary = {
        "level": "session",
        "labelled": result.labelled,
        "sessions_total": result.sessions_total,
        "reported": result.reported,
        "true_positives": result.true_positives,
        "precision": round(result.precision, 4),
        "recall": round(result.recall, 4),
        "f1": round(result.f1, 4),
        "false_positive_rate": None if fpr is None else round(fpr, 6),
    }
    if fmt != "table":
        click.echo(render([summary], fmt, tuple(summary)), nl=False)
        return
    for key, value in summary.items():
        click.echo(f"{key:20} {value}")
