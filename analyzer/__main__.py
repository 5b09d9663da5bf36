"""`python -m analyzer` runs the command line, like `rpc-analyzer`."""

from analyzer.cli import main

main(prog_name="rpc-analyzer")
