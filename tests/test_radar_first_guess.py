"""The hybrid radar agent's inputs: a first guess made on the whole composite inside each window, read by the data
module as the context's last frames, corrected by the ``first_guess`` backbone, and kept out of the references."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import sfp.models.nowcasts as nowcasts_module
from sfp.data.radar import dataset, first_guess
from sfp.data.radar.datamodule import RadarDataModule
from sfp.data.radar.tiles import TileRule
from sfp.errors import UserError
from sfp.models import build
from sfp.registry import Registry
from sfp.report.radar import reference_forecasters

OBSERVED, LEAD, SIZE = 3, 3, 4


def shift_right(context: torch.Tensor, out: int) -> torch.Tensor:
    """A nowcast by hand: the last frame moved one pixel to the right per lead (wrapping round the domain)."""
    return torch.stack([context[:, -1].roll(lead + 1, dims=-1) for lead in range(out)], dim=1)


@pytest.fixture
def composite(monkeypatch):
    """One event's frames ``(10, 4, 8)`` (two tiles side by side), read by ``read_event``, and the nowcast above
    registered as ``shift``."""
    frames = np.random.default_rng(0).gamma(0.5, 2.0, size=(10, SIZE, 2 * SIZE)).astype(np.float32)
    monkeypatch.setattr(first_guess, "read_event", lambda root, event, spacing, step: frames)
    monkeypatch.setattr(nowcasts_module, "NOWCASTS", Registry.of("nowcast", {"shift": shift_right}))
    return frames


def windows_of(frames: np.ndarray, places: list[tuple[int, int, int]]) -> dict:
    """A prepared file's arrays (no first guess) of one event's windows at ``places``."""
    data = np.stack([frames[t:t + OBSERVED + LEAD, y:y + SIZE, x:x + SIZE] for t, y, x in places])[:, :, None]
    return {"data": data, "mask": np.isfinite(data), "event": np.zeros(len(places), np.int64),
            "events": np.array(["fmi/a"]), "position": np.array(places, np.int64), "spacing_km": np.float64(2.0),
            "step_minutes": np.int64(10), "context": np.int64(OBSERVED), "key": np.array("k")}


def test_the_guess_of_the_whole_domain_sits_between_the_context_and_the_truth(composite):
    places = [(0, 0, 0), (2, 0, SIZE)]
    arrays = windows_of(composite, places)
    guessed = first_guess.add_first_guess(arrays, "root", [SimpleNamespace(name="fmi/a")], "shift")
    assert guessed["data"].shape == (2, OBSERVED + 2 * LEAD, 1, SIZE, SIZE) and str(guessed["first_guess"]) == "shift"
    for window, (start, row, column) in enumerate(places):
        last = composite[start + OBSERVED - 1]
        for lead in range(LEAD):  # the whole frame shifted, then cut: the left column comes from beyond the tile
            expected = np.roll(last, lead + 1, axis=-1)[row:row + SIZE, column:column + SIZE]
            np.testing.assert_array_equal(guessed["data"][window, OBSERVED + lead, 0], expected)
    np.testing.assert_array_equal(guessed["data"][:, :OBSERVED], arrays["data"][:, :OBSERVED])
    np.testing.assert_array_equal(guessed["data"][:, OBSERVED + LEAD:], arrays["data"][:, OBSERVED:])
    assert first_guess.layout({**guessed, "first_guess": "shift"}) == (OBSERVED, LEAD)
    assert first_guess.layout({**arrays, "first_guess": ""}) == (OBSERVED, 0)
    assert first_guess.forecaster_window({**guessed, "first_guess": "shift"}) == (OBSERVED + LEAD, LEAD)
    assert first_guess.forecaster_window({**arrays, "first_guess": ""}) == (OBSERVED, LEAD)


def test_a_first_guess_changes_the_files_key_and_only_then():
    rule = TileRule()
    assert dataset.settings_key(rule, 2.0, 10) == dataset.settings_key(rule, 2.0, 10, "")
    assert dataset.settings_key(rule, 2.0, 10, "sprog") != dataset.settings_key(rule, 2.0, 10)


def test_the_data_module_reads_the_guess_as_the_contexts_last_frames(composite, tmp_path):
    events = [SimpleNamespace(name=name) for name in ("fmi/a", "mch/b", "knmi/c")]
    arrays = windows_of(composite, [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, SIZE)])
    arrays["event"], arrays["events"] = np.array([0, 0, 1, 2]), np.array([e.name for e in events])
    path = dataset.save(tmp_path / "guess.npz", first_guess.add_first_guess(arrays, "root", events, "shift"))
    module = RadarDataModule(str(path), windows={"context": OBSERVED + LEAD, "target": LEAD}, augment=False,
                             val_events=["mch/b"], test_events=["knmi/c"])
    module.setup()
    _, context, _, target = module.datasets["test"][0]
    start, column = 3, SIZE
    last = composite[start + OBSERVED - 1]
    guess = np.stack([np.roll(last, lead + 1, axis=-1)[:, column:column + SIZE] for lead in range(LEAD)])
    torch.testing.assert_close(context[OBSERVED:, 0], torch.from_numpy(guess))
    torch.testing.assert_close(target[:, 0], torch.from_numpy(composite[start + OBSERVED:start + OBSERVED + LEAD,
                                                                        :, column:column + SIZE]))
    wrong = RadarDataModule(str(path), windows={"context": OBSERVED, "target": LEAD})
    with pytest.raises(UserError, match=r"first guess \(shift\).*windows.context = 6"):
        wrong.setup()


def test_the_references_read_the_observed_frames_only():
    context = torch.arange(6.0).reshape(1, 6, 1, 1, 1).expand(1, 6, 1, 8, 8)
    batch = (torch.zeros(1, 6, 1), context, torch.zeros(1, 2, 1), torch.zeros(1, 2, 1, 8, 8))
    persistence = reference_forecasters(observed=3)["persistence"](batch)
    assert torch.all(persistence == 2.0)  # the last observed frame, not the guess's last
    assert torch.all(reference_forecasters()["persistence"](batch) == 5.0)


def test_the_hybrid_starts_as_its_first_guess_and_learns_a_correction():
    model = build("first_guess", in_frames=5, out_frames=2, channels=1, backbone="unet",
                  backbone_kwargs={"width": 4, "depth": 1}, seed=0)
    frames = torch.randn(3, 5, 1, 8, 8)
    torch.testing.assert_close(model(frames), frames[:, -2:])
    model(frames).square().mean().backward()
    assert model.gate.grad is not None and float(model.gate.grad.abs()) > 0
    with pytest.raises(UserError, match="in_frames must exceed out_frames"):
        build("first_guess", in_frames=2, out_frames=2, channels=1)


def test_a_hybrid_nowcasts_whole_domains_from_the_context_and_its_guess(composite):
    seen = []

    def forecaster(context: torch.Tensor, out: int) -> torch.Tensor:
        seen.append(context)
        return context[:, -out:]

    context = torch.from_numpy(composite[None, :OBSERVED, None])
    forecast = first_guess.guessed("shift", LEAD, forecaster)(context, LEAD)
    torch.testing.assert_close(seen[0], torch.cat([context, shift_right(context, LEAD)], dim=1))
    torch.testing.assert_close(forecast, shift_right(context, LEAD))


def test_the_radar_report_scores_a_hybrid_file_with_the_references_on_the_observed_frames(monkeypatch, tmp_path):
    """Scoring a file with a first guess: the data module reads its windows as the hybrid does, and persistence (like
    every reference) repeats the last observed frame, not the guess's last."""
    from sfp.report.radar import run

    frames = np.random.default_rng(1).gamma(0.5, 2.0, size=(10, 32, 32)).astype(np.float32)
    monkeypatch.setattr(first_guess, "read_event", lambda root, event, spacing, step: frames)
    monkeypatch.setattr(nowcasts_module, "NOWCASTS", Registry.of("nowcast", {"shift": shift_right}))
    names = ("fmi/20170509", "mch/20160711", "mch/20150515")
    size = 32
    data = np.stack([frames[t:t + OBSERVED + LEAD] for t in (0, 1, 2)])[:, :, None]
    arrays = {"data": data, "mask": np.isfinite(data), "event": np.arange(3), "events": np.array(names),
              "position": np.array([(t, 0, 0) for t in (0, 1, 2)], np.int64), "spacing_km": np.float64(2.0),
              "step_minutes": np.int64(10), "context": np.int64(OBSERVED), "key": np.array("k")}
    path = dataset.save(tmp_path / "guess.npz", first_guess.add_first_guess(
        arrays, "root", [SimpleNamespace(name=name) for name in names], "shift"))
    results = run(str(path), str(tmp_path / "out"), members=2,
                  events={"val_events": [names[1]], "test_events": [names[2]]})
    truth, last = frames[2 + OBSERVED:2 + OBSERVED + LEAD, :size, :size], frames[2 + OBSERVED - 1, :size, :size]
    assert results["models"]["persistence"]["mse"] == pytest.approx(float(((truth - last) ** 2).mean()), rel=1e-5)
