"""GridForecaster: the Forecaster around any registered grid backbone ``(B, T_in, C, H, W) -> (B, T_out, C, H, W)``."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.forecaster import Forecaster


class GridForecaster(Forecaster):
    """A field forecaster whose backbone is built by name with ``sfp.models.build``.

    The backbone reads ``context_len`` frames and writes its native output: ``target_len`` frames in one-shot
    mode, ``rollout.ar_step`` frames per step in autoregressive mode. Time features are not used by grid
    backbones. ``forecaster_options`` are the :class:`Forecaster` options and option groups.
    """

    def __init__(self, backbone: str = "simvp", backbone_kwargs: dict[str, Any] | None = None, context_len: int = 10,
                 target_len: int = 10, channels: int = 1, **forecaster_options: Any):
        for name in ("d_y_context", "d_y_target"):
            if name in forecaster_options:
                raise UserError(f"GridForecaster sets {name} from channels; do not pass {name}")
        super().__init__(d_y_context=channels, d_y_target=channels, context_len=context_len, target_len=target_len,
                         **forecaster_options)
        from sfp.models import build

        self.backbone = build(backbone, in_frames=context_len, out_frames=self.step_len, channels=channels,
                              **(backbone_kwargs or {}))
        self._save_settings()

    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        if context_y.ndim != 5:
            raise UserError(f"GridForecaster needs fields (B, T, C, H, W), got shape {tuple(context_y.shape)}")
        return self.backbone(context_y)
