"""World-model ensembles around a forecast, the STEPS reference ensemble, and the verification report."""

import json
from pathlib import Path

import pytest
import torch

from sfp.errors import UserError
from sfp.planning.ensemble import (
    SpreadLaw,
    calibration,
    calibrations,
    centre_members,
    forecast_ensemble,
    imagine_members,
)
from sfp.planning.options import Imagination
from sfp.report.ensemble import EnsembleVerification, plot_verification
from world_model_helpers import random_frames, tiny_world_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "ensemble"


class Constant:
    """A forecaster stand-in: forecasts ``value`` for every target step."""

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value

    def forecast(self, context_x, context_y, target_x):
        return self.value


def test_members_have_k_draws_and_the_forecast_is_the_agents():
    model, context, forecast = tiny_world_model(), random_frames(2, 3), random_frames(2, 2, seed=1)
    batch = (None, context, None)
    result = forecast_ensemble(Constant(forecast), model, batch, Imagination(5, 4, 1.0),
                               torch.Generator().manual_seed(0))
    assert torch.equal(result.forecast, forecast)
    assert result.members.shape == (2, 5, 2, 1, 8, 8)
    assert result.members.std(1).mean() > 0


def test_reconstruction_centred_members_at_temperature_zero_are_the_forecast():
    """At temperature 0 every draw is the nearest code: imagined == reconstruction, so members == forecast."""
    model, context, forecast = tiny_world_model(), random_frames(2, 3), random_frames(2, 2, seed=1)
    members = imagine_members(model, context, forecast, Imagination(3, 4, 0.0), centring="reconstruction")
    assert torch.allclose(members, forecast.unsqueeze(1).expand_as(members), atol=1e-3)
    raw = imagine_members(model, context, forecast, Imagination(3, 4, 0.0), centring="none")
    assert torch.allclose(raw, model.reconstruct(forecast, context).unsqueeze(1).expand_as(raw))


def test_mean_centring_keeps_the_departures_and_the_bounds_cut_members():
    """Hand-made imagined futures: mean centring moves them by (forecast - their mean) and no more."""
    forecast = torch.tensor([1.0, 4.0]).reshape(1, 2, 1, 1, 1)
    imagined = torch.tensor([[0.0, 2.0], [2.0, 10.0], [4.0, 3.0]]).reshape(1, 3, 2, 1, 1, 1)  # means 2 and 5
    members = centre_members(imagined, forecast, "mean")
    torch.testing.assert_close(members.flatten(), torch.tensor([-1.0, 1.0, 1.0, 9.0, 3.0, 2.0]))
    torch.testing.assert_close(members.mean(1), forecast)
    bounded = centre_members(imagined, forecast, "mean", bounds=(0.0, 8.0))
    torch.testing.assert_close(bounded.flatten(), torch.tensor([0.0, 1.0, 1.0, 8.0, 3.0, 2.0]))
    torch.testing.assert_close(centre_members(imagined, forecast, "none"), imagined)
    with pytest.raises(UserError, match="centring"):
        centre_members(imagined, forecast, "median")


def test_a_spread_law_scales_each_leads_departures_around_the_forecast():
    """Same futures; lead 1's departures (-2, 0, 2) doubled, lead 2's (-3, 5, -2) times four."""
    forecast = torch.tensor([1.0, 4.0]).reshape(1, 2, 1, 1, 1)
    imagined = torch.tensor([[0.0, 2.0], [2.0, 10.0], [4.0, 3.0]]).reshape(1, 3, 2, 1, 1, 1)
    members = centre_members(imagined, forecast, "mean", spread=SpreadLaw(first=2.0, growth=1.0))
    torch.testing.assert_close(members.flatten(), torch.tensor([-3.0, -8.0, 1.0, 24.0, 5.0, -4.0]))
    reconstruction = torch.tensor([3.0, 5.0]).reshape(1, 2, 1, 1, 1)
    around_reconstruction = centre_members(imagined, forecast, "reconstruction", reconstruction,
                                           spread=SpreadLaw(first=0.5))
    torch.testing.assert_close(around_reconstruction.flatten(), torch.tensor([-0.5, 2.5, 0.5, 6.5, 1.5, 3.0]))
    with pytest.raises(UserError, match="spread law"):
        centre_members(imagined, forecast, "none", spread=SpreadLaw(first=2.0))


