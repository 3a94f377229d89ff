"""Entry point of the ``sfp`` command: dispatch to sub-commands; user mistakes become one line and exit code 2."""

from __future__ import annotations

import sys

from sfp.errors import UserError


def main(argv: list[str] | None = None) -> int:
    """Run the ``sfp`` command line."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        raise UserError("no sub-command yet")
    except UserError as err:
        print(f"sfp: error: {err}", file=sys.stderr)
        return 2
