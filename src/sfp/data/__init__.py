"""Data: embedded dataset generators, lazy readers of real data, sliding windows, scalers and data modules.

The names below are imported on first use (PEP 562), so ``import sfp.data.files`` stays light and never pulls in
Lightning; ``from sfp.data import FieldDataModule`` and a YAML ``class_path: sfp.data.FieldDataModule`` both work.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FieldDataModule": "sfp.data.datamodules",
    "OceanDataModule": "sfp.data.datamodules",
    "SeriesDataModule": "sfp.data.datamodules",
    "SEVIRDataModule": "sfp.data.file_datamodules",
    "FNODataModule": "sfp.data.file_datamodules",
    "NetCDFDataModule": "sfp.data.file_datamodules",
    "WindowDataModule": "sfp.data.datamodules",
    "SEVIRReader": "sfp.data.readers",
    "FNOReader": "sfp.data.readers",
    "NetCDFReader": "sfp.data.readers",
    "WindowDataset": "sfp.data.windows",
    "ArraySource": "sfp.data.windows",
    "Segment": "sfp.data.windows",
    "RunningMoments": "sfp.data.scalers",
    "fit_moments": "sfp.data.scalers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sfp.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
