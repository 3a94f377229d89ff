"""Per-lead views (sfp.report.leads) against hand counts and the metrics computed frame by frame."""

import torch

from sfp.metrics.functional import ssim
from sfp.metrics.spectrum import tke_spectrum
from sfp.report.leads import lead_accumulators, plot_lead_curves, with_truth
from sfp.report.scoring import accumulate
from sfp.task import FLAME, NAVIER_STOKES, TaskSpec


def lead_curves(forecasts, batches, task, target_len):
    """Per-lead views of each forecaster (and the truth's spectrum), as the test split's evaluation fills them."""
    make = lead_accumulators(task, target_len)
    computed = accumulate(with_truth(forecasts, task), batches, lambda name: [make(name)])
    return {name: results[0] for name, results in computed.items()}


def _batch(truth: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return (None, truth[:, :1], None, truth)


def test_csi_per_lead_counts_each_lead_alone():
    task = TaskSpec("toy", thresholds=(1.0,), headline="csi_m", higher_is_better=True)
    truth = torch.zeros(1, 2, 1, 2, 2)
    truth[0, 0, 0, 0] = 2.0  # lead 1: two events
    truth[0, 1, 0, 0, 0] = 2.0  # lead 2: one event
    pred = torch.zeros_like(truth)
    pred[0, 0, 0, 0, 0] = 2.0  # lead 1: 1 hit, 1 miss -> 1/2
    pred[0, 1, 0, 1] = 2.0  # lead 2: 0 hits, 1 miss, 2 false alarms -> 0
    curves = lead_curves({"model": lambda b: pred}, [_batch(truth)], task, 2)
    assert curves["model"]["csi_per_lead"] == {"1": [0.5, 0.0]}


def test_ssim_per_lead_and_the_mean_spectrum_match_frame_by_frame_values(tmp_path):
    torch.manual_seed(0)
    truth = torch.rand(3, 2, 2, 16, 16)
    pred = truth * 0.7 + 0.1
    flame = lead_curves({"model": lambda b: b[3] * 0.7 + 0.1}, [_batch(truth[:2]), _batch(truth[2:])], FLAME,
                        2)["model"]
    for lead in range(2):
        expected = ssim(pred[:, lead], truth[:, lead], FLAME.data_range).item()
        assert abs(flame["ssim_per_lead"][lead] - expected) < 1e-5
    vorticity = truth[:, :, :1]
    spectra = lead_curves({"model": lambda b: 2 * b[3]}, [_batch(vorticity)], NAVIER_STOKES, 2)
    expected = tke_spectrum(vorticity.double()).mean(dim=(0, 1, 2))
    torch.testing.assert_close(torch.tensor(spectra["truth"]["spectrum"], dtype=torch.float64), expected)
    torch.testing.assert_close(torch.tensor(spectra["model"]["spectrum"], dtype=torch.float64), 4 * expected)
    assert plot_lead_curves(tmp_path / "ns.png", spectra, "navier_stokes").stat().st_size > 0
    assert plot_lead_curves(tmp_path / "flame.png", {"model": flame}, "flame").stat().st_size > 0
