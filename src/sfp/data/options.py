"""The data modules' option groups: how windows are cut, how a source is split, how batches are loaded, and how
training series are perturbed; each a frozen dataclass that owns its defaults and checks itself once
(:mod:`sfp.options`). A data module states its own defaults as an instance, e.g. ``Windows(context=80, target=4)``;
a config sets any field of a group (``data.init_args.windows.target: 6``) and keeps the module's others.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfp.data.windows import check_fractions
from sfp.options import require, require_finite

MOVED: dict[str, str] = {
    **{key: f"windows.{key}" for key in ("context", "target", "stride")},
    **{key: f"splits.{key}" for key in ("val_fraction", "test_fraction")},
    **{key: f"loading.{key}" for key in ("batch_size", "num_workers")},
    **{key: f"augment.{key}" for key in ("noise_std", "freq_noise_std")},
}
"""The data modules' flat constructor arguments of earlier versions and the option groups they moved to."""


@dataclass(frozen=True)
class Windows:
    """``context`` steps in, ``target`` steps out, a window every ``stride`` steps (None: ``target``, so the targets
    of consecutive windows tile a sequence)."""

    context: int = 10
    target: int = 10
    stride: int | None = None

    def __post_init__(self) -> None:
        for name in ("context", "target"):
            require(getattr(self, name) >= 1, f"windows.{name} must be at least 1, got {getattr(self, name)}")
        require(self.stride is None or self.stride >= 1, f"windows.stride must be at least 1, got {self.stride}")


@dataclass(frozen=True)
class Splits:
    """The shares of the source held out for validation and test (whole sequences, or blocks of a series)."""

    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        check_fractions(self.val_fraction, self.test_fraction)


@dataclass(frozen=True)
class Loading:
    """Windows per batch and loader worker processes (0: load in the main process)."""

    batch_size: int = 8
    num_workers: int = 0

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"loading.batch_size must be at least 1, got {self.batch_size}")
        require(self.num_workers >= 0, f"loading.num_workers must be 0 or more, got {self.num_workers}")


@dataclass(frozen=True)
class Augmentation:
    """Noise on training series windows (:class:`~sfp.data.datamodules.SeriesAugment`), in training standard
    deviations (``noise_std``) and as a relative perturbation of the spectrum along time (``freq_noise_std``)."""

    noise_std: float = 0.02
    freq_noise_std: float = 0.05

    def __post_init__(self) -> None:
        require_finite("augment.noise_std", self.noise_std, minimum=0.0)
        require_finite("augment.freq_noise_std", self.freq_noise_std, minimum=0.0)
