"""Read the public radar composites of four networks with pysteps' importers, as rain rate in mm/h.

Each network's files are read by pysteps' own importer and converted by ``pysteps.utils.to_rainrate`` (dBZ through
the importer's Z-R relation, accumulations divided by their accumulation time). Missing or no-data pixels are NaN,
never zero rain. Every problem with a file (missing, truncated, not what its network writes) is a
:class:`~sfp.errors.UserError` naming it.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from sfp.errors import UserError


@dataclass(frozen=True)
class Network:
    """How one network's files are found and read: file pattern, timestamp in the name, pysteps importer.

    ``pixel_m`` is the composite's nominal grid spacing (importers report it in different units).
    """

    name: str
    importer: str
    pixel_m: float
    glob: str
    stamp: str  # regular expression whose first group is the time in ``stamp_format``
    stamp_format: str
    kwargs: dict[str, Any] = field(default_factory=dict)


NETWORKS: dict[str, Network] = {n.name: n for n in (
    Network("fmi", "import_fmi_pgm", 1000.0, "*.pgm.gz", r"^(\d{12})_fmi", "%Y%m%d%H%M", {"gzipped": True}),
    Network("mch", "import_mch_gif", 1000.0, "AQC*.gif", r"^AQC(\d{9})", "%y%j%H%M",
            {"product": "AQC", "unit": "mm", "accutime": 5.0}),
    Network("knmi", "import_knmi_hdf5", 1000.0, "RAD_NL25_*.h5", r"_(\d{12})\.h5$", "%Y%m%d%H%M"),
    Network("bom", "import_bom_rf3", 500.0, "*.nc", r"_(\d{8}_\d{6})\.", "%Y%m%d_%H%M%S"),
)}


@dataclass(frozen=True)
class Grid:
    """Where a composite's pixels lie: pysteps' georeferencing (``projection`` a PROJ string; ``x1, y1, x2, y2`` the
    corners and ``xpixelsize, ypixelsize`` in ``unit``; ``yorigin`` ``upper`` when row 0 is the northern edge)."""

    projection: str
    x1: float
    y1: float
    x2: float
    y2: float
    xpixelsize: float
    ypixelsize: float
    yorigin: str
    unit: str = "m"

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> Grid:
        return cls(str(metadata.get("projection", "")), *(float(metadata[key]) for key in (
            "x1", "y1", "x2", "y2", "xpixelsize", "ypixelsize")), str(metadata.get("yorigin", "upper")),
            str(metadata.get("cartesian_unit", "m")))

    def centres(self, height: int, width: int, factor: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The ``(y, x)`` coordinates of the pixel centres of the ``(height, width)`` field that blocks of ``factor``
        pixels (cut from the top-left corner as stored, :func:`~sfp.data.radar.grid.block_mean`) make."""
        dx, dy = self.xpixelsize * factor, self.ypixelsize * factor
        x = self.x1 + (np.arange(width) + 0.5) * dx
        rows = (np.arange(height) + 0.5) * dy
        y = self.y2 - rows if self.yorigin == "upper" else self.y1 + rows
        return y, x


@dataclass
class Frame:
    """One composite: rain rate (H, W) in mm/h with NaN where missing, its time and where its pixels lie."""

    rain: np.ndarray
    time: datetime
    grid: Grid | None = None


def _quiet_pysteps_io() -> Any:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pysteps.io
            import pysteps.utils
    except ImportError as err:
        raise UserError("radar data need the radar extra: pip install sfp-forecast[radar]") from err
    return pysteps


def file_time(network: Network, path: Path) -> datetime:
    """The time a file's name carries, or a UserError when the name is not one of ``network``'s."""
    match = re.search(network.stamp, path.name)
    if match is None:
        raise UserError(f"{path}: not a {network.name} file name (expected {network.glob})")
    try:
        return datetime.strptime(match.group(1), network.stamp_format)
    except ValueError as err:
        raise UserError(f"{path}: bad time in the file name ({err})") from err


def to_mm_per_hour(values: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    """Values in the importer's units (dBZ, mm per accumulation, mm/h) to rain rate in mm/h, NaN kept."""
    pysteps = _quiet_pysteps_io()
    try:
        rain, _ = pysteps.utils.to_rainrate(np.asarray(values, dtype=np.float64), dict(metadata))
        rain = np.maximum(rain, 0.0)  # small negative accumulations are noise; NaN stays NaN
    except (KeyError, ValueError, TypeError) as err:
        raise UserError(f"cannot convert {metadata.get('unit')!r} values to rain rate ({err})") from err
    return rain


def read_frame(network: Network, path: str | Path) -> Frame:
    """Read one file of ``network`` as a :class:`Frame`; one-line UserError on any problem with the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    time = file_time(network, path)
    pysteps = _quiet_pysteps_io()
    importer = getattr(pysteps.io.importers, network.importer)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            values, _, metadata = importer(str(path), **network.kwargs)
        rain = to_mm_per_hour(values, metadata)
    except UserError as err:
        raise UserError(f"{path}: {err}") from err
    except Exception as err:  # pysteps and its readers raise anything from OSError to IndexError on a bad file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path}: cannot read as {network.name} ({type(err).__name__}: {reason})") from err
    rain = np.asarray(rain, dtype=np.float32)
    if rain.ndim != 2:
        raise UserError(f"{path}: expected one 2-D composite, got shape {rain.shape}")
    try:
        grid = Grid.of(metadata)
    except (KeyError, TypeError, ValueError):
        grid = None  # an importer that gives no georeferencing
    return Frame(rain, time, grid)


def event_files(network: Network, folder: str | Path) -> list[Path]:
    """The files of one event folder (searched recursively), in time order."""
    files = sorted(Path(folder).rglob(network.glob), key=lambda p: file_time(network, p))
    if not files:
        raise UserError(f"{folder}: no {network.name} files ({network.glob})")
    return files
