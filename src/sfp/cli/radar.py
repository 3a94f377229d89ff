"""``sfp radar``: pysteps' references and trained forecasters scored on the prepared radar test events."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``radar``."""
    radar = subparsers.add_parser("radar", help="score pysteps' nowcasts and checkpoints on the radar test events")
    radar.add_argument("--data", required=True, help="prepared radar .npz (sfp data prepare radar)")
    radar.add_argument("--out", required=True, help="folder for metrics.json, metrics.md and the views per lead")
    radar.add_argument("--checkpoint", action="append", default=[], metavar="[NAME=]PATH",
                       help="a learned forecaster checkpoint to score beside the references (repeatable)")
    radar.add_argument("--limit", type=int, help="only the first LIMIT test batches")
    radar.add_argument("--composites", metavar="FOLDER",
                       help="the pysteps example data the windows were built from: also run each reference on the "
                            "whole composite and cut it to the tiles (<name>_full)")
    radar.add_argument("--members", type=int, default=16, help="STEPS members")
    radar.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from sfp.report.radar import run as score

    named = dict(text.split("=", 1) if "=" in text else ("checkpoint", text) for text in args.checkpoint)
    score(args.data, args.out, named, args.limit, composites=args.composites, members=args.members)
