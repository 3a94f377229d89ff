"""The Forecaster's option groups, each default defined and validated here once (see :mod:`sfp.options`)."""

from __future__ import annotations

from dataclasses import dataclass

from sfp.forecasting.decomposition import check_kernel_size
from sfp.forecasting.losses import LOSSES
from sfp.options import require, require_choice, require_finite

LINEAR_FITS = ("joint", "least_squares")


@dataclass(frozen=True)
class Objective:
    """The training loss on scaled values over valid targets: ``loss`` (mse, mae or huber with ``huber_delta``),
    plus ``l2_weight`` times the sum of squared parameters."""

    loss: str = "mse"
    huber_delta: float = 1.0
    l2_weight: float = 0.0

    def __post_init__(self) -> None:
        require_choice("objective.loss", self.loss, LOSSES)
        require_finite("objective.huber_delta", self.huber_delta)
        require(self.huber_delta > 0, f"objective.huber_delta must be > 0, got {self.huber_delta}")
        require_finite("objective.l2_weight", self.l2_weight, minimum=0.0)


@dataclass(frozen=True)
class Normalization:
    """How values are scaled for the model.

    global_norm: by the data module's training-split mean and std (kept as buffers); revin, revin_affine:
    per-sample reversible instance normalization over the context's time axis; seasonal_decomp: the model sees
    the seasonal part of a moving average of width ``decomp_kernel_size`` (odd); the trend is forecast by the
    linear head, or held at its last value without one. log1p: the model sees ``log(1 + y)`` and its output is
    mapped back with ``exp(x) - 1``, so the loss weighs light and heavy values of a skewed nonnegative field (rain
    rate) alike; the values must be >= 0, and it replaces ``global_norm`` (whose statistics are of raw values).
    """

    global_norm: bool = False
    log1p: bool = False
    revin: bool = False
    revin_affine: bool = True
    seasonal_decomp: bool = False
    decomp_kernel_size: int = 25

    def __post_init__(self) -> None:
        if self.seasonal_decomp:
            check_kernel_size(self.decomp_kernel_size)
        require(not (self.log1p and self.global_norm), "normalization.log1p replaces normalization.global_norm: "
                "set one of them")


@dataclass(frozen=True)
class LinearHeadOptions:
    """A linear autoregressive head added to the model's output, from the last ``window`` steps (0: none).

    shared_weights: one map for all variables; cross_variable: every variable's window is read (a vector
    autoregression); fit: ``joint`` trains it with the model, ``least_squares`` solves it once on the training
    windows at the start of fitting and keeps it fixed, so the model learns what a linear forecast leaves.
    """

    window: int = 0
    shared_weights: bool = False
    cross_variable: bool = False
    fit: str = "joint"

    def __post_init__(self) -> None:
        require(isinstance(self.window, int) and self.window >= 0,
                f"linear_head.window must be an integer >= 0, got {self.window!r}")
        require_choice("linear_head.fit", self.fit, LINEAR_FITS)
        require(self.fit != "least_squares" or self.window >= 1,
                "linear_head.fit 'least_squares' solves the head: set linear_head.window >= 1")


@dataclass(frozen=True)
class Rollout:
    """How forecasts longer than one model call are made and trained.

    autoregressive: the model predicts ``ar_step`` steps per call and its predictions are fed back;
    scheduled_sampling_k: in training, the truth is fed back instead with probability ``k / (k + exp(step / k))``;
    None derives ``k`` from ``optimization.num_training_steps`` (probability 1/2 at mid-training), or turns
    teacher forcing off without it.
    """

    autoregressive: bool = False
    ar_step: int = 1
    scheduled_sampling_k: float | None = None

    def __post_init__(self) -> None:
        require(isinstance(self.ar_step, int) and self.ar_step >= 1,
                f"rollout.ar_step must be an integer >= 1, got {self.ar_step!r}")
        k = self.scheduled_sampling_k
        require(k is None or (isinstance(k, (int, float)) and k >= 1),
                f"rollout.scheduled_sampling_k must be >= 1, got {k!r}")


@dataclass(frozen=True)
class Optimization:
    """AdamW from ``initial_lr`` with a linear warm-up over ``warmup_steps``, then reduce-on-plateau of
    ``val/loss`` by ``decay_factor`` after ``plateau_patience`` epochs; num_training_steps: the planned optimizer
    steps (bounds the warm-up; sets the default scheduled-sampling ``k``)."""

    initial_lr: float = 1e-3
    warmup_steps: int = 0
    decay_factor: float = 0.5
    plateau_patience: int = 5
    num_training_steps: int | None = None

    def __post_init__(self) -> None:
        require_finite("optimization.initial_lr", self.initial_lr)
        require(self.initial_lr > 0, f"optimization.initial_lr must be positive, got {self.initial_lr}")
        require(self.warmup_steps >= 0, f"optimization.warmup_steps must be >= 0, got {self.warmup_steps}")
        require(0 < self.decay_factor < 1, f"optimization.decay_factor must lie in (0, 1), got {self.decay_factor}")
        require(self.plateau_patience >= 0,
                f"optimization.plateau_patience must be >= 0, got {self.plateau_patience}")
        require(self.num_training_steps is None or self.warmup_steps <= self.num_training_steps,
                f"optimization.warmup_steps={self.warmup_steps} exceeds num_training_steps={self.num_training_steps}")


MOVED: dict[str, str] = {
    "loss": "objective.loss", "huber_delta": "objective.huber_delta", "l2_regul_factor": "objective.l2_weight",
    "use_global_norm": "normalization.global_norm", "use_revin": "normalization.revin",
    "revin_affine": "normalization.revin_affine", "use_seasonal_decomp": "normalization.seasonal_decomp",
    "decomp_kernel_size": "normalization.decomp_kernel_size",
    "linear_window": "linear_head.window", "linear_shared_weights": "linear_head.shared_weights",
    "linear_cross_variable": "linear_head.cross_variable", "linear_fit": "linear_head.fit",
    "autoregressive_training": "rollout.autoregressive", "ar_step": "rollout.ar_step",
    "scheduled_sampling_k": "rollout.scheduled_sampling_k",
    "initial_lr": "optimization.initial_lr", "warmup_steps": "optimization.warmup_steps",
    "decay_factor": "optimization.decay_factor", "plateau_patience": "optimization.plateau_patience",
    "num_training_steps": "optimization.num_training_steps",
}
"""Flat Forecaster arguments of earlier versions (and of the seed) and the group field each became."""
