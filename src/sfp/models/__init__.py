"""Grid backbones ``(B, T_in, C, H, W) -> (B, T_out, C, H, W)`` by name, and nowcasting baselines.

Importing this package registers every grid backbone: ``build("simvp", in_frames=10, out_frames=10, channels=1)``.
"""

from sfp.models import advection, convlstm, first_guess, fno, performer, resnet, simvp, unet  # noqa: F401  (registration side effects)
from sfp.models.registry import available, build, options, register

__all__ = ["available", "build", "options", "register"]
