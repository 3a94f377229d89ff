"""The Forecaster: a LightningModule any backbone plugs into by implementing ``forward_model_pass``.

Three value spaces, from the outside in:

- ORIGINAL units: batches, ``forecast``/``predict_step`` outputs and every metric;
- SCALED: after global normalization (identity without it); the training loss lives here so channels with
  different units weigh alike;
- MODEL space: after RevIN (identity without it); missing context values are filled with 0 (the mean) here, and
  this is what ``forward_model_pass`` sees and returns.

A forecast is produced in chunks of ``step_len`` steps (``ar_step`` in autoregressive mode, else ``target_len``):
each chunk is predicted from the last ``T_context`` steps of the context followed by what was produced so far,
so horizons longer than the model's native output are rolled out, and autoregressive training feeds back either
the truth (with the scheduled-sampling probability) or the model's own prediction. Validation, test and predict
never pass target values anywhere: they always roll out on the model's own predictions.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.checkpoint_layout import BOUNDS_KEY, CLASS_KEY, read_bounds
from sfp.forecasting.decomposition import decompose
from sfp.forecasting.inputs import check_batch, extend_time_features
from sfp.forecasting.linear_head import linear_head_for
from sfp.forecasting.losses import l2_penalty, masked_loss, valid_mask
from sfp.forecasting.normalization import GlobalNorm, RevIN, RevINStats
from sfp.forecasting.optim import adamw_warmup_plateau
from sfp.forecasting.options import LinearHeadOptions, Normalization, Objective, Optimization, Rollout
from sfp.forecasting.sampling import k_for_midpoint, mix_with_truth, teacher_forcing_ratio
from sfp.metrics.epoch import EpochMetrics
from sfp.models.common import notify_optimizer_steps
from sfp.options import coerce, save_plain_hyperparameters
from sfp.task import Bounds, TaskSpec, within


def _accepts_keyword(cls: type, name: str) -> bool:
    """Whether ``cls(...)`` takes ``name`` (itself or through ``**kwargs``), so it may be stored in hparams."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class Forecaster(L.LightningModule, ABC):
    """Training, evaluation and forecasting around a backbone; subclasses implement :meth:`forward_model_pass`.

    Concrete subclasses call ``save_plain_hyperparameters(self, ...)`` at the end of their own ``__init__`` so that
    ``load_from_checkpoint(..., weights_only=True)`` and :func:`~sfp.forecasting.load_forecaster` rebuild them.

    Logged at each epoch end, in original units: ``{train,val,test}/loss`` (the masked data loss, without the L2
    term), ``/mse``, ``/mae``, ``/mse_t{i}`` and, for val and test, every metric of the data module's task.
    After ``trainer.test`` the values are also kept, unprefixed, in ``self.test_results``.

    Args:
        d_y_context, d_y_target: number of variables (series) or channels (fields): axis 2 of ``(B, T, *S)``.
            The Forecaster forecasts what it observes, so both must be equal.
        d_x: number of time features in ``*_x``; checked against batches when given.
        context_len, target_len: window lengths; ``target_len`` is the native output length of one-shot
            models and is needed by the linear head in one-shot mode.
        null_value: a value that marks missing data, like NaN (adopted from the data module when None).
        objective, normalization, linear_head, rollout, optimization: the option groups of
            :mod:`sfp.forecasting.options` (each a dataclass, a mapping of its fields, or its defaults).
    """

    #: Set to True in a subclass whose ``forward_model_pass`` takes a ``context_mask`` keyword: a boolean tensor
    #: like ``context_y`` that is False where a missing value was filled with 0.
    accepts_context_mask: bool = False

    def __init__(
        self,
        d_y_context: int,
        d_y_target: int,
        d_x: int | None = None,
        context_len: int | None = None,
        target_len: int | None = None,
        null_value: float | None = None,
        objective: Objective = Objective(),
        normalization: Normalization = Normalization(),
        linear_head: LinearHeadOptions = LinearHeadOptions(),
        rollout: Rollout = Rollout(),
        optimization: Optimization = Optimization(),
    ):
        super().__init__()
        if d_y_context != d_y_target:
            raise UserError(f"d_y_context ({d_y_context}) must equal d_y_target ({d_y_target}): the Forecaster "
                            "forecasts the variables it observes")
        if d_y_context < 1:
            raise UserError(f"d_y_context must be >= 1, got {d_y_context}")
        self.objective = coerce(Objective, objective)
        self.normalization = norm = coerce(Normalization, normalization)
        self.linear_options = head = coerce(LinearHeadOptions, linear_head)
        self.rollout = coerce(Rollout, rollout)
        self.optimization = coerce(Optimization, optimization)

        self.d_y, self.d_x = d_y_context, d_x
        self.context_len, self.target_len = context_len, target_len
        self.step_len: int | None = self.rollout.ar_step if self.rollout.autoregressive else target_len
        self.null_value = null_value
        self.bounds: Bounds = (None, None)  # the data's physical range, from its task (setup) or set by hand
        self.global_norm = GlobalNorm() if norm.global_norm else None
        self.revin = RevIN(d_y_context, affine=norm.revin_affine) if norm.revin else None
        self.decomp_kernel_size = norm.decomp_kernel_size if norm.seasonal_decomp else None
        self.linear_head = linear_head_for(head, self.step_len, context_len, d_y_context)
        self._linear_head_fitted = False
        self.scheduled_sampling_k = self.rollout.scheduled_sampling_k
        if self.scheduled_sampling_k is None and self.optimization.num_training_steps is not None:
            self.scheduled_sampling_k = k_for_midpoint(self.optimization.num_training_steps)
        self.test_results: dict[str, float] = {}
        self._epoch_metrics: dict[str, EpochMetrics] = {}

    def _save_settings(self, **resolved: Any) -> None:
        """Save the calling subclass's constructor arguments, the option groups as plain dicts (call last)."""
        groups = {"objective": self.objective, "normalization": self.normalization,
                  "linear_head": self.linear_options, "rollout": self.rollout, "optimization": self.optimization}
        save_plain_hyperparameters(self, inspect.currentframe().f_back, **groups, **resolved)

    # ------------------------------------------------------------------ the model
    @abstractmethod
    def forward_model_pass(self, context_x: Tensor, context_y: Tensor, target_x: Tensor, target_y: Tensor) -> Tensor:
        """Predict ``(B, T_target, *S)`` in MODEL space.

        ``context_y`` is in model space with missing values filled with 0 (the seasonal part when decomposition is
        on); ``target_x`` has the ``T_target`` steps to predict; ``target_y`` is a zero placeholder of the output's
        shape: the base class never shows a model the values it must predict (teacher forcing acts through the
        contexts of autoregressive steps).
        """

    # ------------------------------------------------------------------ public API
    def set_normalization_stats(self, mean: Tensor, std: Tensor) -> None:
        """Set the global normalization statistics by hand (a data module's ``setup`` does this otherwise)."""
        if self.global_norm is None:
            raise UserError("set_normalization_stats needs normalization.global_norm=True")
        self.global_norm.set_stats(mean, std)

    def teacher_forcing_ratio(self) -> float:
        """The probability of feeding the truth back at the current global step (0 outside AR training)."""
        if not self.rollout.autoregressive or self.scheduled_sampling_k is None:
            return 0.0
        return teacher_forcing_ratio(self.global_step, self.scheduled_sampling_k)

    def forecast(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> Tensor:
        """Forecast ``(B, T, *S)`` in original units for the ``T = target_x.shape[1]`` steps of ``target_x``."""
        self._check_inputs(context_x, context_y, target_x)
        model_y, valid, stats = self._encode_context(context_y)
        prediction = self._rollout(context_x, model_y, valid, target_x)
        return self._to_original(self._from_model(prediction, stats))

    def forward(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> Tensor:
        """Same as :meth:`forecast`."""
        return self.forecast(context_x, context_y, target_x)

    # ------------------------------------------------------------------ value spaces
    def _scale(self, y: Tensor) -> Tensor:
        if self.normalization.log1p:
            if (y < 0).any():
                raise UserError(f"normalization.log1p needs values >= 0, got {float(y.min()):g}")
            return torch.log1p(y)
        return self.global_norm.normalize(y) if self.global_norm is not None else y

    def _unscale(self, y: Tensor) -> Tensor:
        if self.normalization.log1p:
            return torch.expm1(y)
        return self.global_norm.denormalize(y) if self.global_norm is not None else y

    def _to_original(self, scaled: Tensor) -> Tensor:
        """Scaled values as forecasts: in original units, inside the data's physical range."""
        return within(self._unscale(scaled), self.bounds)

    def _to_model(self, scaled: Tensor, stats: RevINStats | None) -> Tensor:
        return self.revin.normalize(scaled, stats) if self.revin is not None else scaled

    def _from_model(self, y: Tensor, stats: RevINStats | None) -> Tensor:
        return self.revin.denormalize(y, stats) if self.revin is not None else y

    def _encode_context(self, context_y: Tensor) -> tuple[Tensor, Tensor, RevINStats | None]:
        """Context in model space with missing values set to 0, its validity mask and the RevIN statistics."""
        valid = valid_mask(context_y, self.null_value)
        scaled = self._scale(torch.where(valid, context_y, torch.zeros_like(context_y)))
        stats = self.revin.statistics(scaled, valid) if self.revin is not None else None
        model_y = self._to_model(scaled, stats)
        return torch.where(valid, model_y, torch.zeros_like(model_y)), valid, stats

    # ------------------------------------------------------------------ forecasting in model space
    def _split_trend(self, context_y: Tensor) -> tuple[Tensor, Tensor]:
        """``(what the backbone sees, what the linear head reads)``: seasonal and trend parts with decomposition,
        else the context twice."""
        if self.decomp_kernel_size is None:
            return context_y, context_y
        return decompose(context_y, self.decomp_kernel_size)

    def _predict_chunk(self, context_x: Tensor, context_y: Tensor, context_valid: Tensor, target_x: Tensor) -> Tensor:
        """One model call: decomposition, the backbone, then the trend forecast added back."""
        context_y, trend = self._split_trend(context_y)
        placeholder = context_y.new_zeros((context_y.shape[0], target_x.shape[1], *context_y.shape[2:]))
        extra = {"context_mask": context_valid} if self.accepts_context_mask else {}
        out = self.forward_model_pass(context_x, context_y, target_x, placeholder, **extra)
        if out.shape != placeholder.shape:
            raise ValueError(f"{type(self).__name__}.forward_model_pass returned shape {tuple(out.shape)}, "
                             f"expected {tuple(placeholder.shape)}")
        if self.linear_head is not None:
            out = out + self.linear_head(trend)
        elif self.decomp_kernel_size is not None:
            out = out + trend[:, -1:]
        return out

    def _rollout(self, context_x: Tensor, model_y: Tensor, valid: Tensor, target_x: Tensor,
                 teacher: Tensor | None = None, teacher_valid: Tensor | None = None, ratio: float = 0.0) -> Tensor:
        """Predict ``target_x.shape[1]`` steps chunk by chunk, each from the last ``T_context`` steps so far.

        After each chunk the steps still needed by a later chunk are fed back: per sample the teacher values with
        probability ``ratio`` (where they exist), else the prediction. The last chunk may overlap the previous
        one (its first steps are then dropped) so that every chunk has the model's native length.
        """
        horizon, window = target_x.shape[1], context_x.shape[1]
        step = self.step_len or horizon
        total = max(horizon, step)
        if horizon < step:
            target_x = extend_time_features(context_x, target_x, step)
        all_x = torch.cat([context_x, target_x], 1)
        series, series_valid = [model_y], [valid]
        outputs: list[Tensor] = []
        done = 0
        while done < total:
            start = min(done, total - step)
            history, history_valid = torch.cat(series, 1), torch.cat(series_valid, 1)
            chunk = self._predict_chunk(all_x[:, start:start + window], history[:, start:start + window],
                                        history_valid[:, start:start + window],
                                        all_x[:, start + window:start + window + step])
            new = chunk[:, done - start:]
            outputs.append(new)
            end = done + new.shape[1]
            if end < total:
                fed = new if teacher is None else mix_with_truth(new, teacher[:, done:end],
                                                                 teacher_valid[:, done:end], ratio)
                series.append(fed)
                series_valid.append(torch.ones_like(fed, dtype=torch.bool))
            done = end
        return torch.cat(outputs, 1)[:, :horizon]

    @torch.no_grad()
    def fit_linear_head(self, batches: Any) -> None:
        """Solve the linear head by least squares on ``batches`` (the training loader), in model space.

        The head reads what it reads when forecasting (the trend, or the context, of the zero-filled context) and
        is fit to the first native chunk of each target; the sums are added across processes before solving.
        """
        gram = moment = None
        step = self.linear_head.horizon
        for batch in batches:
            batch = [values.to(self.device) for values in batch]
            model_y, _, stats = self._encode_context(batch[1])
            target, target_valid = self._scaled_target(batch)
            parts = self.linear_head.normal_equations(self._split_trend(model_y)[1],
                                                      self._to_model(target, stats)[:, :step],
                                                      target_valid[:, :step])
            gram, moment = parts if gram is None else (gram + parts[0], moment + parts[1])
        if gram is None:
            raise UserError("linear_head.fit 'least_squares': the training loader gave no batches")
        if self._trainer is not None:
            gram = self.trainer.strategy.reduce(gram, reduce_op="sum")
            moment = self.trainer.strategy.reduce(moment, reduce_op="sum")
        self.linear_head.solve(gram, moment)
        self._linear_head_fitted = True

    def on_fit_start(self) -> None:
        if self.linear_options.fit != "least_squares" or self._linear_head_fitted:
            return
        datamodule = self.trainer.datamodule
        if datamodule is None:
            raise UserError("linear_head.fit 'least_squares' reads the training windows from a data module: pass "
                            "one to the Trainer")
        rank_zero_info("fitting the linear head by least squares on the training windows")
        self.fit_linear_head(datamodule.train_dataloader())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CLASS_KEY] = type(self).__name__  # load_forecaster builds it from the file alone
        checkpoint[BOUNDS_KEY] = list(self.bounds)
        checkpoint["linear_head_fitted"] = self._linear_head_fitted  # a resumed fit does not solve it again

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._linear_head_fitted = checkpoint.get("linear_head_fitted", False)
        self.bounds = read_bounds(checkpoint)

    # ------------------------------------------------------------------ checks
    def _check_inputs(self, context_x: Tensor, context_y: Tensor, target_x: Tensor,
                      target_y: Tensor | None = None) -> None:
        check_batch(context_x, context_y, target_x, target_y, d_y=self.d_y, d_x=self.d_x,
                    context_len=self.context_len)

    # ------------------------------------------------------------------ Lightning
    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if self.global_norm is not None and not self.global_norm.is_set:
            provide = getattr(datamodule, "normalization_stats", None)
            if provide is None:
                raise UserError("use_global_norm=True needs normalization statistics, but there is no data module "
                                "with normalization_stats(): pass a data module to the Trainer")
            stats = provide()
            self.global_norm.set_stats(stats["mean"], stats["std"])
        self._adopt_null_value(getattr(datamodule, "null_value", None))
        task = getattr(datamodule, "task", None) or TaskSpec("generic")
        self.bounds = task.bounds
        target_len = self.target_len or getattr(datamodule, "target", None)
        light = dataclasses.replace(task, thresholds=(), pools=(), fss_windows=(), ssim=False, tke=False,
                                    heatwaves=False)
        windows = getattr(datamodule, "heatwave_windows", None)
        self._epoch_metrics = {"train": EpochMetrics(light, target_len),
                               "val": EpochMetrics(task, target_len, windows),
                               "test": EpochMetrics(task, target_len, windows)}

    def _adopt_null_value(self, data_null: float | None) -> None:
        if data_null is None:
            return
        if self.null_value is None:
            self.null_value = data_null
            if _accepts_keyword(type(self), "null_value"):
                self.hparams["null_value"] = data_null  # saved with checkpoints for later prediction
        elif self.null_value != data_null:
            raise UserError(f"null_value={self.null_value} differs from the data module's null_value={data_null}")

    def _scaled_target(self, batch: tuple[Tensor, ...] | list[Tensor]) -> tuple[Tensor, Tensor]:
        """The batch's targets, scaled, with 0 where invalid, and their validity: not missing and, when the batch
        carries a fifth tensor, marked valid by it."""
        target_y = batch[3]
        target_valid = valid_mask(target_y, self.null_value)
        if len(batch) > 4:
            target_valid &= batch[4].bool()
        return self._scale(torch.where(target_valid, target_y, torch.zeros_like(target_y))), target_valid

    def _shared_step(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        """Loss on scaled values; metrics accumulated in original units. Only training passes targets on."""
        context_x, context_y, target_x, target_y = batch[:4]
        self._check_inputs(context_x, context_y, target_x, target_y)
        target, target_valid = self._scaled_target(batch)
        model_y, valid, stats = self._encode_context(context_y)
        ratio = self.teacher_forcing_ratio() if stage == "train" else 0.0
        teacher = self._to_model(target, stats) if ratio > 0 else None
        prediction = self._from_model(
            self._rollout(context_x, model_y, valid, target_x, teacher, target_valid, ratio), stats)
        loss = masked_loss(prediction, target, target_valid, self.objective.loss, self.objective.huber_delta)
        if stage in self._epoch_metrics:
            truth = torch.where(target_valid, target_y, torch.full_like(target_y, float("nan")))
            self._epoch_metrics[stage].update(loss.detach(), self._to_original(prediction.detach()), truth, batch)
        return loss

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "train")
        if self.objective.l2_weight > 0:
            loss = loss + self.objective.l2_weight * l2_penalty(self.parameters())
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Forecasts in original units for the ``target_x`` of the batch (targets, if present, are ignored)."""
        return self.forecast(batch[0], batch[1], batch[2])

    def _log_epoch(self, stage: str) -> dict[str, Tensor]:
        metrics = self._epoch_metrics.get(stage)
        values = metrics.compute_and_reset() if metrics is not None else {}
        if values:
            self.log_dict({f"{stage}/{name}": value for name, value in values.items()}, sync_dist=False)
        return values

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        values = self._log_epoch("test")
        self.test_results = {name: float(value) for name, value in values.items()}

    def configure_optimizers(self) -> Any:
        """AdamW with warm-up and plateau schedules; submodules that count optimizer steps are told of each
        (:func:`~sfp.models.common.notify_optimizer_steps`)."""
        opt = self.optimization
        optimizers, schedulers = adamw_warmup_plateau(self.parameters(), opt.initial_lr, opt.warmup_steps,
                                                      opt.decay_factor, opt.plateau_patience, monitor="val/loss")
        notify_optimizer_steps(self, optimizers[0])
        return optimizers, schedulers
