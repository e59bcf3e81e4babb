"""The `relay` command line, one module per command group; `main(argv)` runs it in-process."""

from relay.cli.main import main

__all__ = ["main"]
