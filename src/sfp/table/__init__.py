"""Results tables: SFP against its baselines over datasets x backbones x seeds, one resumable pipeline run per cell.

``spec`` reads a table config, ``cells`` computes cells into small JSON files, ``render`` rebuilds the table from
those files alone (so cells computed at different times, on different machines, make one table).
"""
