"""The one frozen Config. Every default lives here.

Precedence, lowest first: defaults < TOML file (``--config``) < environment (``LOGWATCH_*``)
< command-line flags.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logwatch.errors import ConfigError

ENV_PREFIX = "LOGWATCH_"


def default_state_dir() -> Path:
    """Where the embedded database lives unless ``--db-url`` says otherwise."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "logwatch"


def default_db_url() -> str:
    return f"sqlite:///{default_state_dir() / 'logwatch.db'}"


@dataclass(frozen=True)
class Config:
    """Everything logwatch can be told; the README lists each setting."""

    log_dir: Path | None = None
    db_url: str = field(default_factory=default_db_url)
    once: bool = False
    poll_interval: float = 2.0  # seconds between polls in daemon mode
    include: tuple[str, ...] = ()  # empty = the watcher's default log-ish names
    exclude: tuple[str, ...] = ()
    # Reading: memory is bounded by chunk_bytes + max_line_bytes per file batch, not by input size.
    chunk_bytes: int = 1 << 20
    max_line_bytes: int = 64 * 1024
    multiline_flush_seconds: float = 5.0  # a quiet file's held-back last event is scored after this
    # Daemon mode keeps a descriptor on each live file so one deleted or moved away with unread
    # bytes can still be drained: at most this many (least recently active closed first) ...
    max_open_files: int = 100
    # ... and each closed once its file has had nothing new for this long (seconds).
    close_inactive: float = 300.0
    # Templates (Drain3).
    template_sim_th: float = 0.75  # measured on loghub: bench/grouping.py
    template_depth: int = 5
    # Detection.
    train_min_events: int = 200  # live mode: a stream's model is trained once it has this many
    retrain_every_events: int = 50_000  # live mode: refitted on its reservoir after this many more
    train_on_flagged: bool = False  # keep flagged events in the training reservoir
    max_train_samples: int = 4096  # events kept to fit a stream model (bounded memory)
    # --once learns the next stream in a child process while the current one is scored (two
    # cores busy instead of one); off: one process, streams learned in turn.
    learn_ahead: bool = True
    # Streams kept in memory (templates, statistics, model); the least recently active beyond
    # this are dropped and reloaded from the database when they next get lines.
    max_live_streams: int = 100
    n_estimators: int = 100
    random_state: int = 42
    min_severity: int = 40  # anomalies below this severity are not recorded
    verbosity: int = 0  # -1 quiet, 0 default, 1+ verbose
    shutdown_timeout: float = 10.0
    # Sessions (events grouped by the identifiers in them: blk_ ids, UUIDs, request/trace ids).
    session_idle_seconds: float = 300.0  # a session with nothing new for this long is scored
    max_open_sessions: int = 10_000  # per process; the oldest is closed (and scored) first
    # [sessions] table: stream name glob -> list of extra id regexes (first group = the id).
    sessions: dict[str, Any] = field(default_factory=dict, hash=False)
    # The master model over all streams, one vector per time window.
    master_model: bool = True
    master_window_seconds: float = 60.0
    # Alerting: severity at which an anomaly is sent (min_severity is for recording), and the
    # [alerts] table of sinks and noise control (logwatch.alerts reads it).
    alert_min_severity: int = 60
    alerts: dict[str, Any] = field(default_factory=dict, hash=False)
    # Operations.
    metrics_port: int = 0  # Prometheus /metrics on 127.0.0.1:PORT; 0 = off
    retention_days: float = 30.0  # anomalies older than this are pruned; 0 = keep forever

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _coerce(name: str, raw: Any, source: str) -> Any:
    """Convert a TOML or environment value to the field's type; name the value when it is wrong."""
    current = getattr(Config(), name)
    try:
        if isinstance(current, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(raw, bool):  # TOML true is not a number, whatever Python thinks
            raise ValueError
        if isinstance(current, int):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        if isinstance(current, float):
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if isinstance(current, tuple):
            if isinstance(raw, str):
                return tuple(p.strip() for p in raw.split(",") if p.strip())
            if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
                return tuple(raw)
            raise ValueError
        if isinstance(current, dict):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, dict):
                raise ValueError
            return value
        if name == "log_dir":
            return Path(str(raw))
        return str(raw)
    except (TypeError, ValueError):
        kind = type(current).__name__ if current is not None else "path"
        kind = {
            "int": "integer",
            "float": "number",
            "bool": "boolean",
            "tuple": "list",
            "dict": "table",
        }.get(kind, kind)
        raise ConfigError(f"{source}: {name} = {raw!r} is not a valid {kind}") from None


