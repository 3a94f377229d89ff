"""``sfp data prepare radar``: build the radar windows file once from the pysteps example data.

With ``--from DIR`` the data are read from ``DIR`` (a copy of pysteps-data); without it they are downloaded with
``pysteps.datasets.download_pysteps_data`` into the sfp cache, which needs internet access. A file already built
with the same settings is kept (it is the cache); ``--overwrite`` rebuilds it. ``--first-guess sprog`` adds S-PROG's
forecast of the whole composite to every window, for the hybrid agent (:mod:`sfp.data.radar.first_guess`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from pathlib import Path
from typing import Any

from sfp.data.writing import check_output
from sfp.errors import UserError


def add_parser(actions: Any) -> None:
    """Register ``data prepare`` on the ``data`` sub-parsers."""
    prep = actions.add_parser("prepare", help="build the windows file of a real dataset (radar)")
    prep.add_argument("name", choices=["radar"], help="dataset family")
    prep.add_argument("--from", dest="source", help="folder of the pysteps example data (default: download it)")
    prep.add_argument("--out", required=True, help="output .npz")
    prep.add_argument("--size", type=_tile_size, default=64, help="tile side in pixels of 2 km (default 64)")
    prep.add_argument("--first-guess", choices=["extrapolation", "sprog"], default="",
                      help="insert this pysteps nowcast of the whole composite after each window's context, for a "
                           "hybrid agent that corrects it (backbone first_guess; configs/radar_hybrid.yaml)")
    prep.add_argument("--overwrite", action="store_true", help="rebuild even when the file is up to date")
    prep.set_defaults(run=prepare)


def _tile_size(text: str) -> int:
    """A tile side the forecasters can take: an integer of at least the optical-flow baselines' smallest grid."""
    from sfp.models.baselines import MIN_GRID

    try:
        size = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from err
    if size < MIN_GRID:
        raise argparse.ArgumentTypeError(f"a tile must be at least {MIN_GRID} pixels a side, got {size}")
    return size


def _download() -> Path:
    """The pysteps example data in the sfp cache, downloaded when absent; a UserError without internet access."""
    from sfp.data.cache import cache_dir

    target = cache_dir() / "pysteps-data"
    if target.is_dir() and any(target.iterdir()):
        return target
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pysteps announces its configuration file on import
            from pysteps.datasets import download_pysteps_data
    except ImportError as err:
        raise UserError("downloading the radar data needs the radar extra: pip install sfp-forecast[radar]") from err
    try:
        download_pysteps_data(str(target), force=True)
    except Exception as err:  # urllib, zip and file errors alike mean: not available here
        raise UserError(f"no --from given and the pysteps example data cannot be downloaded here "
                        f"(no internet access?): {type(err).__name__}") from err
    return target


def prepare(args: argparse.Namespace) -> None:
    """Build (or keep, when up to date) the prepared radar file ``--out``."""
    from sfp.data.radar import dataset
    from sfp.data.radar.tiles import TileRule

    out = check_output(args.out, {".npz"}, replace=True, make_folders=True)
    rule = TileRule(size=args.size)
    key = dataset.settings_key(rule, 2.0, 10, args.first_guess)
    if out.exists() and not args.overwrite:
        if str(dataset.load(out)["key"]) == key:
            print(f"{out}: up to date")
            return
        raise UserError(f"{out}: exists and was built with other settings; pass --overwrite to replace it")
    root = Path(args.source) if args.source else _download()
    if not root.is_dir():
        raise UserError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    start = time.perf_counter()
    arrays = dataset.build(root, rule, log=print, first_guess=args.first_guess)
    dataset.save(out, arrays)
    print(f"wrote {out}: {arrays['data'].shape} windows (mm/h, NaN missing), {time.perf_counter() - start:.1f} s")
