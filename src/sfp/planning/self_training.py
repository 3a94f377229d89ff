"""SFP stage 2: self-training a forecaster toward planned futures (and, with planning off, its honest baseline).

Each training step the agent forecasts (the action); a planner searches the frozen world model for the imagined
future that scores best against the truth on the reward; a pseudo-label made from it
(:mod:`sfp.planning.pseudo_labels`) is kept only for the samples where it beats the agent's own forecast. The
loss is

    MSE(forecast, truth) + lambda * distance(forecast, pseudo-label)   (accepted samples only)

on values divided by the training split's standard deviation, with lambda ramped linearly over
``pseudo_labels.warmup_steps``; the distance is MSE, the log-spectral distance, or the task's differentiable
stand-in for its headline metric taken between forecast and label (``pseudo_labels.loss``).

``pseudo_labels.weight=0`` turns planning off and leaves plain MSE fine-tuning of the same agent with the same
optimizer and steps: the baseline SFP is compared against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.checkpoint_layout import AGENT_CLASS_KEY, AGENT_SETTINGS_KEY, BOUNDS_KEY
from sfp.forecasting.checkpoints import load_forecaster
from sfp.forecasting.forecaster import Forecaster
from sfp.forecasting.losses import valid_mask
from sfp.forecasting.optim import adamw
from sfp.metrics.epoch import EpochMetrics
from sfp.metrics.heatwave_scores import Window, bind_window
from sfp.metrics.peer_losses import PEER_LOSSES, bind_step, peer_loss
from sfp.metrics.spectrum import log_spectrum_distance
from sfp.metrics.surrogates import surrogate_for_task
from sfp.options import coerce, require_finite, save_plain_hyperparameters
from sfp.planning.options import PlannerOptions, PseudoLabels, check_labels_for
from sfp.planning.planner import Planner, build_planner, planner_class
from sfp.planning.pseudo_labels import check_label_reward, make_label
from sfp.planning.reward_types import Gauged, gauge_mask
from sfp.planning.rewards import get_reward, reward_for_task
from sfp.planning.weighted_labels import weighted_label
from sfp.planning.world_model_module import load_world_model
from sfp.task import Bounds, TaskSpec, within


def _fingerprint(context: Tensor) -> str:
    """A key for one sample's context, so cached pseudo-labels find their sample again."""
    return hashlib.blake2b(context.detach().cpu().numpy().tobytes(), digest_size=16).hexdigest()


