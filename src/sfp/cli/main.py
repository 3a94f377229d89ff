"""Entry point of the ``sfp`` command.

``fit``, ``validate``, ``test``, ``predict``, ``pipeline`` and ``demo`` read nested YAML configs (``--config`` takes a
shipped config's name or a file) with ``--section.key value`` overrides; ``data`` is a plain sub-command.
User mistakes print one line on stderr
and exit with code 2, never a stack trace.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from typing import Any

from sfp.allocator import keep_freed_memory
from sfp.errors import UserError

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
PIPELINE_COMMANDS = ("pipeline", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every mistake ends as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(message)


def _build_parser() -> argparse.ArgumentParser:
    from sfp import __version__
    from sfp.cli import data, radar, table

    parser = _Parser(prog="sfp", description="Spatiotemporal forecasting as planning.")
    parser.add_argument("--version", action="version", version=f"sfp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     metavar="{data,fit,validate,test,predict,pipeline,demo,table,radar}")
    data.add_parser(commands)
    for name, text in (("fit", "train a model (or resume one with --ckpt_path last)"),
                       ("validate", "validate a checkpoint"), ("test", "evaluate a checkpoint; writes metrics.json"),
                       ("predict", "forecasts of a checkpoint (--ensemble K adds members)")):
        commands.add_parser(name, help=f"{text}; --help lists every option")
    table.add_parser(commands)
    commands.add_parser("pipeline", help="run the SFP stages of a config (skips finished stages); --help for more")
    commands.add_parser("demo", help="the storms SFP pipeline (what `make demo` runs)")
    radar.add_parser(commands)
    return parser


class _Stdout:
    """Whatever ``sys.stdout`` is at the time of writing (a logging handler keeps its stream object)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    print(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), file=sys.stdout)


def _sfp_warnings_to_stdout() -> None:
    """sfp's own logged warnings (e.g. a cache file that cannot be written) go to stdout, one line each, so that a
    failing run still prints exactly one line on stderr (without a handler, Python's fallback writes them there)."""
    logger = logging.getLogger("sfp")
    if not any(isinstance(getattr(handler, "stream", None), _Stdout) for handler in logger.handlers):
        handler = logging.StreamHandler(_Stdout())
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


def _library_chatter_to_stdout(trains: bool) -> None:
    """Libraries' informational lines and warnings go to stdout (stderr is kept for sfp's one-line errors and
    real failures); notices that say nothing about the user's run (product tips, Lightning's deprecation of a
    torch internal, its note on sfp resolving config names) are hidden. Lightning (seconds to import) is loaded
    only for the commands that train."""
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*args parameter is intended to run from within Python.*")
    warnings.showwarning = _show_warning
    _sfp_warnings_to_stdout()
    if not trains:
        return
    import lightning  # noqa: F401  (sets up its loggers' handlers, which are re-pointed here)

    loggers = [logger for name, logger in logging.Logger.manager.loggerDict.items()
               if name.split(".")[0] in ("lightning", "torchmetrics") and isinstance(logger, logging.Logger)]
    for handler in (handler for logger in loggers for handler in logger.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler.stream, _Stdout):
            handler.setStream(_Stdout())
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "Tip:" not in r.getMessage())


class _Interrupts:
    """Whether Ctrl-C was pressed: Lightning turns the KeyboardInterrupt of a fit into ``exit(1)``, so the CLI
    notes the signal itself to still end with its "interrupted" line and code 130."""

    seen = False

    @classmethod
    def watch(cls) -> None:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, cls._note)

    @classmethod
    def _note(cls, signum: int, frame: Any) -> None:
        cls.seen = True
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the ``sfp`` command line; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _Interrupts.watch()
    trains = bool(argv) and argv[0] in (*LIGHTNING_COMMANDS, *PIPELINE_COMMANDS, "table")
    try:
        _library_chatter_to_stdout(trains=trains)
        if trains:
            keep_freed_memory()
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from sfp.cli.train import run_lightning

            run_lightning(argv)
            return 0
        if argv and argv[0] in PIPELINE_COMMANDS:
            from sfp.cli import pipeline

            getattr(pipeline, "run" if argv[0] == "pipeline" else "demo")(argv[1:])
            return 0
        args = _build_parser().parse_args(argv)
        args.run(args)
        return 0
    except UserError as err:
        print(f"sfp: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sfp: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        if not _Interrupts.seen:
            raise
        print("sfp: interrupted", file=sys.stderr)
        return 130
