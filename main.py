"""Seed-compatible entry point: ``python3 main.py --log_dir DIR`` starts the daemon."""

from logwatch.cli import cli

if __name__ == "__main__":
    cli(prog_name="logwatch")
