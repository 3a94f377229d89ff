"""The generative world model of SFP: a conditional VQ-VAE over future frames, and its imagination API.

Data flow (the default ``downsample=4`` maps 64x64 frames to 16x16 latents):

    context (B, T_in, C, H, W) --context encoder--> condition (B, width, h, w)    (the ONLY source of skips)
    future  (B, T_out, C, H, W) --frame encoder(frame, condition, lead time)--> latents (B, T_out, h, w, D)
    latents --nearest code--> indices (B, T_out, h, w) --decoder(codes, condition, lead time)--> frames

All three networks work at the latent resolution: frames enter by pixel-unshuffle (each 4x4 patch becomes 16
channels) and leave by pixel-shuffle. On a CPU this is far cheaper than a convolutional pyramid at full
resolution, and one code per 4x4 patch bounds the detail a decoder can restore anyway.

Each future frame is encoded and decoded on its own (given the condition and its lead time), so a code map of
any subset of lead times decodes without the others; the decoder sees only codes and the context, never the
future at full resolution (the published reference leaked the future around the quantizer through such a skip).

Units: every public method takes and returns frames in ORIGINAL units (e.g. 0-255 VIL). The model normalizes
internally with its ``mean``/``std`` buffers (per channel, saved with the weights; 0 and 1 by default, so a
caller that normalizes itself leaves them as they are). ``WorldModelModule`` sets them from the data module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfp.errors import UserError
from sfp.options import coerce
from sfp.planning.options import Imagination, WorldModelArchitecture
from sfp.planning.quantizer import Quantized, VectorQuantizer

NOISE_ELEMENTS = 1 << 22
"""Candidate scores held at once by :meth:`WorldModel.sample_codes` (about 16 MB of float32)."""


class ResBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions (no normalization: batch-independent outputs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.gelu(self.conv1(F.gelu(x))))


def add_per_sample(x: Tensor, feature: Tensor) -> Tensor:
    """Add one feature map per sample ``(B, c, h, w)`` to all of that sample's frames ``(B * M, c, h, w)``."""
    return (x.unflatten(0, (feature.shape[0], -1)) + feature.unsqueeze(1)).flatten(0, 1)


class ContextEncoder(nn.Module):
    """Context frames stacked on channels ``(B, T_in * C, H, W)`` -> the condition ``(B, width, h, w)``."""

    def __init__(self, in_channels: int, width: int, factor: int, blocks: int) -> None:
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(factor)
        self.stem = nn.Conv2d(in_channels * factor**2, width, 3, padding=1)
        self.blocks = nn.Sequential(*(ResBlock(width) for _ in range(blocks)))

    def forward(self, context: Tensor) -> Tensor:
        return self.blocks(self.stem(self.unshuffle(context)))


class FrameEncoder(nn.Module):
    """One future frame ``(C, H, W)`` + its lead time + the condition -> latent vectors ``(D, h, w)``."""

    def __init__(self, channels: int, width: int, factor: int, blocks: int, code_dim: int, out_frames: int) -> None:
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(factor)
        self.stem = nn.Conv2d(channels * factor**2, width, 3, padding=1)
        self.lead_embedding = nn.Embedding(out_frames, width)
        self.blocks = nn.Sequential(*(ResBlock(width) for _ in range(blocks)))
        self.project = nn.Conv2d(width, code_dim, 1)

    def forward(self, frames: Tensor, lead: Tensor, condition: Tensor) -> Tensor:
        x = self.stem(self.unshuffle(frames)) + self.lead_embedding(lead)[:, :, None, None]
        return self.project(F.gelu(self.blocks(add_per_sample(x, condition))))


