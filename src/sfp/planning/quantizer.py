"""EMA vector quantizer with data-driven init, error-weighted dead-code restarts and cross-process sync.

Why our own and not ``vector_quantize_pytorch.VectorQuantize``: that class decides ``sync_codebook`` when it is
constructed (by default: whether a process group runs), which under Lightning is before the process group exists,
so by default its codebooks do not sync, and forcing sync on breaks single-process use; and its one-hot einsums
over every code cost more per step (``benchmarks/bench_world_model.py`` measures the ratio). This one decides at
call time whether a process group is running.

The rules, all on the NEAREST code:
- assignment: each latent vector goes to the code at the smallest Euclidean distance;
- EMA: per code, an exponential moving average of the number of vectors assigned (``ema_count``) and of their
  sum (``ema_sum``); the code is their ratio (counts Laplace-smoothed so no code divides by zero);
- init: k-means (k-means++ seeding, a few Lloyd steps) on the first training batch;
- restart: a code whose ``ema_count`` falls below ``dead_code_threshold`` moves onto a batch vector drawn with
  probability proportional to its squared quantization error, so new codes go where the codebook fits worst
  (storm cores) rather than onto the dominant, already well-coded background;
- sync: counts and sums are all-reduced before the EMA, and init and restart draws are made on rank 0 and
  broadcast, so every process holds the same codebook after every step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from sfp.errors import UserError

INIT_VECTORS = 8192


def _distributed() -> bool:
    """Whether a process group with more than one process is running now."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_sum_(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` in place over all processes (no-op when not distributed)."""
    if _distributed():
        dist.all_reduce(tensor)
    return tensor


def _broadcast_(tensor: Tensor) -> Tensor:
    """Overwrite ``tensor`` in place with rank 0's copy (no-op when not distributed)."""
    if _distributed():
        dist.broadcast(tensor, src=0)
    return tensor


def _on_rank_zero() -> bool:
    return not _distributed() or dist.get_rank() == 0


def squared_distances(vectors: Tensor, codebook: Tensor) -> Tensor:
    """Squared Euclidean distances ``(N, K)`` between ``(N, D)`` vectors and ``(K, D)`` codes, clamped at 0."""
    cross = vectors @ codebook.t()
    return (vectors.pow(2).sum(1, keepdim=True) - 2 * cross + codebook.pow(2).sum(1)).clamp_min_(0.0)


def weighted_draw(weights: Tensor, count: int) -> Tensor:
    """``count`` distinct indices drawn with probability proportional to ``weights`` (Gumbel top-k).

    Much faster than ``torch.multinomial`` on long weight vectors; needs ``count <= len(weights)``.
    """
    keys = weights.log() - torch.empty_like(weights).exponential_().log()
    return keys.topk(count).indices


def kmeans(vectors: Tensor, k: int, iters: int = 10) -> tuple[Tensor, Tensor]:
    """k-means with k-means++ seeding on ``(N, D)`` vectors: returns centres ``(k, D)`` and cluster sizes ``(k,)``.

    Uses the global torch RNG. With fewer distinct vectors than ``k`` some centres repeat; empty clusters keep
    their centre (they are restarted later by the quantizer).
    """
    n = vectors.shape[0]
    centres = vectors.new_empty(k, vectors.shape[1])
    centres[0] = vectors[torch.randint(n, (1,)).item()]
    nearest = (vectors - centres[0]).pow(2).sum(1)
    for i in range(1, k):
        centres[i] = vectors[weighted_draw(nearest + 1e-12, 1)]
        nearest = torch.minimum(nearest, (vectors - centres[i]).pow(2).sum(1))
    for _ in range(iters):
        assignment = squared_distances(vectors, centres).argmin(1)
        sizes = torch.bincount(assignment, minlength=k).to(vectors.dtype)
        sums = torch.zeros_like(centres).index_add_(0, assignment, vectors)
        filled = sizes > 0
        centres[filled] = sums[filled] / sizes[filled, None]
    sizes = torch.bincount(squared_distances(vectors, centres).argmin(1), minlength=k).to(vectors.dtype)
    return centres, sizes


class Quantized(NamedTuple):
    """Output of :meth:`VectorQuantizer.forward`.

    quantized: the nearest codes with a straight-through gradient to the input, same shape as the input;
    indices: the nearest code of each vector, the input's shape without the last axis;
    commitment: mean squared distance between the input and its (constant) code, the commitment loss;
    restarts: the number of dead codes restarted in this step (0 outside training), a 0-d tensor.
    """

    quantized: Tensor
    indices: Tensor
    commitment: Tensor
    restarts: Tensor


