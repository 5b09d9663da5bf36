"""`python -m analyzer` runs the command line, like `rpc-analyzer`."""

from analyzer.cli.app import run

run()