class Decoder(nn.Module):
    """Code vectors ``(N, D, h, w)`` + lead times + the condition -> frames ``(N, C, H, W)``."""

    def __init__(self, channels: int, width: int, factor: int, blocks: int, code_dim: int, out_frames: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(code_dim, width, 1)
        self.lead_embedding = nn.Embedding(out_frames, width)
        self.blocks = nn.Sequential(*(ResBlock(width) for _ in range(blocks)))
        self.head = nn.Conv2d(width, channels * factor**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, codes: Tensor, lead: Tensor, condition: Tensor) -> Tensor:
        x = self.project(codes) + self.lead_embedding(lead)[:, :, None, None]
        return self.shuffle(self.head(F.gelu(self.blocks(add_per_sample(x, condition)))))


class WorldModelOutput(NamedTuple):
    """Output of :meth:`WorldModel.forward`: the reconstruction (original units) and the quantizer's outputs."""

    reconstruction: Tensor
    indices: Tensor
    commitment: Tensor
    restarts: Tensor


class WorldModel(nn.Module):
    """Conditional VQ-VAE over ``out_frames`` future frames given ``in_frames`` context frames.

    architecture: its shape (:class:`~sfp.planning.options.WorldModelArchitecture`, or a mapping of its fields).
    Any H, W works: frames are padded (edge values) to a multiple of ``downsample``, outputs cropped.
    mean, std: per-channel normalization (scalars or ``channels`` values), see the module docstring.
    """

    def __init__(
        self,
        architecture: WorldModelArchitecture | Mapping[str, Any],
        mean: float | Sequence[float] | Tensor = 0.0,
        std: float | Sequence[float] | Tensor = 1.0,
    ) -> None:
        super().__init__()
        arch = self.architecture = coerce(WorldModelArchitecture, architecture)
        self.in_frames, self.out_frames, self.channels = arch.in_frames, arch.out_frames, arch.channels
        self.factor = arch.downsample
        self.max_frames = arch.max_frames
        width, factor = arch.width, arch.downsample
        self.context_encoder = ContextEncoder(arch.in_frames * arch.channels, width, factor, arch.encoder_blocks)
        self.encoder = FrameEncoder(arch.channels, width, factor, arch.encoder_blocks, arch.code_dim, arch.out_frames)
        self.quantizer = VectorQuantizer(arch.codebook_size, arch.code_dim, arch.decay, arch.dead_code_threshold)
        self.decoder = Decoder(arch.channels, width, factor, arch.decoder_blocks, arch.code_dim, arch.out_frames)
        self.register_buffer("mean", torch.zeros(arch.channels, 1, 1))
        self.register_buffer("std", torch.ones(arch.channels, 1, 1))
        self.set_normalization(mean, std)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def set_normalization(self, mean: float | Sequence[float] | Tensor, std: float | Sequence[float] | Tensor) -> None:
        """Set the per-channel normalization: one value, or one per channel (any shape with that many values)."""
        mean_t, std_t = (torch.as_tensor(v, dtype=torch.float32).flatten() for v in (mean, std))
        for name, value in (("mean", mean_t), ("std", std_t)):
            if value.numel() not in (1, self.channels):
                raise UserError(f"{name} needs 1 or {self.channels} (channels) values, got {value.numel()}")
        if not bool(torch.isfinite(mean_t).all()) or not bool((std_t > 0).all()):
            raise UserError("normalization needs a finite mean and a positive std")
        self.mean.copy_(mean_t.expand(self.channels)[:, None, None])
        self.std.copy_(std_t.expand(self.channels)[:, None, None])

    def normalize(self, frames: Tensor) -> Tensor:
        """Original units -> model units ``(x - mean) / std`` (per channel, on the third-to-last axis)."""
        return (frames - self.mean) / self.std

    def denormalize(self, frames: Tensor) -> Tensor:
        """Model units -> original units."""
        return frames * self.std + self.mean

    # ----- shapes -----

    def _check_context(self, context: Tensor) -> None:
        if context.ndim != 5 or context.shape[1] != self.in_frames or context.shape[2] != self.channels:
            raise UserError(f"context must have shape (B, {self.in_frames}, {self.channels}, H, W), "
                            f"got {tuple(context.shape)}")

    def _check_future(self, frames: Tensor, context: Tensor, lead_times: Sequence[int] | None) -> Tensor:
        """Check future frames against the context; return their lead times as a tensor."""
        if frames.ndim != 5 or frames.shape[2] != self.channels:
            raise UserError(f"frames must have shape (B, T, {self.channels}, H, W), got {tuple(frames.shape)}")
        if frames.shape[0] != context.shape[0] or frames.shape[-2:] != context.shape[-2:]:
            raise UserError(f"frames {tuple(frames.shape)} and context {tuple(context.shape)} differ in B, H or W")
        return self._lead_times(lead_times, frames.shape[1], frames.device)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """The latent grid ``(h, w)`` of ``height x width`` frames."""
        return math.ceil(height / self.factor), math.ceil(width / self.factor)

    def _pad(self, images: Tensor) -> Tensor:
        """Pad ``(N, C, H, W)`` images on the bottom/right with edge values to a multiple of the factor."""
        h, w = self.latent_size(*images.shape[-2:])
        pad_h, pad_w = h * self.factor - images.shape[-2], w * self.factor - images.shape[-1]
        return F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images

    # ----- the three networks -----

    def condition(self, context: Tensor) -> Tensor:
        """Context ``(B, T_in, C, H, W)`` in original units -> the condition ``(B, width, h, w)``."""
        self._check_context(context)
        normalized = torch.nan_to_num(self.normalize(context))
        return self.context_encoder(self._pad(normalized.flatten(1, 2)))

    def encode(self, frames: Tensor, context: Tensor, lead_times: Sequence[int] | None = None) -> Tensor:
        """Future frames ``(B, T, C, H, W)`` -> pre-quantization latents ``(B, T, h, w, D)``.

        The T frames are the lead times ``lead_times`` (default: all ``T_out`` in order).
        """
        lead = self._check_future(frames, context, lead_times)
        return self._encode(frames, lead, self.condition(context))

    def _encode(self, frames: Tensor, lead: Tensor, condition: Tensor) -> Tensor:
        batch, count = frames.shape[:2]
        images = self._pad(torch.nan_to_num(self.normalize(frames)).flatten(0, 1))
        latents = self.encoder(images, lead.repeat(batch), condition)
        return latents.unflatten(0, (batch, count)).permute(0, 1, 3, 4, 2)

    def forward(self, frames: Tensor, context: Tensor, lead_times: Sequence[int] | None = None) -> WorldModelOutput:
        """Encode, quantize (updating the codebook in training mode) and decode the true future.

        ``lead_times`` as in :meth:`encode`: training on a random subset of lead times per step is an unbiased,
        cheaper estimate of the full loss, because every frame is encoded and decoded on its own.
        """
        lead = self._check_future(frames, context, lead_times)
        condition = self.condition(context)
        quantized: Quantized = self.quantizer(self._encode(frames, lead, condition))
        decoded = self._decode_vectors(quantized.quantized, lead, condition, frames.shape[-2:])
        return WorldModelOutput(decoded, quantized.indices, quantized.commitment, quantized.restarts)

    def _decode_vectors(self, vectors: Tensor, lead: Tensor, condition: Tensor, size: torch.Size) -> Tensor:
        """Code vectors ``(B, M, h, w, D)`` of lead times ``lead (M,)`` -> frames ``(B, M, C, H, W)``."""
        batch, maps = vectors.shape[:2]
        images = self.decoder(vectors.flatten(0, 1).permute(0, 3, 1, 2), lead.repeat(batch), condition)
        images = images[..., : size[0], : size[1]].unflatten(0, (batch, maps))
        return self.denormalize(images)

    # ----- imagination API -----

    def nearest(self, latents: Tensor) -> Tensor:
        """The nearest code of every latent vector: ``(..., D) -> (...)``."""
        return self.quantizer.nearest(latents)

    def candidates(self, latents: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` nearest codes at every latent position, nearest first.

        ``latents (B, T, h, w, D) -> (indices, distances)``, both ``(B, T, h, w, k)``; Euclidean distances.
        """
        return self.quantizer.candidates(latents, k)

    def decode(self, indices: Tensor, context: Tensor, lead_times: Sequence[int] | None = None) -> Tensor:
        """Decode code maps ``(B, *S, T, h, w)`` given the context ``(B, T_in, C, H, W)`` -> ``(B, *S, T, C, H, W)``.

        ``*S`` are any extra sample axes (e.g. n imagined futures per sample). The T maps are the lead times
        ``lead_times`` (default all ``T_out`` in order); a map decodes the same whatever maps surround it.
        Frames come out in original units, cropped to the context's H, W. Decoding runs in chunks of at most
        ``max_frames`` frames.
        """
        if indices.dtype not in (torch.int32, torch.int64) or indices.ndim < 4 or indices.shape[0] != context.shape[0]:
            raise UserError(
                f"indices must be integer code maps (B, ..., T, h, w) with B = {context.shape[0]} (the context's), "
                f"got {indices.dtype} {tuple(indices.shape)}")
        lead = self._lead_times(lead_times, indices.shape[-3], indices.device)
        height, width = context.shape[-2:]
        if tuple(indices.shape[-2:]) != self.latent_size(height, width):
            raise UserError(f"code maps of {height}x{width} frames are {self.latent_size(height, width)}, "
                            f"got {tuple(indices.shape[-2:])}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise UserError(f"code indices must lie in [0, {self.codebook_size}), "
                            f"got {int(indices.min())}..{int(indices.max())}")
        condition = self.condition(context)
        batch, maps = indices.shape[0], math.prod(indices.shape[1:-2])
        flat = indices.reshape(batch, maps, *indices.shape[-2:])
        lead = lead.repeat(maps // lead.numel())
        out = context.new_empty(batch, maps, self.channels, height, width)
        step = max(1, self.max_frames // batch)
        for start in range(0, maps, step):
            chunk = slice(start, start + step)
            vectors = self.quantizer.lookup(flat[:, chunk])
            out[:, chunk] = self._decode_vectors(vectors, lead[chunk], condition, context.shape[-2:])
        return out.reshape(*indices.shape[:-2], self.channels, height, width)

    def _lead_times(self, lead_times: Sequence[int] | None, count: int, device: torch.device) -> Tensor:
        lead = torch.arange(self.out_frames) if lead_times is None else torch.as_tensor(list(lead_times))
        if lead.numel() != count or lead.numel() == 0 or int(lead.min()) < 0 or int(lead.max()) >= self.out_frames:
            raise UserError(f"got {count} frames or code maps per sample but lead_times {lead.tolist()} "
                            f"(one per frame, each in 0..{self.out_frames - 1})")
        return lead.to(device)

    def reconstruct(self, frames: Tensor, context: Tensor) -> Tensor:
        """The nearest-code decode of given future frames (what the world model makes of the truth)."""
        return self.decode(self.nearest(self.encode(frames, context)), context)

    def sample_codes(self, latents: Tensor, imagination: Imagination, generator: torch.Generator | None = None,
                     n: int | None = None) -> Tensor:
        """Draw ``n`` (default ``imagination.samples``) code maps near the latents ``(B, T, h, w, D)`` ->
        ``(B, n, T, h, w)``.

        At each position a code is drawn among its ``imagination.candidates`` nearest with probability
        ``softmax(-distance / temperature)``; temperature 0 gives the nearest code for all ``n``. ``generator``
        makes the draw reproducible.

        The positions of one map are drawn together, coherently: by Gumbel-max with ONE Gumbel variable per code
        of the codebook, shared by all positions and lead times of the map. A map thus follows one random
        preference over the codebook (a code it favours is favoured wherever it is a candidate), while every
        position's own draw keeps exactly the softmax above. Independent draws per position add noise that spoils
        the field instead of exploring (docs/experiments.md).
        """
        n = imagination.samples if n is None else n
        if n < 1:
            raise UserError(f"n must be >= 1, got {n}")
        if imagination.temperature == 0:
            return self.nearest(latents).unsqueeze(1).expand(-1, n, -1, -1, -1).contiguous()
        indices, distances = self.candidates(latents, imagination.candidates)
        logits = (-distances / imagination.temperature).unsqueeze(1)
        flat = indices.flatten(1).unsqueeze(1)
        step = max(1, NOISE_ELEMENTS // indices.numel())  # maps drawn per pass: bounds the (B, m, ..., k) scores
        maps = []
        for start in range(0, n, step):
            count = min(step, n - start)
            uniform = torch.rand(len(latents), count, self.codebook_size, generator=generator, device=latents.device)
            gumbel = -torch.log(-torch.log(uniform.clamp_(1e-20, 1.0 - 1e-7)))
            noise = gumbel.gather(2, flat.expand(-1, count, -1)).view(len(latents), count, *indices.shape[1:])
            choice = (logits + noise).argmax(-1, keepdim=True)
            maps.append(indices.unsqueeze(1).expand_as(noise).gather(-1, choice).squeeze(-1))
        return torch.cat(maps, 1)

    def imagine(self, context: Tensor, action: Tensor, imagination: Imagination,
                generator: torch.Generator | None = None) -> Tensor:
        """``imagination.samples`` imagined futures ``(B, n, T_out, C, H, W)`` near the action (a forecast
        ``(B, T_out, C, H, W)``).

        The action is encoded like a true future, code maps are drawn near it (:meth:`sample_codes`) and decoded,
        batched over B and n in chunks of ``max_frames`` frames. All in original units.
        """
        latents = self.encode(action, context)
        return self.decode(self.sample_codes(latents, imagination, generator), context)
