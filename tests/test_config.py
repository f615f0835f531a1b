"""Config: defaults < TOML file < LOGWATCH_* environment < flag overrides; clear errors; frozen."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from logwatch.config import Config, default_db_url, load_config, validate
from logwatch.errors import ConfigError, LogwatchError

VALID = ", ".join(sorted(f.name for f in dataclasses.fields(Config)))


def toml(tmp_path: Path, body: str, name: str = "logwatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def error(**kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(**{"env": {}, **kw})
    return str(info.value)


# ---------------------------------------------------------------- defaults


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = load_config(None, env={}, overrides=None)
    assert config == Config()
    assert config.log_dir is None
    assert config.db_url == f"sqlite:///{tmp_path / 'state' / 'logwatch' / 'logwatch.db'}"
    assert config.db_url == default_db_url()
    assert (config.once, config.poll_interval, config.include, config.exclude) == (
        False,
        2.0,
        (),
        (),
    )
    assert (config.min_severity, config.random_state, config.verbosity) == (40, 42, 0)
    assert (config.chunk_bytes, config.max_line_bytes) == (1 << 20, 64 * 1024)
    validate(config)  # the defaults are valid


def test_default_db_url_without_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/home/ops")
    assert default_db_url() == "sqlite:////home/ops/.local/state/logwatch/logwatch.db"


def test_reads_os_environ_when_env_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGWATCH_MIN_SEVERITY", "55")
    assert load_config().min_severity == 55


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.poll_interval = 1.0  # type: ignore[misc]
    changed = config.replace(poll_interval=1.0)
    assert (changed.poll_interval, config.poll_interval) == (1.0, 2.0)
    assert {config: "ok"}[Config()] == "ok"  # hashable and compared by value


# ---------------------------------------------------------------- TOML file and precedence


def test_toml_top_level_keys(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        'log_dir = "/var/log"\n'
        'db_url = "postgresql://lw@db/logwatch"\n'
        "poll_interval = 5\n"  # a TOML integer is fine for a float setting
        "once = true\n"
        'include = ["*.log", "*.txt"]\n'
        "template-sim-th = 0.5\n",  # dashes are accepted as in flag names
    )
    config = load_config(path, env={})
    assert config.log_dir == Path("/var/log")
    assert config.db_url == "postgresql://lw@db/logwatch"
    assert config.poll_interval == 5.0 and isinstance(config.poll_interval, float)
    assert config.once is True
    assert config.include == ("*.log", "*.txt")
    assert config.template_sim_th == 0.5


def test_toml_logwatch_table(tmp_path: Path) -> None:
    path = toml(tmp_path, "[logwatch]\nmin_severity = 70\nexclude = ['*.gz']\n")
    config = load_config(path, env={})
    assert (config.min_severity, config.exclude) == (70, ("*.gz",))


def test_precedence_file_env_overrides(tmp_path: Path) -> None:
    path = toml(tmp_path, "min_severity = 10\npoll_interval = 3.0\nn_estimators = 7\n")
    env = {"LOGWATCH_MIN_SEVERITY": "20", "LOGWATCH_POLL_INTERVAL": "4.5"}
    config = load_config(path, env=env, overrides={"min_severity": 30, "n_estimators": None})
    assert config.min_severity == 30  # flag beats env beats file
    assert config.poll_interval == 4.5  # env beats file
    assert config.n_estimators == 7  # None means "flag not given": the file's value stays
    assert config.random_state == 42  # untouched default
    assert load_config(path, env=env).min_severity == 20
    assert load_config(path, env={}).min_severity == 10


def test_empty_env_value_is_ignored(tmp_path: Path) -> None:
    path = toml(tmp_path, "min_severity = 10\n")
    assert load_config(path, env={"LOGWATCH_MIN_SEVERITY": ""}).min_severity == 10


def test_unrelated_env_is_ignored() -> None:
    config = load_config(env={"MIN_SEVERITY": "5", "LOGWATCH": "x", "PATH": "/bin"})
    assert config == load_config(env={})


def test_overrides_are_validated() -> None:
    assert error(overrides={"min_severity": 101}) == "min_severity = 101 must be between 0 and 100"


# ---------------------------------------------------------------- coercion from the environment


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("n_estimators", "50", 50),
        ("n_estimators", " 50 ", 50),
        ("random_state", "-1", -1),
        ("poll_interval", "0.25", 0.25),
        ("poll_interval", "3", 3.0),
        ("once", "1", True),
        ("once", "TRUE", True),
        ("once", "yes", True),
        ("once", "on", True),
        ("once", "0", False),
        ("once", "False", False),
        ("once", "no", False),
        ("once", "off", False),
        ("include", "*.log, *.txt ,,app/*", ("*.log", "*.txt", "app/*")),
        ("include", "*.log", ("*.log",)),
        ("exclude", ",", ()),
        ("log_dir", "/srv/logs", Path("/srv/logs")),
        ("db_url", "sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_env_coercion(name: str, raw: str, expected: Any) -> None:
    config = load_config(env={f"LOGWATCH_{name.upper()}": raw})
    value = getattr(config, name)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (
            "n_estimators",
            "many",
            "LOGWATCH_N_ESTIMATORS: n_estimators = 'many' is not a valid integer",
        ),
        (
            "n_estimators",
            "1.5",
            "LOGWATCH_N_ESTIMATORS: n_estimators = '1.5' is not a valid integer",
        ),
        (
            "poll_interval",
            "fast",
            "LOGWATCH_POLL_INTERVAL: poll_interval = 'fast' is not a valid number",
        ),
        ("once", "maybe", "LOGWATCH_ONCE: once = 'maybe' is not a valid boolean"),
    ],
)
def test_env_bad_values_name_value_and_setting(name: str, raw: str, message: str) -> None:
    assert error(env={f"LOGWATCH_{name.upper()}": raw}) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("n_estimators = true", "n_estimators = True is not a valid integer"),
        ("n_estimators = 'lots'", "n_estimators = 'lots' is not a valid integer"),
        ("once = 'perhaps'", "once = 'perhaps' is not a valid boolean"),
        ("include = [1, 2]", "include = [1, 2] is not a valid list"),
        ("include = 5", "include = 5 is not a valid list"),
        ("poll_interval = 'soon'", "poll_interval = 'soon' is not a valid number"),
    ],
)
def test_toml_bad_values_name_value_and_setting(tmp_path: Path, body: str, message: str) -> None:
    path = toml(tmp_path, body + "\n")
    assert error(config_file=path) == f"{path}: {message}"


@pytest.mark.parametrize("body", ["n_estimators = 1.5", "min_severity = 50.9"])
def test_toml_float_for_int_setting_is_an_error(tmp_path: Path, body: str) -> None:
    path = toml(tmp_path, body + "\n")
    with pytest.raises(ConfigError, match="is not a valid integer"):
        load_config(path, env={})


def test_toml_bool_for_float_setting_is_an_error(tmp_path: Path) -> None:
    path = toml(tmp_path, "poll_interval = true\n")
    with pytest.raises(ConfigError, match="poll_interval = True is not a valid number"):
        load_config(path, env={})


# ---------------------------------------------------------------- unknown keys and bad files


def test_unknown_key_lists_valid_settings(tmp_path: Path) -> None:
    path = toml(tmp_path, "min_severity = 50\ncolour = 'red'\n")
    assert error(config_file=path) == f"{path}: unknown setting 'colour'; valid settings: {VALID}"


def test_unknown_table_is_an_unknown_setting(tmp_path: Path) -> None:
    path = toml(tmp_path, "[paging]\nemail = 'ops@example.com'\n")
    assert error(config_file=path) == f"{path}: unknown setting 'paging'; valid settings: {VALID}"


def test_unknown_key_in_logwatch_table(tmp_path: Path) -> None:
    path = toml(tmp_path, "[logwatch]\npoll = 3\n")
    assert error(config_file=path) == f"{path}: unknown setting 'poll'; valid settings: {VALID}"


def test_top_level_keys_next_to_logwatch_table_are_not_silently_dropped(tmp_path: Path) -> None:
    path = toml(tmp_path, "poll_interval = 5.0\n\n[logwatch]\nonce = true\n")
    try:
        config = load_config(path, env={})
    except ConfigError:
        return  # rejecting the mix is fine
    assert config.once is True
    assert config.poll_interval == 5.0


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert error(config_file=path) == f"config file {str(path)!r} does not exist"


def test_unreadable_config_file(tmp_path: Path) -> None:
    # A directory cannot be read as a file, even by root (chmod 000 would not stop root).
    assert error(config_file=tmp_path) == (
        f"config file {str(tmp_path)!r} cannot be read: Is a directory"
    )


def test_invalid_toml(tmp_path: Path) -> None:
    path = toml(tmp_path, "min_severity = 50\npoll_interval = = 3\n")
    message = error(config_file=path)
    assert message.startswith(f"config file {str(path)!r} is not valid TOML: ")
    assert "line 2" in message
    assert "\n" not in message


def test_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('db_url = "sqlite:////tmp/caf\xe9.db"\n'.encode("latin-1"))
    message = error(config_file=path)
    assert message == f"config file {str(path)!r} is not UTF-8 text"


def test_config_errors_are_logwatch_errors() -> None:
    assert issubclass(ConfigError, LogwatchError)


# ---------------------------------------------------------------- validate


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("min_severity", -1, "min_severity = -1 must be between 0 and 100"),
        ("min_severity", 101, "min_severity = 101 must be between 0 and 100"),
        ("poll_interval", 0.0, "poll_interval = 0.0 must be greater than 0 seconds"),
        ("poll_interval", -2.5, "poll_interval = -2.5 must be greater than 0 seconds"),
        ("chunk_bytes", 0, "chunk_bytes = 0 must be a positive integer"),
        ("max_line_bytes", -1, "max_line_bytes = -1 must be a positive integer"),
        ("n_estimators", 0, "n_estimators = 0 must be a positive integer"),
        ("max_train_samples", 0, "max_train_samples = 0 must be a positive integer"),
        ("template_sim_th", 0.0, "template_sim_th = 0.0 must be between 0 and 1"),
        ("template_sim_th", 1.0, "template_sim_th = 1.0 must be between 0 and 1"),
        ("template_depth", 2, "template_depth = 2 must be at least 3"),
        ("train_min_events", 9, "train_min_events = 9 must be at least 10"),
    ],
)
def test_validate_rejects(name: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(Config(**{name: value}))
    assert str(info.value) == message
    assert error(overrides={name: value}) == message  # load_config validates too


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_severity", 0),
        ("min_severity", 100),
        ("poll_interval", 0.001),
        ("chunk_bytes", 1),
        ("template_sim_th", 0.01),
        ("template_sim_th", 0.99),
        ("template_depth", 3),
        ("train_min_events", 10),
    ],
)
def test_validate_accepts_bounds(name: str, value: Any) -> None:
    validate(Config(**{name: value}))


def test_validate_runs_on_env_values() -> None:
    message = error(env={"LOGWATCH_MIN_SEVERITY": "150"})
    assert message == "min_severity = 150 must be between 0 and 100"


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_poll_interval_must_be_finite(raw: str) -> None:
    with pytest.raises(ConfigError, match="poll_interval"):
        load_config(env={"LOGWATCH_POLL_INTERVAL": raw})
