"""Forecast metrics: pure functions (per sample for rewards), torchmetrics Metrics, and a task's metric set.

Definitions follow the design document: events are ``value >= threshold``; CSI and its family come from counts
summed over the whole set; the TKE spectrum error compares log10 shell spectra for k = 1..N/3.
"""

from sfp.metrics.epoch import EpochMetrics
from sfp.metrics.events import (
    block_max,
    contingency,
    csi,
    csi_from_rates,
    csi_m,
    fss,
    fss_sums,
    performance_points,
    scores,
)
from sfp.metrics.functional import crps, mae, mse, psnr, ssim
from sfp.metrics.modules import (
    CRPS,
    FSS,
    MAE,
    MSE,
    PSNR,
    SSIM,
    ContingencyScores,
    MSEPerLead,
    ObjectScores,
    SALScores,
    TKESpectrumError,
    VortexCensus,
)
from sfp.metrics.objects import object_counts, object_scores
from sfp.metrics.spectrum import rapsd, rescale_shells, scalar_spectrum, tke_spectrum, tke_spectrum_error
from sfp.metrics.task_metrics import TaskMetrics, build_task_metrics, metric_units, threshold_key
from sfp.metrics.vortices import vortex_counts

__all__ = [
    "mse", "mae", "psnr", "ssim", "crps",
    "contingency", "scores", "csi", "csi_m", "fss", "fss_sums", "block_max", "performance_points", "csi_from_rates",
    "tke_spectrum", "scalar_spectrum", "tke_spectrum_error", "rescale_shells", "rapsd",
    "object_counts", "object_scores", "vortex_counts",
    "MSE", "MAE", "MSEPerLead", "ContingencyScores", "FSS", "SSIM", "PSNR", "TKESpectrumError", "CRPS",
    "ObjectScores", "SALScores", "VortexCensus",
    "TaskMetrics", "build_task_metrics", "metric_units", "threshold_key", "EpochMetrics",
]
