"""SFP stage 2: self-training a forecaster toward planned futures (and, with planning off, its honest baseline).

Each training step the agent forecasts (the action); a planner searches the frozen world model for the imagined
future that scores best against the truth on the reward; that future becomes a pseudo-label only for the samples
where it beats the agent's own forecast. The loss is

    MSE(forecast, truth) + lambda * distance(forecast, pseudo-label)   (accepted samples only)

on values divided by the training split's standard deviation, with lambda ramped linearly over
``lambda_warmup_steps``; the distance is MSE or, with ``pseudo_loss="log_spectrum"``,
:func:`log_spectrum_distance`.

Three kinds of pseudo-label (``pseudo_label``):

- ``future``: the planned future itself;
- ``raise``: the agent's forecast raised where the plan is higher than the world model's decode of the action
  (its reconstruction, so the decoder's own blur does not count), at the pixels where the raise improves the
  reward's local score against the truth (a miss turned into a hit), the forecast elsewhere;
- ``spectrum``: the agent's forecast with each frame's shell energies set to the plan's (phases kept), at the
  shells where the plan's energy is closer to the truth's: the shell is a spectral reward's local unit, as the
  pixel is CSI's.

Why ``raise``: MSE to the truth already removes false alarms; its blind spot is that regression to the mean
flattens intense cores, and the planner's raises where the truth has events are what it cannot learn alone.
Pulling toward the planned future instead re-learns the conditional mean of the plans and scores like the
baseline. On the storms demo's agent and world model, 100 fine-tuning steps with lambda 2: CSI-M 0.217 and
MSE +2.6% for ``raise``, 0.217 and +4.5% raising at every pixel, against 0.195 for plain MSE and 0.190 for
``future`` labels (lambda 3).

Why ``spectrum``: the same idea for spectra. The MSE-trained forecast has too little energy at middle scales;
a label that differs from it only in shell amplitudes is one the agent can learn, where another sample's phases
average away (Navier-Stokes TKE error, 100 steps on the same agent and world model: -2.3% with ``future``
labels, -10% with ``spectrum``, both at MSE < +5%).

Why ``pseudo_loss="log_spectrum"``: the TKE error weighs every shell's log energy alike, while pixel MSE to a
label is ruled by the few energetic large scales, so the agent barely moves the small ones. Pulling the
forecast's shell energies toward the label's in log (400 steps, Navier-Stokes): TKE error -27.6% at MSE +3.2%
(lambda 0.4), against -16.8% at +4.5% with MSE to the same labels (lambda 3).

``pseudo_weight=0`` turns planning off and leaves plain MSE fine-tuning of the same agent with the same optimizer
and steps: the baseline SFP is compared against.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from sfp.errors import UserError
from sfp.forecasting.forecaster import Forecaster, EpochMetrics
from sfp.forecasting.losses import valid_mask
from sfp.metrics.spectrum import LOG_EPSILON, rescale_shells, scalar_spectrum
from sfp.planning.planner import BeamSearchPlanner, BestOfKPlanner, MosaicPlanner
from sfp.planning.rewards import get_reward, reward_for_task
from sfp.planning.world_model_module import WorldModelModule
from sfp.task import TaskSpec
from sfp.utils import import_object

PLANNERS = {"beam": BeamSearchPlanner, "best_of_k": BestOfKPlanner, "mosaic": MosaicPlanner}
PSEUDO_LABELS = ("future", "raise", "spectrum")
PSEUDO_LOSSES = ("mse", "log_spectrum")


def log_spectrum_distance(pred: Tensor, label: Tensor) -> Tensor:
    """Mean squared ``log10`` ratio of the shell energies of ``pred`` and ``label`` ``(..., N, N)``, per frame.

    Shells 1..N//3 (the de-aliased band the TKE error reads), each weighing alike as in that metric; MSE to a label
    is instead dominated by the few energetic large scales. Returns ``pred.shape[:-2]``.
    """
    last = pred.shape[-1] // 3
    log_pred, log_label = (torch.log10(scalar_spectrum(field)[..., 1:last + 1] + LOG_EPSILON)
                           for field in (pred, label))
    return (log_pred - log_label).pow(2).mean(-1)


def spectrum_label(action: Tensor, plan: Tensor, truth: Tensor) -> Tensor:
    """The action with the plan's shell energies at the shells where they are closer to the truth's (in log).

    ``(B, T, C, N, N)`` fields, frame by frame: each such shell of the action is rescaled to the plan's energy,
    its phases kept; the mean, and the shells where the plan is no closer, stay the action's.
    """
    action_energy, plan_energy, true_energy = (scalar_spectrum(field) for field in (action, plan, truth))

    def log_distance(energy: Tensor) -> Tensor:
        return (torch.log10(energy + LOG_EPSILON) - torch.log10(true_energy + LOG_EPSILON)).abs()

    # shells holding no more than round-off of the frame's energy have nothing to rescale
    empty = action_energy.sum(-1, keepdim=True) * torch.finfo(action_energy.dtype).eps
    closer = (log_distance(plan_energy) < log_distance(action_energy)) & (action_energy > empty)
    closer[..., 0] = False
    return rescale_shells(action, torch.where(closer, plan_energy / action_energy.clamp_min(LOG_EPSILON), 1.0))


AGENT_SETTINGS = "agent_hyper_parameters"
"""The checkpoint key under which an SFP checkpoint keeps its agent's constructor arguments."""


