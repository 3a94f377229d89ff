"""Public radar composites (pysteps example data): readers, regridding, tiles, event split and the data module."""

from sfp.data.radar.datamodule import RadarDataModule

__all__ = ["RadarDataModule"]
