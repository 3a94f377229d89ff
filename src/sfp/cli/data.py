"""``sfp data generate`` and ``sfp data info``: make an embedded dataset file, or describe any array file."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from sfp.cli import prepare
from sfp.configs.bounded_yaml import load_bounded
from sfp.data.files import WRITABLE, open_array, save_array
from sfp.data.writing import check_output
from sfp.errors import UserError
from sfp.options import check_seed
from sfp.task import RADAR, SEVIR_THRESHOLDS

CHUNK_BYTES = 64 * 2**20
# Smallest values that make a forecasting dataset: one frame to forecast from and one to forecast; 8 pixels, the
# smallest even grid (navier_stokes) that holds the sensors' 7 x 7 probe lattice.
MINIMUM = {"n": 1, "frames": 2, "size": 8, "length": 2}


def add_parser(subparsers: Any) -> None:
    """Register ``data generate`` and ``data info`` on the top-level sub-parsers."""
    data = subparsers.add_parser("data", help="generate embedded datasets, inspect array files")
    actions = data.add_subparsers(dest="action", required=True, metavar="{generate,info,prepare}")

    gen = actions.add_parser("generate", help="generate an embedded dataset into a file")
    gen.add_argument("name", help="storms, navier_stokes, flame, ocean, sensors or sensors_kolmogorov")
    gen.add_argument("--out", required=True, help="output file: .npy, .npz, .h5 or .hdf5")
    gen.add_argument("--n", type=int, help="number of sequences (field datasets)")
    gen.add_argument("--frames", type=int, help="frames per sequence (field datasets)")
    gen.add_argument("--size", type=int, help="grid size")
    gen.add_argument("--length", type=int, help="series length (sensors, sensors_kolmogorov)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="extra generator parameter (YAML value), repeatable")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    gen.set_defaults(run=generate)

    info = actions.add_parser("info", help="shape, dtype, value range and event fractions of an array file")
    info.add_argument("file")
    info.add_argument("--variable", help="array name inside .npz/HDF5/NetCDF files")
    info.add_argument("--thresholds", type=_floats,
                      help="comma-separated event thresholds (default: the radar task's mm/h thresholds for a "
                           "prepared radar file, else the SEVIR VIL thresholds)")
    info.add_argument("--null-value", type=float, help="value that marks missing data (e.g. 255 for SEVIR)")
    info.add_argument("--require-finite", action="store_true", help="fail when the array holds NaN or inf")
    info.add_argument("--heatwaves", type=_dates, metavar="START,END",
                      help="marine heatwave statistics of a daily SST NetCDF file (OISST layout, --variable, "
                           "default sst) against the climatology of the base period START,END")
    info.set_defaults(run=info_command)
    prepare.add_parser(actions)


def _floats(text: str) -> tuple[float, ...]:
    """Comma-separated finite numbers, at least one."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err
    if not values or not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text!r}")
    return values


