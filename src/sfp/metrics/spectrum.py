"""Shell-summed energy spectra of periodic fields on the unit torus, the TKE spectrum error, and the radially
averaged power spectrum (RAPSD) of radar fields.

A field ``(..., N, N)`` samples ``[0, 1)²`` on a uniform grid (axis −2 is y, axis −1 is x; the spectra do not
depend on the choice). Fourier coefficients are normalized so that ``f(x) = Σ_k f̂_k exp(2πi k·x)``, i.e.
``f̂ = fft2(f) / N²``; Parseval then reads ``mean_x f² = Σ_k |f̂_k|²``. The shell of integer radius k collects the
wavevectors with ``|k| ∈ [k − ½, k + ½)``, k = 0..N/2; the corner wavevectors with ``|k| ≥ N/2 + ½`` belong to no
shell, so shell sums match the domain means exactly for fields band-limited to ``|k| < N/2 + ½`` (such as
2/3-de-aliased solver output).

:func:`rapsd` follows instead the convention of ``pysteps.utils.spectral.rapsd`` (nowcasting papers use it): power
``|fft2(f)|² / (H·W)`` and the *mean* over each annulus.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sfp.errors import UserError
from sfp.metrics._common import as_float, check_pair, check_reduction, reduce_samples

LOG_EPSILON = 1e-30
"""Added to E(k) before log10 so an empty shell gives a large finite error instead of inf or NaN."""


def _coefficients(field: Tensor) -> Tensor:
    """Normalized Fourier coefficients of a square periodic field ``(..., N, N)``."""
    if field.dim() < 2 or field.shape[-1] != field.shape[-2]:
        raise UserError(f"spectra need square fields (..., N, N), got shape {tuple(field.shape)}")
    (field,) = as_float(field)
    return torch.fft.fft2(field, norm="forward")


def _wavenumber_magnitude(height: int, width: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``|k|`` of every wavevector of a ``height × width`` grid from the integer indices k_y, k_x of the FFT.

    On the unit torus (square grids) that is cycles per unit length.
    """
    k_y = torch.fft.fftfreq(height, d=1.0 / height, dtype=dtype, device=device)
    k_x = torch.fft.fftfreq(width, d=1.0 / width, dtype=dtype, device=device)
    return torch.sqrt(k_y.view(-1, 1) ** 2 + k_x.view(1, -1) ** 2)


def _shell_index(magnitude: Tensor, shells: int) -> Tensor:
    """The shell of every wavevector, ``round(|k|)``; ``shells`` (one past the last) for those outside all."""
    return torch.floor(magnitude + 0.5).long().clamp(max=shells)


def _shell_sum(density: Tensor, magnitude: Tensor, shells: int) -> Tensor:
    """Sum ``density (..., H, W)`` over the shells ``|k| ∈ [k − ½, k + ½)``, k = 0..shells − 1: ``(..., shells)``."""
    index = _shell_index(magnitude, shells).reshape(-1)
    flat = density.reshape(-1, magnitude.numel())
    out = torch.zeros(flat.shape[0], shells + 1, dtype=flat.dtype, device=flat.device)
    out.index_add_(1, index, flat)
    return out[:, :shells].reshape(*density.shape[:-2], shells)


