from logwatch.cli import cli

cli(prog_name="logwatch")