def _dates(text: str) -> tuple[str, str]:
    """Two comma-separated dates, a base period."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        for part in parts:
            np.datetime64(part, "D")
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected START,END dates, e.g. 1982-01-01,2011-12-31; got {text!r}") from err
    return parts[0], parts[1]


def _parse_sets(items: list[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        params[key] = load_bounded(value, f"--set {key}")
    return params


def _check_counts(params: dict[str, Any]) -> None:
    """Sequence count, frames, grid size and length must be integers of at least their minimum."""
    for key, least in MINIMUM.items():
        value = params.get(key)
        if key in params and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise UserError(f"{key} must be an integer >= {least}, got {value!r}")


def generate(args: argparse.Namespace) -> None:
    """Generate the named dataset with its defaults, overridden by the given options, and save it."""
    from sfp.data.registry import get_dataset

    spec = get_dataset(args.name)
    options = {"n": args.n, "frames": args.frames, "size": args.size} if spec.kind == "field" else {
        "length": args.length, "size": args.size}
    params = {**spec.defaults, **{k: v for k, v in options.items() if v is not None}, **_parse_sets(args.set)}
    check_seed(args.seed, "--seed")
    params["seed"] = args.seed
    _check_counts(params)
    check_output(args.out, WRITABLE, replace=args.overwrite)
    start = time.perf_counter()
    print(f"generating {args.name} {params} ...", flush=True)
    try:
        array = spec.generate(**params)
    except TypeError as err:
        raise UserError(f"{args.name}: {err}") from err
    path = save_array(args.out, array, overwrite=args.overwrite)
    print(f"wrote {path}: shape {array.shape}, {array.dtype}, {time.perf_counter() - start:.1f} s")


def _chunks(array: Any):
    """Yield float64 blocks along the first axis, each at most CHUNK_BYTES."""
    if not array.shape:
        yield np.asarray(array[()], dtype=np.float64).reshape(1)
        return
    row_bytes = max(1, int(np.prod(array.shape[1:])) * np.dtype(array.dtype).itemsize)
    step = max(1, CHUNK_BYTES // row_bytes)
    for start in range(0, array.shape[0], step):
        yield np.asarray(array[start:start + step], dtype=np.float64)


def describe(array: Any, thresholds: tuple[float, ...], null_value: float | None = None) -> dict[str, Any]:
    """Stream over `array` once: shape, dtype, finite range, mean, missing count, event fractions."""
    count = missing = nonfinite = 0
    total = 0.0
    low, high = np.inf, -np.inf
    events = np.zeros(len(thresholds))
    for block in _chunks(array):
        valid = np.isfinite(block)
        nonfinite += int((~valid).sum())
        if null_value is not None:
            is_null = block == null_value
            missing += int(is_null.sum())
            valid &= ~is_null
        values = block[valid]
        count += values.size
        if values.size:
            total += float(values.sum())
            low, high = min(low, float(values.min())), max(high, float(values.max()))
            events += [(values >= t).sum() for t in thresholds]
    return {
        "shape": tuple(array.shape), "dtype": str(array.dtype), "valid": count, "nonfinite": nonfinite,
        "missing": missing, "min": low if count else float("nan"), "max": high if count else float("nan"),
        "mean": total / count if count else float("nan"),
        "event_fraction": {t: (e / count if count else float("nan")) for t, e in zip(thresholds, events)},
    }


def _check_real(path: str, array: Any) -> None:
    """Only arrays of real numbers (or booleans) can be described; strings, objects and complex values cannot."""
    kind = np.dtype(array.dtype).kind
    if kind == "c":
        raise UserError(f"{path}: holds complex values ({array.dtype}); describe its real or imaginary part instead")
    if kind not in "biuf":
        raise UserError(f"{path}: holds {array.dtype} values, not numbers")


def _prepared_radar(path: str) -> bool:
    """Whether ``path`` is an ``sfp data prepare radar`` file (an .npz with its keys)."""
    from sfp.data.radar.dataset import KEYS

    if not path.lower().endswith(".npz"):
        return False
    with np.load(path, allow_pickle=False) as archive:
        return all(key in archive.files for key in KEYS)


def info_command(args: argparse.Namespace) -> None:
    """Print a summary of one array of a file; fail on non-finite values when asked; with ``--heatwaves``, the
    marine heatwave statistics of an SST file instead of event fractions."""
    if args.heatwaves:
        _heatwave_info(args)
        return
    array = open_array(args.file, args.variable)
    _check_real(args.file, array)
    thresholds = args.thresholds or (RADAR.thresholds if _prepared_radar(args.file) else SEVIR_THRESHOLDS)
    summary = describe(array, thresholds, args.null_value)
    if args.require_finite and summary["nonfinite"]:
        raise UserError(f"{args.file}: {summary['nonfinite']} NaN or infinite values where none may be")
    print(f"file      {args.file}")
    print(f"shape     {summary['shape']}  dtype {summary['dtype']}")
    print(f"range     {summary['min']:.6g} .. {summary['max']:.6g}  mean {summary['mean']:.6g}")
    print(f"missing   {summary['nonfinite']} NaN/inf, {summary['missing']} null-valued")
    for threshold, fraction in summary["event_fraction"].items():
        print(f"  >= {threshold:<8g} {100 * fraction:8.4f} %")


def _heatwave_info(args: argparse.Namespace) -> None:
    from sfp.data.readers.sst import heatwave_statistics

    stats = heatwave_statistics(args.file, args.heatwaves, args.variable or "sst")
    print(f"file      {args.file}")
    print(f"grid      {stats['ocean_pixels']} ocean pixels, {stats['days']} days; climatology "
          f"{args.heatwaves[0]} .. {args.heatwaves[1]}")
    print(f"heatwaves {stats['events']} events, {stats['events_per_pixel_year']:.3g} per pixel and year, "
          f"mean duration {stats['mean_duration']:.3g} days, largest intensity {stats['max_intensity']:.3g} °C")
    print(f"  in a heatwave {100 * stats['heatwave_fraction']:8.4f} % of ocean pixel-days")
    for k, name in enumerate(("I moderate", "II strong", "III severe", "IV extreme"), start=1):
        print(f"  {name:<13} {100 * stats[f'category_{k}_fraction']:8.4f} %")
