"""The option groups of SFP's planning side, each default defined and validated here once (see :mod:`sfp.options`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sfp.models.common import MAX_REPEATS
from sfp.options import require, require_choice, require_finite
from sfp.planning.centring import CENTRINGS

PSEUDO_LABEL_KINDS = ("future", "raise", "objects", "spectrum")
# where imagined futures are centred, one vocabulary for the planner and the ensembles: as decoded, on the forecast
# (the forecast plus each future's departure from their mean), or on the world model's decode of the forecast (the
# forecast plus each future's departure from that decode: members need no mean of their own, the planner does)
PSEUDO_LOSSES = ("mse", "log_spectrum", "surrogate")


def _count(name: str, value: object, minimum: int = 1) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
            f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Imagination:
    """How the world model imagines futures near an action (a forecast).

    samples: futures imagined per action; candidates: the nearest codes of each latent position that may be
    drawn; temperature: of the draw, probability ``softmax(-distance / temperature)`` (0 takes the nearest code).
    """

    samples: int = 16
    candidates: int = 64
    temperature: float = 10.0

    def __post_init__(self) -> None:
        _count("imagination.samples", self.samples)
        _count("imagination.candidates", self.candidates)
        require_finite("imagination.temperature", self.temperature, minimum=0.0)


@dataclass(frozen=True)
class PlannerOptions:
    """Which search finds the best imagined future, and how wide.

    kind: a registered planner (checked where it is built, :func:`~sfp.planning.planner.planner_class`): ``mosaic``
    (best of ``imagination.samples`` draws plus their patch-by-patch best mosaic),
    ``best_of_k`` (best of the draws) or ``beam`` (``beam_width`` beams grown frame by frame, each by
    ``expansions`` draws); max_batch_frames: frames decoded per world-model call (bounds memory);
    centring: ``none`` searches the imagined futures as decoded, ``mean`` searches around the forecast: the
    forecast plus each future's departure from the mean of the searched futures (the decoder's blur and what
    every draw adds cancel; not with ``beam``); wet: with ``mean``, departures only where the forecast is at
    least this (None: everywhere), so a world model that imagines drizzle leaves dry pixels as forecast.
    """

    kind: str = "mosaic"
    imagination: Imagination = field(default_factory=Imagination)
    beam_width: int = 4
    expansions: int = 4
    max_batch_frames: int = 512
    centring: str = "none"
    wet: float | None = None

    def __post_init__(self) -> None:
        _count("planner.beam_width", self.beam_width)
        _count("planner.expansions", self.expansions)
        _count("planner.max_batch_frames", self.max_batch_frames)
        require_choice("planner.centring", self.centring, CENTRINGS.names())
        require(self.centring != "reconstruction", "planner.centring 'reconstruction' centres ensemble members; the "
                "planner centres on the mean of its candidates: choose none or mean")
        require(self.centring == "none" or self.kind not in ("beam", "perturbation"),
                "planner.centring 'mean' centres the world model's candidates, all at once: choose kind mosaic or "
                "best_of_k")
        if self.wet is not None:
            require_finite("planner.wet", self.wet)
            require(self.centring == "mean", "planner.wet keeps departures from a centre: set planner.centring mean")


@dataclass(frozen=True)
class PseudoLabels:
    """What the agent is trained toward, and how hard (see :mod:`sfp.planning.pseudo_labels`).

    kind: ``future`` (the planned future), ``raise`` (the forecast raised where the plan is higher and that turns
    misses into hits), ``objects`` (the forecast edited by the plan inside the plan's objects matched to the
    truth's; an object reward) or ``spectrum`` (the forecast with the plan's shell energies where they are closer to
    the truth's); loss: ``mse`` to the label, ``log_spectrum`` (the shell energies' squared log ratio) or
    ``surrogate`` (the task's differentiable stand-in for its headline metric, e.g. ``1 - SSIM``, with the label
    as the truth; :func:`sfp.metrics.surrogates.surrogate_for_task`); weight:
    lambda, 0 turns planning off (the baseline); warmup_steps: lambda ramps linearly to ``weight`` over these
    optimizer steps; refresh_every: 0 plans every step, R > 0 caches the labels and re-plans every R epochs;
    beta: None labels from the best future (the argmax), a number >= 0 from every future the search scored,
    weighted by ``softmax(beta * advantage over the forecast)`` (:mod:`sfp.planning.weighted_labels`; 0: their mean).
    """

    kind: str = "future"
    loss: str = "mse"
    weight: float = 1.0
    warmup_steps: int = 0
    refresh_every: int = 0
    beta: float | None = None

    def __post_init__(self) -> None:
        require_choice("pseudo_labels.kind", self.kind, PSEUDO_LABEL_KINDS)
        require_choice("pseudo_labels.loss", self.loss, PSEUDO_LOSSES)
        require_finite("pseudo_labels.weight", self.weight, minimum=0.0)
        _count("pseudo_labels.warmup_steps", self.warmup_steps, minimum=0)
        _count("pseudo_labels.refresh_every", self.refresh_every, minimum=0)
        if self.beta is not None:
            require_finite("pseudo_labels.beta", self.beta, minimum=0.0)


def check_labels_for(labels: PseudoLabels, planner: PlannerOptions) -> None:
    """Labels that the search can make: advantage-weighted ones (``beta``) need every whole future it scored."""
    require(labels.beta is None or planner.kind != "beam",
            "pseudo_labels.beta weighs whole futures the search scored; the beam search keeps partial ones: choose "
            "planner.kind mosaic, best_of_k or perturbation")


@dataclass(frozen=True)
class WorldModelArchitecture:
    """The world model's shape (see :class:`sfp.planning.world_model.WorldModel`).

    in_frames, out_frames, channels: context frames, future frames and channels per frame; width: channels of
    every network; encoder_blocks, decoder_blocks: residual blocks of the encoders and the decoder; downsample:
    the latent grid is this many times smaller than the frames; code_dim, codebook_size, decay,
    dead_code_threshold: the vector quantizer's; max_frames: frames decoded per decoder call (bounds memory).
    """

    in_frames: int
    out_frames: int
    channels: int = 1
    width: int = 64
    encoder_blocks: int = 1
    decoder_blocks: int = 2
    downsample: int = 4
    code_dim: int = 32
    codebook_size: int = 256
    decay: float = 0.9
    dead_code_threshold: float = 1.0
    max_frames: int = 512

    def __post_init__(self) -> None:  # the quantizer's own settings are checked by VectorQuantizer
        for name in ("in_frames", "out_frames", "channels", "width", "downsample", "max_frames"):
            _count(f"architecture.{name}", getattr(self, name))
        for name in ("encoder_blocks", "decoder_blocks"):
            _count(f"architecture.{name}", getattr(self, name), minimum=0)
            require(getattr(self, name) <= MAX_REPEATS,
                    f"architecture.{name} must be at most {MAX_REPEATS}, got {getattr(self, name)}")