class VectorQuantizer(nn.Module):
    """A codebook of ``codebook_size`` vectors of size ``code_dim`` trained by EMA (no gradient reaches it).

    decay: EMA decay per training step; dead_code_threshold: a code whose EMA assignment count per step falls
    below it is restarted; kmeans_iters: Lloyd steps of the init, which runs on a random subset of at most
    ``INIT_VECTORS`` batch vectors to bound its cost.
    """

    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        decay: float = 0.9,
        dead_code_threshold: float = 1.0,
        kmeans_iters: int = 10,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if codebook_size < 2 or code_dim < 1:
            raise UserError(f"codebook_size must be >= 2 and code_dim >= 1, got {codebook_size} and {code_dim}")
        if not 0.0 <= decay < 1.0:
            raise UserError(f"decay must be in [0, 1), got {decay}")
        if dead_code_threshold < 0:
            raise UserError(f"dead_code_threshold must be >= 0, got {dead_code_threshold}")
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.decay = decay
        self.dead_code_threshold = dead_code_threshold
        self.kmeans_iters = kmeans_iters
        self.eps = eps
        self.register_buffer("codebook", torch.randn(codebook_size, code_dim))
        self.register_buffer("ema_count", torch.ones(codebook_size))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))

    def distances(self, vectors: Tensor) -> Tensor:
        """Euclidean distances ``(..., K)`` from vectors ``(..., D)`` to every code."""
        flat = vectors.reshape(-1, self.code_dim)
        return squared_distances(flat, self.codebook).sqrt_().reshape(*vectors.shape[:-1], self.codebook_size)

    def nearest(self, vectors: Tensor) -> Tensor:
        """Index of the nearest code of each vector ``(..., D) -> (...)``."""
        flat = vectors.reshape(-1, self.code_dim)
        return squared_distances(flat, self.codebook).argmin(1).reshape(vectors.shape[:-1])

    def candidates(self, vectors: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` nearest codes of each vector, nearest first: indices and Euclidean distances ``(..., k)``."""
        if not 1 <= k <= self.codebook_size:
            raise UserError(f"k must be between 1 and the codebook size {self.codebook_size}, got {k}")
        flat = vectors.reshape(-1, self.code_dim)
        dist2, indices = squared_distances(flat, self.codebook).topk(k, dim=1, largest=False, sorted=True)
        shape = (*vectors.shape[:-1], k)
        return indices.reshape(shape), dist2.sqrt_().reshape(shape)

    def lookup(self, indices: Tensor) -> Tensor:
        """The code vectors ``(..., D)`` of integer indices ``(...)``."""
        return F.embedding(indices, self.codebook)

    def forward(self, vectors: Tensor) -> Quantized:
        """Quantize ``(..., D)`` vectors to their nearest codes; in training mode also update the codebook."""
        flat = vectors.detach().reshape(-1, self.code_dim).float()
        if self.training and not bool(self.initialized):
            self._initialize(flat)
        dist2 = squared_distances(flat, self.codebook)
        error, indices = dist2.min(1)
        codes = self.codebook[indices].reshape(vectors.shape).to(vectors.dtype)
        restarts = torch.zeros((), dtype=torch.long, device=vectors.device)
        if self.training:
            restarts = self._update(flat, indices, error)
        commitment = F.mse_loss(vectors, codes)
        quantized = vectors + (codes - vectors).detach()
        return Quantized(quantized, indices.reshape(vectors.shape[:-1]), commitment, restarts)

    @torch.no_grad()
    def _initialize(self, flat: Tensor) -> None:
        """Data-driven init: k-means on (a subset of) rank 0's first batch, broadcast to every process."""
        if _on_rank_zero():
            sample = flat
            if flat.shape[0] > INIT_VECTORS:
                sample = flat[torch.randperm(flat.shape[0], device=flat.device)[:INIT_VECTORS]]
            centres, sizes = kmeans(sample, self.codebook_size, self.kmeans_iters)
            self.codebook.copy_(centres)
            self.ema_count.copy_(sizes * (flat.shape[0] / sample.shape[0]))
        _broadcast_(self.codebook)
        _broadcast_(self.ema_count)
        self.ema_sum.copy_(self.codebook * self.ema_count[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, flat: Tensor, indices: Tensor, error: Tensor) -> Tensor:
        """EMA step on the nearest codes (synchronized over processes), then restart dead codes."""
        counts = torch.bincount(indices, minlength=self.codebook_size).to(flat.dtype)
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat)
        _all_reduce_sum_(counts)
        _all_reduce_sum_(sums)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.codebook_size * self.eps) * total
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        return self._restart(flat, error)

    def _restart(self, flat: Tensor, error: Tensor) -> Tensor:
        """Move codes with an EMA count below the threshold onto error-weighted draws from rank 0's batch.

        At most as many codes as the batch has vectors move in one step; the rest wait for the next.
        """
        dead = self.ema_count < self.dead_code_threshold
        n_dead = min(int(dead.sum()), flat.shape[0])
        if n_dead:
            dead[dead.nonzero()[n_dead:, 0]] = False
            replacements = flat.new_empty(n_dead, self.code_dim)
            if _on_rank_zero():
                replacements.copy_(flat[weighted_draw(error + 1e-12, n_dead)])
            _broadcast_(replacements)
            self.codebook[dead] = replacements
            self.ema_count[dead] = self.dead_code_threshold
            self.ema_sum[dead] = replacements * self.dead_code_threshold
        return torch.tensor(n_dead, device=flat.device)


def usage_statistics(counts: Tensor) -> dict[str, Tensor]:
    """Usage fraction, perplexity and dead-code count from per-code assignment counts ``(K,)``."""
    total = counts.sum().clamp_min(1)
    probabilities = counts / total
    entropy = -(probabilities * probabilities.clamp_min(1e-30).log()).sum()
    used = (counts > 0).sum()
    return {
        "codebook_usage": used / counts.numel(),
        "perplexity": entropy.exp(),
        "dead_codes": (counts.numel() - used).to(counts.dtype),
    }
