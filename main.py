"""Seed-compatible entry point: ``python3 main.py --log_dir DIR`` starts the daemon."""

from logwatch.signals import catch_stop_signals

catch_stop_signals()  # before the slow imports: a stop request during start-up is still graceful

from logwatch.cli import cli  # noqa: E402

if __name__ == "__main__":
    cli(prog_name="logwatch")
