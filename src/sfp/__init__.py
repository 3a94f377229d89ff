"""sfp: spatiotemporal forecasting as planning.

Forecasters of gridded physical fields ``(B, T, C, H, W)`` and sensor series ``(B, T, N)`` on PyTorch Lightning,
improved on metrics with no gradient by planning inside a learned generative world model.
"""

__version__ = "0.1.0"