def _agent_type(agent_class: str) -> type[Forecaster]:
    agent_type = import_object(agent_class)
    if not (isinstance(agent_type, type) and issubclass(agent_type, Forecaster)):
        raise UserError(f"agent_class {agent_class!r} is not a Forecaster")
    return agent_type


def _fingerprint(context: Tensor) -> str:
    """A key for one sample's context, so cached pseudo-labels find their sample again."""
    return hashlib.blake2b(context.detach().cpu().numpy().tobytes(), digest_size=16).hexdigest()


class SFPModule(L.LightningModule):
    """Self-training of a trained agent with pseudo-labels planned in a frozen world model.

    agent_class/agent_checkpoint: the supervised agent (stage 0); world_model_checkpoint: the trained
    ``WorldModelModule`` (stage 1). planner: ``beam`` (beam_width x expansions per frame), ``best_of_k``
    (``samples`` full futures) or ``mosaic`` (best-of-``samples`` plus their patch-by-patch best mosaic);
    candidates: nearest codes per latent position; temperature: sampling temperature.
    reward: a reward spec for :func:`sfp.planning.rewards.get_reward` (default: the dataset's headline).
    pseudo_label: ``future``, ``raise`` or ``spectrum`` (see the module's docstring); acceptance is judged on
    the label itself. pseudo_loss: ``mse`` to the label, or ``log_spectrum`` (:func:`log_spectrum_distance`, the
    shell energies' squared log ratio: for spectral rewards, whose every shell counts alike).
    pseudo_weight: lambda (0 = baseline: no planning); refresh_every: >0 caches pseudo-labels and re-plans every
    that many epochs. lr: AdamW learning rate of the fine-tuning, constant.
    """

    def __init__(self, agent_checkpoint: str, world_model_checkpoint: str | None = None,
                 agent_class: str = "sfp.forecasting.GridForecaster", planner: str = "beam", beam_width: int = 4,
                 expansions: int = 4, samples: int = 16, candidates: int = 8, temperature: float = 1.0,
                 reward: str | dict | None = None, pseudo_label: str = "future", pseudo_loss: str = "mse",
                 pseudo_weight: float = 1.0,
                 lambda_warmup_steps: int = 0, refresh_every: int = 0, lr: float = 3e-4, weight_decay: float = 0.0,
                 seed: int = 0):
        super().__init__()
        if planner not in PLANNERS:
            raise UserError(f"planner must be one of {', '.join(PLANNERS)}, got {planner!r}")
        if pseudo_label not in PSEUDO_LABELS:
            raise UserError(f"pseudo_label must be one of {', '.join(PSEUDO_LABELS)}, got {pseudo_label!r}")
        if pseudo_loss not in PSEUDO_LOSSES:
            raise UserError(f"pseudo_loss must be one of {', '.join(PSEUDO_LOSSES)}, got {pseudo_loss!r}")
        if pseudo_weight < 0 or lambda_warmup_steps < 0 or refresh_every < 0:
            raise UserError("pseudo_weight, lambda_warmup_steps and refresh_every must be >= 0")
        if pseudo_weight > 0 and world_model_checkpoint is None:
            raise UserError("pseudo_weight > 0 plans in a world model: give world_model_checkpoint")
        self.save_hyperparameters()
        self.agent: Forecaster = _agent_type(agent_class).load_from_checkpoint(agent_checkpoint, map_location="cpu",
                                                                               weights_only=True)
        world_model = None
        if pseudo_weight > 0:
            module = WorldModelModule.load_from_checkpoint(world_model_checkpoint, map_location="cpu",
                                                           weights_only=True)
            world_model = module.world_model.eval().requires_grad_(False)
        # a plain attribute, not a submodule: frozen, never trained, and not saved (it has its own checkpoint)
        object.__setattr__(self, "world_model", world_model)
        self.planner: BeamSearchPlanner | BestOfKPlanner | MosaicPlanner | None = None
        self.reward_fn = None
        self._cache: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
        self._generator = torch.Generator().manual_seed(seed)  # re-seeded per process in setup
        self.scale = torch.ones(())  # the training split's std, from the data module in setup (not saved)

    @staticmethod
    def load_agent(checkpoint_path: str | Path, agent_checkpoint: str | Path | None = None) -> Forecaster:
        """The trained forecaster of an SFP (or baseline) checkpoint, in eval mode, from that file alone.

        The agent is rebuilt from the constructor arguments the checkpoint keeps, so neither the original agent
        checkpoint nor the world model is read (a run directory may have moved). ``agent_checkpoint`` supplies
        the arguments for checkpoints written before they were kept.
        """
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        agent_type = _agent_type(checkpoint["hyper_parameters"]["agent_class"])
        settings = checkpoint.get(AGENT_SETTINGS)
        if settings is not None:
            agent = agent_type(**settings)
        elif agent_checkpoint is not None:
            agent = agent_type.load_from_checkpoint(agent_checkpoint, map_location="cpu", weights_only=True)
        else:
            raise UserError(f"{checkpoint_path} does not keep its agent's settings (an older sfp wrote it): "
                            "pass agent_checkpoint, the agent it started from")
        prefix = "agent."
        agent.load_state_dict({key[len(prefix):]: value for key, value in checkpoint["state_dict"].items()
                               if key.startswith(prefix)})
        return agent.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[AGENT_SETTINGS] = dict(self.agent.hparams)  # so load_agent needs no other file

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        task: TaskSpec = getattr(datamodule, "task", None) or TaskSpec("generic")
        self.reward_fn = get_reward(self.hparams.reward) if self.hparams.reward is not None else reward_for_task(task)
        std = datamodule.normalization_stats()["std"] if hasattr(datamodule, "normalization_stats") else None
        if std is not None:
            self.scale = torch.as_tensor(std, dtype=torch.float32)
        target_len = getattr(datamodule, "target", None)
        self._metrics = {s: EpochMetrics(task, target_len) for s in ("val", "test")}
        if self.world_model is not None:
            self.world_model.to(self.device)
            hp = self.hparams
            if hp.planner == "beam":
                self.planner = BeamSearchPlanner(self.world_model, self.reward_fn, beam_width=hp.beam_width,
                                                 expansions=hp.expansions, k=hp.candidates, temperature=hp.temperature)
            else:
                self.planner = PLANNERS[hp.planner](self.world_model, self.reward_fn, k_samples=hp.samples,
                                                    k=hp.candidates, temperature=hp.temperature)
        self._generator = torch.Generator().manual_seed(self.hparams.seed + self.global_rank)

    def pseudo_lambda(self, step: int) -> float:
        """lambda at optimizer step `step`: linear from ``pseudo_weight / warmup`` to ``pseudo_weight`` over
        ``lambda_warmup_steps``, then constant."""
        warmup = self.hparams.lambda_warmup_steps
        ramp = 1.0 if warmup == 0 else min(1.0, (step + 1) / warmup)
        return self.hparams.pseudo_weight * ramp

    # ------------------------------------------------------------------ planning
    @torch.no_grad()
    def _plan(self, context: Tensor, action: Tensor, truth: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Pseudo-labels, their acceptance mask (B,) and the reward gain (B,) over the action."""
        result = self.planner.plan(context, action, truth, generator=self._generator)
        label, reward = result.best, result.reward
        if self.hparams.pseudo_label == "raise":
            reconstruction = result.reconstruction
            if reconstruction is None:  # a search that did not decode the action's nearest codes itself
                reconstruction = self.world_model.reconstruct(action, context)
            raised = action + (result.best - reconstruction).clamp_min(0)
            helps = self.reward_fn.local(raised, truth) > self.reward_fn.local(action, truth)  # (B, T, H, W)
            label = torch.where(helps.unsqueeze(2), raised, action)
            reward = self.reward_fn(label, truth)
        elif self.hparams.pseudo_label == "spectrum":
            label = spectrum_label(action, result.best, truth)
            reward = self.reward_fn(label, truth)
        return label, reward > result.action_reward, reward - result.action_reward

    def _pseudo_labels(self, context: Tensor, action: Tensor, truth: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        refresh = self.hparams.refresh_every
        if refresh == 0:
            return self._plan(context, action, truth)
        if self.current_epoch % refresh == 0 and getattr(self, "_cache_epoch", None) != self.current_epoch:
            self._cache, self._cache_epoch = {}, self.current_epoch
        keys = [_fingerprint(c) for c in context]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            best, accepted, gain = self._plan(context[missing], action[missing], truth[missing])
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
        """The distance of the forecast to the pseudo-labels of the accepted samples (``pseudo_loss``)."""
        if self.hparams.pseudo_loss == "mse":
            keep = accepted.reshape(-1, *([1] * (forecast.ndim - 1))).expand_as(forecast) & valid
            return self._scaled_mse(forecast, pseudo, keep)
        per_frame = log_spectrum_distance(forecast, pseudo).flatten(1)  # (B, frames)
        return (per_frame * accepted[:, None]).sum() / (accepted.sum() * per_frame.shape[1]).clamp_min(1)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        context_x, context_y, target_x, target_y = batch[:4]
        forecast = self.agent.forecast(context_x, context_y, target_x)
        valid = valid_mask(target_y, self.agent.null_value)
        truth = torch.where(valid, target_y, torch.zeros_like(target_y))
        loss = self._scaled_mse(forecast, truth, valid)
        weight = self.pseudo_lambda(self.global_step)
        if weight > 0:
            pseudo, accepted, gain = self._pseudo_labels(context_y, forecast.detach(), target_y)
            loss = loss + weight * self._pseudo_loss(forecast, pseudo, accepted, valid)
            self.log_dict({"train/acceptance": accepted.float().mean(), "train/reward_gain": gain.mean(),
                           "train/lambda": torch.tensor(weight)}, on_step=True, on_epoch=True)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, ...], stage: str) -> None:
        context_x, context_y, target_x, target_y = batch[:4]
        forecast = self.agent.forecast(context_x, context_y, target_x)
        valid = valid_mask(target_y, self.agent.null_value)
        truth = torch.where(valid, target_y, torch.full_like(target_y, float("nan")))
        loss = self._scaled_mse(forecast, torch.nan_to_num(truth), valid)
        self._metrics[stage].update(loss, forecast, truth)

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        return self.agent.forecast(batch[0], batch[1], batch[2])

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
        return torch.optim.AdamW(self.agent.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
