"""The docs keep up with the code: every command has help and is in README.md, as is every option
of ``run``; the README quick start shows the seed invocation and the test command."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from conftest import ROOT

from logwatch.cli import cli

README = ROOT / "README.md"


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


COMMANDS = list(_commands(cli))
COMMAND_IDS = [" ".join(path) for path, _ in COMMANDS]


def readme() -> str:
    assert README.is_file(), (
        f"{README} does not exist yet: the README must document every command "
        "(`logwatch <name>`), every option of `run`, and a quick start"
    )
    return README.read_text(encoding="utf-8")


def test_the_cli_has_the_expected_commands() -> None:
    assert {"run", "anomalies", "files", "templates", "status", "db", "db upgrade"} <= set(
        COMMAND_IDS
    )


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=COMMAND_IDS)
def test_every_command_has_help(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help and command.help.strip(), f"`logwatch {' '.join(path)}` has no help text"
    assert command.get_short_help_str().strip()


MISSING_OPTION_HELP: set[tuple[str, str]] = set()
OPTIONS = [
    pytest.param(
        path,
        option,
        id=f"{' '.join(path)} {option.opts[-1]}",
        marks=[
            pytest.mark.xfail(
                strict=True,
                reason=f"BUG: `logwatch {' '.join(path)} "
                f"{option.opts[-1]}` has no help text in --help",
            )
        ]
        if (" ".join(path), option.name) in MISSING_OPTION_HELP
        else [],
    )
    for path, command in COMMANDS
    for option in command.params
    if isinstance(option, click.Option)
]


@pytest.mark.parametrize(("path", "option"), OPTIONS)
def test_every_option_has_help(path: tuple[str, ...], option: click.Option) -> None:
    assert option.help and option.help.strip()


@pytest.mark.parametrize("name", COMMAND_IDS)
def test_every_command_is_in_the_readme(name: str) -> None:
    assert f"logwatch {name}" in readme(), f"README.md does not mention `logwatch {name}`"


def test_readme_quick_start() -> None:
    text = readme()
    heading = re.search(r"^#+\s*quick\s*-?\s*start.*$", text, re.I | re.M)
    assert heading, "README.md has no 'Quick start' section"
    level = len(heading.group().split()[0])
    rest = text[heading.end() :]
    end = re.search(rf"^#{{1,{level}}}\s", rest, re.M)
    section = rest[: end.start()] if end else rest
    assert "./run.sh --log_dir sample_input_logs" in section
    assert "./run.sh test" in section


@pytest.mark.parametrize(
    "option",
    [p for p in cli.commands["run"].params if isinstance(p, click.Option)],
    ids=lambda p: p.opts[-1],
)
def test_every_run_option_is_in_the_readme(option: click.Option) -> None:
    text = readme()
    names = option.opts + option.secondary_opts  # `-v` counts as well as `--verbose`
    assert any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in names), (
        f"README.md does not mention any of {names} (option of `logwatch run`)"
    )
