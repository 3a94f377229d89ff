"""The ``sfp`` command."""

from sfp.cli.main import main

__all__ = ["main"]