def load_config(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the Config from a TOML file, the environment and flag overrides (None = not given)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {str(config_file)!r} does not exist") from None
        except OSError as exc:
            raise ConfigError(
                f"config file {str(config_file)!r} cannot be read: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {str(config_file)!r} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"config file {str(config_file)!r} is not valid TOML: {exc}"
            ) from None
        # Settings may sit at top level, under [logwatch], or both (the table wins).
        nested = data.get("logwatch", {})
        if not isinstance(nested, dict):
            raise ConfigError(f"{config_file}: 'logwatch' must be a table of settings")
        section = {k: v for k, v in data.items() if k != "logwatch"} | nested
        for key, raw in section.items():
            name = key.replace("-", "_")
            if name not in _FIELDS or (
                isinstance(raw, dict) and not isinstance(getattr(Config(), name), dict)
            ):
                valid = ", ".join(sorted(_FIELDS))
                raise ConfigError(
                    f"{config_file}: unknown setting {key!r}; valid settings: {valid}"
                )
            values[name] = _coerce(name, raw, str(config_file))
    env = os.environ if env is None else env
    for name in _FIELDS:
        raw_env = env.get(ENV_PREFIX + name.upper())
        if raw_env is not None and raw_env != "":
            values[name] = _coerce(name, raw_env, ENV_PREFIX + name.upper())
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    config = Config(**values)
    validate(config)
    return config


def validate(config: Config) -> None:
    positive = (
        "chunk_bytes",
        "max_line_bytes",
        "n_estimators",
        "max_train_samples",
        "max_open_files",
        "retrain_every_events",
        "max_live_streams",
    )
    for name in positive:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} = {getattr(config, name)!r} must be a positive integer")
    if not math.isfinite(config.poll_interval) or config.poll_interval <= 0:
        raise ConfigError(
            f"poll_interval = {config.poll_interval!r} must be greater than 0 seconds"
        )
    for name in ("min_severity", "alert_min_severity"):
        if not 0 <= getattr(config, name) <= 100:
            raise ConfigError(f"{name} = {getattr(config, name)!r} must be between 0 and 100")
    for name in ("session_idle_seconds", "master_window_seconds"):
        value = getattr(config, name)
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} = {value!r} must be greater than 0 seconds")
    if config.max_open_sessions <= 0:
        raise ConfigError(
            f"max_open_sessions = {config.max_open_sessions!r} must be a positive integer"
        )
    if not 0 <= config.metrics_port <= 65535:
        raise ConfigError(f"metrics_port = {config.metrics_port!r} must be between 0 and 65535")
    if not math.isfinite(config.retention_days) or config.retention_days < 0:
        raise ConfigError(
            f"retention_days = {config.retention_days!r} must be 0 (keep forever) or more days"
        )
    if not 0.0 < config.template_sim_th < 1.0:
        raise ConfigError(f"template_sim_th = {config.template_sim_th!r} must be between 0 and 1")
    if config.template_depth < 3:
        raise ConfigError(f"template_depth = {config.template_depth!r} must be at least 3")
    if config.train_min_events < 10:
        raise ConfigError(f"train_min_events = {config.train_min_events!r} must be at least 10")
