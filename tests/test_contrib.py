"""contrib/: the systemd unit keeps the README's promises, and the CLI takes its command line."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from logwatch.config import load_config

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "logwatch.service"
EXAMPLE_CONFIG = ROOT / "contrib" / "logwatch.toml"


def unit() -> configparser.ConfigParser:
    # strict=False: a unit may repeat a key (Environment=); no interpolation: % is systemd's.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keys are case-sensitive
    parser.read(UNIT, encoding="utf-8")
    return parser


def environment() -> dict[str, str]:
    """Every Environment= assignment (configparser keeps only the last of repeated keys)."""
    env = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.startswith("Environment="):
            for assignment in shlex.split(line.removeprefix("Environment=")):
                name, _, value = assignment.partition("=")
                env[name] = value
    return env


def exec_start() -> list[str]:
    return shlex.split(unit()["Service"]["ExecStart"])


def test_unit_has_the_promised_directives() -> None:
    service = unit()["Service"]
    assert service["Type"] in ("simple", "exec")
    assert service["StateDirectory"] == "logwatch"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["SupplementaryGroups"] == "adm"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["RestartSec"]) > 0
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_database_lives_in_the_state_directory() -> None:
    db_url = environment()["LOGWATCH_DB_URL"]
    assert db_url == f"sqlite:////var/lib/{unit()['Service']['StateDirectory']}/logwatch.db"


def test_log_root_is_read_only() -> None:
    argv = exec_start()
    log_dir = argv[argv.index("--log-dir") + 1]
    assert log_dir in unit()["Service"]["ReadOnlyPaths"].split()


def test_stop_waits_longer_than_logwatch_takes_to_stop_gracefully() -> None:
    config = load_config(EXAMPLE_CONFIG, env={})
    assert float(unit()["Service"]["TimeoutStopSec"]) > config.shutdown_timeout
    assert float(unit()["Service"]["TimeoutStopSec"]) > load_config(env={}).shutdown_timeout


def test_exec_start_options_are_accepted_by_the_cli() -> None:
    argv = exec_start()
    assert argv[0] == "/opt/logwatch/.venv/bin/logwatch"
    assert argv[1] == "run"
    help_text = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    accepted = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", help_text))
    flags = [a for a in argv[2:] if a.startswith("-")]
    assert flags, "ExecStart should name the log root"
    for flag in flags:
        assert flag in accepted, f"{flag} is not an option of `logwatch run`"
    config_file = argv[argv.index("--config") + 1] if "--config" in argv else None
    if config_file is not None:
        assert Path(config_file).name == EXAMPLE_CONFIG.name  # README copies the example there


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE_CONFIG, env={})
    assert config.poll_interval > 0


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart exists: point it at this checkout's console script.
    logwatch = Path(sys.executable).with_name("logwatch")
    if not logwatch.exists():
        pytest.skip(f"{logwatch} is not installed (pip install -e .)")
    text = UNIT.read_text(encoding="utf-8").replace(
        "/opt/logwatch/.venv/bin/logwatch", str(logwatch)
    )
    copy = tmp_path / "logwatch.service"
    copy.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    # Unknown keys are only warned about (exit 0), so the output about our file must be empty too.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if str(copy) in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr
