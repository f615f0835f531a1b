from logwatch.signals import catch_stop_signals

catch_stop_signals()  # before the slow imports: a stop request during start-up is still graceful

from logwatch.cli import cli  # noqa: E402

cli(prog_name="logwatch")