def test_a_wet_threshold_keeps_departures_to_the_forecasts_wet_pixels():
    """Same futures; lead 1's forecast (1) is below the threshold 2, so every member is the forecast there; lead 2's
    departures (-3, 5, -2) stay, doubled by the law."""
    forecast = torch.tensor([1.0, 4.0]).reshape(1, 2, 1, 1, 1)
    imagined = torch.tensor([[0.0, 2.0], [2.0, 10.0], [4.0, 3.0]]).reshape(1, 3, 2, 1, 1, 1)
    members = centre_members(imagined, forecast, "mean", spread=SpreadLaw(first=2.0), wet=2.0)
    torch.testing.assert_close(members.flatten(), torch.tensor([1.0, -2.0, 1.0, 14.0, 1.0, 0.0]))
    torch.testing.assert_close(centre_members(imagined, forecast, "mean", wet=0.5),
                               centre_members(imagined, forecast, "mean"))
    with pytest.raises(UserError, match="wet threshold"):
        centre_members(imagined, forecast, "none", wet=2.0)


def test_a_task_without_its_own_calibration_gets_storms_without_its_wet_threshold():
    """Storms' wet threshold is in VIL units: flame's values (0-1) would never reach it and get no spread."""
    assert calibration("storms") is calibrations()["storms"] and calibration("radar") is calibrations()["radar"]
    assert calibrations()["storms"].wet is not None
    for task in ("flame", "navier_stokes", None):
        assert calibration(task) == calibrations()["storms"]._replace(wet=None)


@pytest.mark.parametrize("task", ["storms", "radar"])
def test_the_shipped_calibration_is_the_one_the_benchmark_chose(task):
    """calibrations.yaml against the benchmark's own record of its choice (results/ensemble/<task>.json)."""
    chosen = json.loads((RESULTS / f"{task}.json").read_text())["calibration"]["chosen"]
    shipped = calibration(task)
    assert (shipped.temperature, shipped.candidates, shipped.centring, shipped.wet) == (
        chosen["temperature"], chosen["candidates"], chosen["centring"], chosen["wet"])
    assert shipped.spread.first == pytest.approx(chosen["spread"]["first"], abs=5e-5)
    assert shipped.spread.growth == pytest.approx(chosen["spread"]["growth"], abs=5e-5)


def test_the_fitted_spread_law_brings_a_power_law_spread_skill_ratio_to_one():
    ratios = [2.0 * t ** -0.5 for t in range(1, 11)]
    law = SpreadLaw.fit(ratios)
    assert law.first == pytest.approx(0.5) and law.growth == pytest.approx(0.5)
    torch.testing.assert_close(law.factors(10) * torch.tensor(ratios, dtype=torch.float64),
                               torch.ones(10, dtype=torch.float64))
    assert SpreadLaw().factors(3).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="positive"):
        SpreadLaw.fit([1.0, 0.0, 2.0])


def test_the_generator_makes_members_reproducible():
    model, context, forecast = tiny_world_model(), random_frames(1, 3), random_frames(1, 2, seed=1)
    draw = [imagine_members(model, context, forecast, Imagination(4, 16, 5.0), torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert torch.equal(*draw)


def test_steps_ensemble_members_and_errors():
    pytest.importorskip("pysteps")
    from sfp.models.steps_ensemble import steps_ensemble

    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    blob = [100 * torch.exp(-((x - 10 - t) ** 2 + (y - 16) ** 2) / 20) for t in range(4)]  # moves right
    context = torch.stack(blob).view(1, 4, 1, 32, 32)
    members = steps_ensemble(context, 2, 3, threshold=1.0, cascade_levels=3)
    assert members.shape == (1, 3, 2, 1, 32, 32)
    assert members.min() >= 0 and (members > 0).any()
    with pytest.raises(UserError, match="one-channel"):
        steps_ensemble(context[:, :2], 2, 3)
    with pytest.raises(UserError, match="cascade_levels >= 3"):
        steps_ensemble(context, 2, 3, cascade_levels=2)


def test_verification_report_and_plot(tmp_path):
    truth = random_frames(4, 2)
    members = truth.unsqueeze(1) + torch.randn(4, 3, 2, 1, 8, 8)
    verification = EnsembleVerification(3, 2, (50.0, 150.0), (3,))
    verification.update(members, truth)
    result = verification.compute()
    assert len(result["spread_skill"]) == 2 and len(result["rank_histogram"]) == 4
    assert result["crps"] < (members.mean(1) - truth).abs().mean().item() + 1e-6  # CRPS <= the mean's MAE
    assert plot_verification(tmp_path / "v.png", {"demo": result}).stat().st_size > 0