class SFPModule(L.LightningModule):
    """Self-training of a trained agent with pseudo-labels planned in a frozen world model.

    agent_checkpoint: the supervised agent (any Forecaster checkpoint); world_model_checkpoint: the trained
    ``WorldModelModule`` (needed when ``pseudo_labels.weight > 0``). planner: the search
    (:class:`~sfp.planning.options.PlannerOptions`); pseudo_labels: the labels and the pull
    (:class:`~sfp.planning.options.PseudoLabels`); reward: a reward spec for
    :func:`sfp.planning.rewards.get_reward` (default: the dataset's headline metric). lr, weight_decay: AdamW of
    the fine-tuning, constant learning rate. seed: of the planner's draws (per process: seed + rank).
    surrogate_weight: adds this times the differentiable loss ``peer`` to the MSE: the stand-in for the headline
    metric (``surrogate``: :func:`sfp.metrics.surrogates.surrogate_for_task`), ``balanced_mse`` or ``facl``
    (:mod:`sfp.metrics.peer_losses`); with no pseudo-labels, that is a peer baseline SFP is compared with.
    surrogate_loss: the surrogate peer's loss in place of the task's stand-in, ``{name, ...options}``
    (:func:`~sfp.metrics.surrogates.get_surrogate`: soft_csi, soft_sal).
    gauges: where > 0, the truth is seen only at this fraction of the pixels (a fixed set, the same for every
    model: :func:`~sfp.planning.reward_types.gauge_mask`): the MSE, the peer loss and the planner's reward see the
    gauges alone (incomplete truth); validation and test still score the full field.
    """

    def __init__(self, agent_checkpoint: str, world_model_checkpoint: str | None = None,
                 planner: PlannerOptions = PlannerOptions(), pseudo_labels: PseudoLabels = PseudoLabels(),
                 reward: str | dict | None = None, lr: float = 3e-4, weight_decay: float = 0.0, seed: int = 0,
                 surrogate_weight: float = 0.0, peer: str = "surrogate", gauges: float = 0.0,
                 surrogate_loss: dict[str, Any] | None = None):
        super().__init__()
        require_finite("surrogate_weight", surrogate_weight, minimum=0.0)
        require_finite("gauges", gauges, minimum=0.0)
        if gauges > 1:
            raise UserError(f"gauges must be a fraction of the pixels in [0, 1], got {gauges}")
        if peer not in PEER_LOSSES:
            raise UserError(f"unknown peer loss {peer!r}; known: {', '.join(PEER_LOSSES)}")
        self.planner_options = coerce(PlannerOptions, planner)
        planner_class(self.planner_options)  # an unknown kind fails here, not when the first batch is planned
        self.labels = coerce(PseudoLabels, pseudo_labels)
        check_labels_for(self.labels, self.planner_options)
        if self.labels.weight > 0 and world_model_checkpoint is None:
            raise UserError("pseudo_labels.weight > 0 plans in a world model: give world_model_checkpoint")
        # kept in checkpoints, not in the logs: Lightning refuses to log a module's and a data module's hparams that
        # share a key with different values, and this ``seed`` (the planner's) is not the data module's (its order)
        save_plain_hyperparameters(self, logger=False, planner=self.planner_options, pseudo_labels=self.labels)
        self.reward_spec, self.lr, self.weight_decay, self.seed = reward, lr, weight_decay, seed
        self.surrogate_weight, self.peer, self.surrogate = surrogate_weight, peer, None
        self.surrogate_loss = surrogate_loss
        self.gauges = gauges
        self.label_distance: Any = None  # the pseudo-label distance of ``loss: surrogate``, set from the task in setup
        self.agent: Forecaster = load_forecaster(agent_checkpoint).train()
        # forecasts are scored and returned inside the bounds; the losses see the agent's raw outputs
        self.bounds: Bounds = self.agent.bounds
        self.agent.bounds = (None, None)
        world_model = load_world_model(world_model_checkpoint) if self.labels.weight > 0 else None
        # a plain attribute, not a submodule: frozen, never trained, and not saved (it has its own checkpoint)
        object.__setattr__(self, "world_model", world_model)
        self.planner: Planner | None = None
        self.reward_fn = None
        self.windows: Callable[[tuple[Tensor, ...]], Window] | None = None  # the data's heatwave_windows, if any
        self._cache: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
        self._generator = torch.Generator().manual_seed(seed)  # re-made per process on the agent's device
        self.scale = torch.ones(())  # the training split's std, from the data module in setup (not saved)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the agent's class and settings, so :func:`~sfp.forecasting.load_forecaster` needs no other file."""
        checkpoint[AGENT_CLASS_KEY] = type(self.agent).__name__
        checkpoint[AGENT_SETTINGS_KEY] = dict(self.agent.hparams)
        checkpoint[BOUNDS_KEY] = list(self.bounds)

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        task: TaskSpec = getattr(datamodule, "task", None) or TaskSpec("generic")
        self.bounds = task.bounds
        self.reward_fn = get_reward(self.reward_spec) if self.reward_spec is not None else reward_for_task(task)
        check_label_reward(self.labels.kind, self.reward_fn)
        if self.surrogate_weight > 0:
            self.surrogate = peer_loss(self.peer, task, self.seed, self.surrogate_loss)
        if self.labels.loss == "surrogate":
            self.label_distance = surrogate_for_task(task)
            if hasattr(self.label_distance, "given"):
                raise UserError(f"pseudo_labels.loss 'surrogate' has no stand-in for the {task.name} task's "
                                f"labels; use 'mse'")
        std = datamodule.normalization_stats()["std"] if hasattr(datamodule, "normalization_stats") else None
        if std is not None:
            self.scale = torch.as_tensor(std, dtype=torch.float32)
        target_len = getattr(datamodule, "target", None)
        self.windows = getattr(datamodule, "heatwave_windows", None)
        self._metrics = {s: EpochMetrics(task, target_len, self.windows) for s in ("val", "test")}
        if self.world_model is not None:
            self.planner = build_planner(self.world_model, self.reward_fn, self.planner_options)
            self.planner.keep_draws = self.labels.beta is not None

    def on_fit_start(self) -> None:
        """The frozen world model and the planner's generator go where Lightning has put the agent (after
        ``setup``), one seed per process."""
        if self.world_model is not None:
            self.world_model.to(self.device)
        self._generator = torch.Generator(self.device).manual_seed(self.seed + self.global_rank)

    def pseudo_lambda(self, step: int) -> float:
        """lambda at optimizer step `step`: linear from ``weight / warmup_steps`` to ``weight`` over
        ``warmup_steps``, then constant."""
        warmup = self.labels.warmup_steps
        ramp = 1.0 if warmup == 0 else min(1.0, (step + 1) / warmup)
        return self.labels.weight * ramp

    # ------------------------------------------------------------------ planning
    @torch.no_grad()
    def _plan(self, context: Tensor, action: Tensor, truth: Tensor,
              window: Window | None) -> tuple[Tensor, Tensor, Tensor]:
        """Pseudo-labels, their acceptance mask (B,) and the reward gain (B,) over the action; ``window``: the
        samples' context and climatology for a heatwave reward."""
        reward_fn = bind_window(self.reward_fn, window)
        if self.gauges > 0:
            reward_fn = Gauged(reward_fn, gauge_mask(*truth.shape[-2:], self.gauges, truth.device))
        self.planner.reward = reward_fn
        result = self.planner.plan(context, action, truth, generator=self._generator)
        if self.labels.beta is not None:  # every scored future, weighted by its advantage over the forecast
            blend = weighted_label(result.draws, result.draw_rewards, result.action_reward, self.labels.beta)
            result = result._replace(best=blend, reward=reward_fn(blend, truth))
        kind = self.labels.kind
        label = make_label(kind, action, result, truth, self.world_model, context, reward_fn)
        reward = result.reward if kind == "future" else reward_fn(label, truth)
        return label, reward > result.action_reward, reward - result.action_reward

    def _pseudo_labels(self, context: Tensor, action: Tensor, truth: Tensor,
                       window: Window | None = None) -> tuple[Tensor, Tensor, Tensor]:
        refresh = self.labels.refresh_every
        if refresh == 0:
            return self._plan(context, action, truth, window)
        if self.current_epoch % refresh == 0 and getattr(self, "_cache_epoch", None) != self.current_epoch:
            self._cache, self._cache_epoch = {}, self.current_epoch
        keys = [_fingerprint(c) for c in context]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            subset = None if window is None else Window(*(part[missing] for part in window))
            best, accepted, gain = self._plan(context[missing], action[missing], truth[missing], subset)
            for j, i in enumerate(missing):
                self._cache[keys[i]] = (best[j], accepted[j], gain[j])
        best, accepted, gain = (torch.stack(parts) for parts in zip(*(self._cache[k] for k in keys)))
        return best, accepted, gain

    # ------------------------------------------------------------------ steps
    def _scaled_mse(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        scale = self.scale.to(pred.device)
        residual = torch.where(valid, (pred - target) / scale, torch.zeros_like(pred))
        return residual.pow(2).sum() / valid.sum().clamp_min(1)

    def _pseudo_loss(self, forecast: Tensor, pseudo: Tensor, accepted: Tensor, valid: Tensor) -> Tensor:
        """The distance of the forecast to the pseudo-labels of the accepted samples (``pseudo_labels.loss``)."""
        if self.labels.loss == "mse":
            keep = accepted.reshape(-1, *([1] * (forecast.ndim - 1))).expand_as(forecast) & valid
            return self._scaled_mse(forecast, pseudo, keep)
        if self.labels.loss == "surrogate":
            if not accepted.any():
                return forecast.sum() * 0.0
            return self.label_distance(forecast[accepted], pseudo[accepted], valid[accepted])
        per_frame = log_spectrum_distance(forecast, pseudo).flatten(1)  # (B, frames)
        return (per_frame * accepted[:, None]).sum() / (accepted.sum() * per_frame.shape[1]).clamp_min(1)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        context_x, context_y, target_x, target_y = batch[:4]
        forecast = self.agent.forecast(context_x, context_y, target_x)
        valid = valid_mask(target_y, self.agent.null_value)
        if self.gauges > 0:  # the truth is seen at the gauges alone
            valid = valid & gauge_mask(*target_y.shape[-2:], self.gauges, target_y.device)
        truth = torch.where(valid, target_y, torch.zeros_like(target_y))
        loss = self._scaled_mse(forecast, truth, valid)
        window = None if self.windows is None else self.windows(batch)
        if self.surrogate is not None:
            added = bind_step(bind_window(self.surrogate, window), self.global_step, self.trainer.max_steps)
            loss = loss + self.surrogate_weight * added(forecast, truth, valid)
        weight = self.pseudo_lambda(self.global_step)
        if weight > 0:
            pseudo, accepted, gain = self._pseudo_labels(context_y, forecast.detach(), target_y, window)
            loss = loss + weight * self._pseudo_loss(forecast, pseudo, accepted, valid)
            self.log_dict({"train/acceptance": accepted.float().mean(), "train/reward_gain": gain.mean(),
                           "train/lambda": torch.tensor(weight)}, on_step=True, on_epoch=True)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, ...], stage: str) -> None:
        context_x, context_y, target_x, target_y = batch[:4]
        forecast = within(self.agent.forecast(context_x, context_y, target_x), self.bounds)
        valid = valid_mask(target_y, self.agent.null_value)
        truth = torch.where(valid, target_y, torch.full_like(target_y, float("nan")))
        loss = self._scaled_mse(forecast, torch.nan_to_num(truth), valid)
        self._metrics[stage].update(loss, forecast, truth, batch)

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        return within(self.agent.forecast(batch[0], batch[1], batch[2]), self.bounds)

    def _log_epoch(self, stage: str) -> dict[str, Tensor]:
        values = self._metrics[stage].compute_and_reset()
        if values:
            self.log_dict({f"{stage}/{name}": value for name, value in values.items()})
        return values

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self.test_results = {name: float(value) for name, value in self._log_epoch("test").items()}

    def configure_optimizers(self) -> Any:
        return adamw(self.agent.parameters(), self.lr, self.weight_decay)
