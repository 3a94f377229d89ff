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
    radar.add_argument("--heldout", metavar="RUNS",
                       help="leave each event out in turn: train the config's agent on the others in RUNS/<event>, "
                            "score it beside the references on the whole composite (needs --composites); "
                            "<out>/events/<event>.json per fold (resumes), <out>/heldout.json and .md pooled")
    radar.add_argument("--forecast", metavar="EVENT",
                       help="write the whole composite's forecasts from one start of EVENT (e.g. fmi/20170509) as "
                            "<out>/<event>-<start>.nc: pysteps' extrapolation and S-PROG, each --checkpoint's agent "
                            "tiled, the observations, x/y and the projection (needs --composites)")
    radar.add_argument("--start", type=int, default=0, help="with --forecast: the first context frame's index")
    radar.add_argument("--config", default="radar_sfp", help="with --heldout: the pipeline config of the agent")
    radar.add_argument("--event", action="append", default=None,
                       help="with --heldout: only this event's fold (repeatable; default every event)")
    radar.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from sfp.errors import UserError

    if args.heldout is not None:
        from sfp.radar_heldout import run_folds

        if args.composites is None or args.checkpoint or args.limit is not None:
            raise UserError("--heldout scores every event's own agent on the whole composite: give --composites, "
                            "and no --checkpoint or --limit")
        run_folds(args.data, args.out, args.composites, args.heldout, args.config, args.event, args.members)
        return
    named = dict(text.split("=", 1) if "=" in text else ("checkpoint", text) for text in args.checkpoint)
    if args.forecast is not None:
        from sfp.report.composite_forecast import write_composite_forecast

        if args.composites is None:
            raise UserError("--forecast reads the whole composite: give --composites")
        path = write_composite_forecast(args.composites, args.data, args.forecast, args.start, named, args.out)
        print(f"wrote {path}")
        return
    if args.event is not None:
        raise UserError("--event chooses held-out folds: use it with --heldout")
    from sfp.report.radar import run as score

    score(args.data, args.out, named, args.limit, composites=args.composites, members=args.members)