def scalar_spectrum(field: Tensor) -> Tensor:
    """``E(k) = Σ_{|k'| ∈ [k−½, k+½)} |f̂_k'|²`` for k = 0..N/2 of each frame ``(..., N, N) -> (..., N//2 + 1)``.

    No factor ½: the shells sum to the mean of f² over the domain (for band-limited fields).
    """
    coefficients = _coefficients(field)
    n = field.shape[-1]
    magnitude = _wavenumber_magnitude(n, n, coefficients.real.dtype, field.device)
    return _shell_sum(coefficients.abs() ** 2, magnitude, n // 2 + 1)


def rescale_shells(field: Tensor, energy_gain: Tensor) -> Tensor:
    """``field (..., N, N)`` with each shell's energy multiplied by ``energy_gain (..., N//2 + 1)``.

    Every Fourier coefficient of shell k is scaled by ``sqrt(energy_gain[k])`` (a real factor: phases are kept), so
    :func:`scalar_spectrum` and :func:`tke_spectrum` of the result are those of ``field`` times the gain, shell by
    shell; the corner wavevectors outside every shell are left as they are.
    """
    coefficients = _coefficients(field)
    n = field.shape[-1]
    index = _shell_index(_wavenumber_magnitude(n, n, coefficients.real.dtype, field.device), n // 2 + 1)
    amplitude = F.pad(energy_gain.to(coefficients.real.dtype).clamp_min(0).sqrt(), (0, 1), value=1.0)
    scaled = coefficients * amplitude[..., index]
    return torch.fft.ifft2(scaled, norm="forward").real.to(field.dtype)


def tke_spectrum(vorticity: Tensor) -> Tensor:
    """Kinetic-energy spectrum of each vorticity frame ``(..., N, N) -> (..., N//2 + 1)`` on the unit torus.

    The stream function solves ``∇²ψ = −ω`` and the velocity is ``u = ∂ψ/∂y, v = −∂ψ/∂x``, spectrally:
    ``ψ̂ = ω̂ / |2πk|²`` (mean mode set to zero), so ``|û|² + |v̂|² = |ω̂|² / |2πk|²``. Then
    ``E(k) = Σ_{|k'| ∈ [k−½, k+½)} ½ (|û_k'|² + |v̂_k'|²)``; the shells sum to the mean kinetic energy
    ``mean_x ½(u² + v²)`` (for band-limited fields), and E(0) = 0.
    """
    coefficients = _coefficients(vorticity)
    n = vorticity.shape[-1]
    magnitude = _wavenumber_magnitude(n, n, coefficients.real.dtype, vorticity.device)
    inverse_squared = 1 / (2 * math.pi * magnitude) ** 2
    inverse_squared[0, 0] = 0.0  # the mean mode carries no velocity
    return _shell_sum(0.5 * coefficients.abs() ** 2 * inverse_squared, magnitude, n // 2 + 1)


def tke_spectrum_error(pred: Tensor, target: Tensor, vorticity: bool = True, reduction: str = "mean") -> Tensor:
    """Mean over k = 1..N//3 of ``|log10 E_pred(k) − log10 E_true(k)|`` per frame, averaged over frames and samples.

    Inputs ``(B, ..., N, N)``; every ``N × N`` slice (time step, channel) is a frame. ``vorticity=True`` uses
    :func:`tke_spectrum`, otherwise :func:`scalar_spectrum` of the field itself. ``LOG_EPSILON`` (1e-30) is added to
    E before the log. "none" gives ``(B,)`` (mean over the frames of each sample); "mean" the mean over samples.
    Lower is better; the unit is decades of energy.
    """
    check_reduction(reduction)
    check_pair(pred, target, min_dims=3)
    last = pred.shape[-1] // 3
    if last < 1:
        raise UserError(f"the TKE spectrum error needs N >= 3, got frames of shape {tuple(pred.shape[-2:])}")
    spectrum = tke_spectrum if vorticity else scalar_spectrum
    log_pred = torch.log10(spectrum(pred)[..., 1 : last + 1] + LOG_EPSILON)
    log_true = torch.log10(spectrum(target)[..., 1 : last + 1] + LOG_EPSILON)
    per_frame = (log_pred - log_true).abs().mean(-1)
    return reduce_samples(per_frame.reshape(pred.shape[0], -1).mean(1), reduction)


def log_spectrum_distance(pred: Tensor, label: Tensor) -> Tensor:
    """Mean squared ``log10`` ratio of the shell energies of ``pred`` and ``label`` ``(..., N, N)``, per frame.

    Shells 1..N//3 (the de-aliased band the TKE error reads), each weighing alike as in that metric; MSE to a label
    is instead dominated by the few energetic large scales. Returns ``pred.shape[:-2]``.
    """
    last = pred.shape[-1] // 3
    log_pred, log_label = (torch.log10(scalar_spectrum(field)[..., 1:last + 1] + LOG_EPSILON)
                           for field in (pred, label))
    return (log_pred - log_label).pow(2).mean(-1)


def rapsd(field: Tensor, spacing: float = 1.0, normalize: bool = False) -> tuple[Tensor, Tensor]:
    """Radially averaged power spectrum of each frame: ``(..., H, W) -> (frequencies (K,), power (..., K))``.

    As ``pysteps.utils.spectral.rapsd`` (fft_method numpy): the power ``|fft2(f)|² / (H·W)`` (it sums to Σ f²) is
    averaged over the annuli ``round(|k|) = k`` of the integer FFT indices (k_y, k_x), k = 0..K−1 with
    ``K = ⌈L/2⌉``, ``L = max(H, W)`` (for even L the Nyquist annulus is left out). Frequencies are ``k / (L ·
    spacing)``: cycles per unit of ``spacing`` (e.g. per km with the pixel size in km). ``normalize`` divides each
    spectrum by its sum. Fields must be finite: fill missing data first, as pysteps requires.
    """
    if field.dim() < 2:
        raise UserError(f"the RAPSD needs fields (..., H, W), got shape {tuple(field.shape)}")
    (field,) = as_float(field)
    if not torch.isfinite(field).all():
        raise UserError("the RAPSD needs finite fields; fill missing (NaN) pixels first")
    height, width = field.shape[-2:]
    longest = max(height, width)
    annuli = (longest + 1) // 2
    power = torch.fft.fft2(field, norm="ortho").abs() ** 2
    magnitude = _wavenumber_magnitude(height, width, power.dtype, field.device)
    mean = _shell_sum(power, magnitude, annuli) / _shell_sum(torch.ones_like(magnitude), magnitude, annuli)
    if normalize:
        mean = mean / mean.sum(-1, keepdim=True)
    frequencies = torch.arange(annuli, dtype=power.dtype, device=field.device) / (longest * spacing)
    return frequencies, mean
