"""The world model's imagination API: shapes, temperature 0, no future leak, sampling law and coherence,
reproducibility."""

import pytest
import torch

from sfp.errors import UserError
from sfp.planning import Imagination
from world_model_helpers import random_frames, tiny_world_model


@pytest.fixture(scope="module")
def model():
    return tiny_world_model().eval()


def test_shapes_for_any_frame_size(model):
    context, future = random_frames(2, 3, (10, 7)), random_frames(2, 2, (10, 7), seed=1)
    latents = model.encode(future, context)
    assert latents.shape == (2, 2, 3, 2, 4)  # 10x7 pads to 12x8 -> 3x2 latents of size 4
    indices, distances = model.candidates(latents, 5)
    assert indices.shape == distances.shape == (2, 2, 3, 2, 5)
    assert model.decode(indices[..., 0], context).shape == (2, 2, 1, 10, 7)
    assert model.imagine(context, future, Imagination(3, 8, 1.0)).shape == (2, 3, 2, 1, 10, 7)
    assert model(future, context).reconstruction.shape == (2, 2, 1, 10, 7)


def test_temperature_zero_is_the_nearest_code_decode(model):
    context, action = random_frames(2, 3), random_frames(2, 2, seed=1)
    imagined = model.imagine(context, action, Imagination(4, 8, 0.0))
    expected = model.decode(model.nearest(model.encode(action, context)), context)
    for sample in range(4):
        torch.testing.assert_close(imagined[:, sample], expected)
    torch.testing.assert_close(model.reconstruct(action, context), expected)


def test_reconstruction_is_a_function_of_codes_and_context_only(model):
    context = random_frames(2, 3)
    for seed in (1, 2):
        future = random_frames(2, 2, seed=seed)
        out = model(future, context)
        torch.testing.assert_close(out.reconstruction, model.decode(out.indices, context), atol=1e-4, rtol=1e-4)
    # The decode of a given code map cannot see any future: equal maps give equal frames, whatever surrounds them.
    codes = torch.randint(16, (2, 2, 2, 2))
    changed = codes.clone()
    changed[:, 1] = (changed[:, 1] + 1) % 16
    torch.testing.assert_close(model.decode(codes, context)[:, 0], model.decode(changed, context)[:, 0])
    assert not torch.allclose(model.decode(codes, context)[:, 1], model.decode(changed, context)[:, 1])
    # ... but it does see the context.
    assert not torch.allclose(model.decode(codes, context), model.decode(codes, random_frames(2, 3, seed=9)))


def test_decode_of_sample_axes_and_lead_subsets_matches_the_full_decode(model):
    context = random_frames(2, 3)
    codes = torch.randint(16, (2, 3, 5, 2, 2, 2))  # (B, S1, S2, T, h, w)
    full = model.decode(codes, context)
    assert full.shape == (2, 3, 5, 2, 1, 8, 8)
    torch.testing.assert_close(full[:, 1, 4], model.decode(codes[:, 1, 4], context))
    second = model.decode(codes[..., 1:, :, :], context, lead_times=[1])
    torch.testing.assert_close(second[..., 0, :, :, :], full[..., 1, :, :, :])


def test_chunked_decoding_equals_one_call():
    chunked, whole = tiny_world_model(max_frames=1).eval(), tiny_world_model(max_frames=10_000).eval()
    context, codes = random_frames(3, 3), torch.randint(16, (3, 4, 2, 2, 2))
    torch.testing.assert_close(chunked.decode(codes, context), whole.decode(codes, context))


def test_codes_are_drawn_from_the_softmax_of_negative_distances(model):
    latents = torch.randn(1, 1, 1, 1, 4)
    indices, distances = model.candidates(latents, 3)
    temperature = 0.7
    expected = torch.softmax(-distances.flatten() / temperature, 0)
    generator = torch.Generator().manual_seed(0)
    drawn = model.sample_codes(latents, Imagination(20_000, 3, temperature), generator).flatten()
    frequencies = torch.stack([(drawn == index).float().mean() for index in indices.flatten()])
    torch.testing.assert_close(frequencies, expected, atol=0.015, rtol=0)  # 3 sigma of 20 000 draws is <= 0.011
    assert set(drawn.tolist()) <= set(indices.flatten().tolist())


def test_a_drawn_map_is_coherent_across_positions_and_lead_times(model):
    # Every position and lead time holds the same latent: one map prefers one code everywhere it is a candidate,
    # so each map is constant, while across maps the code still follows the softmax of one position.
    latents = torch.randn(1, 1, 1, 1, 4).expand(1, 3, 2, 2, 4)
    indices, distances = model.candidates(latents[:, :1, :1, :1], 3)
    drawn = model.sample_codes(latents, Imagination(4000, 3, 0.7), torch.Generator().manual_seed(1))
    per_map = drawn.flatten(2)
    assert torch.equal(per_map, per_map[..., :1].expand_as(per_map))
    expected = torch.softmax(-distances.flatten() / 0.7, 0)
    frequencies = torch.stack([(per_map[0, :, 0] == index).float().mean() for index in indices.flatten()])
    torch.testing.assert_close(frequencies, expected, atol=0.025, rtol=0)  # 3 sigma of 4000 draws is <= 0.024


def test_seeded_imagination_is_reproducible(model):
    context, action = random_frames(2, 3), random_frames(2, 2, seed=1)

    def imagine(seed):
        return model.imagine(context, action, Imagination(4, 8, 5.0), torch.Generator().manual_seed(seed))

    torch.testing.assert_close(imagine(3), imagine(3), rtol=0, atol=0)
    assert not torch.equal(imagine(3), imagine(4))


def test_normalization_maps_original_units_to_model_units():
    scaled = tiny_world_model(mean=20.0, std=40.0).eval()
    plain = tiny_world_model().eval()
    context, future = random_frames(2, 3), random_frames(2, 2, seed=1)
    out = scaled.reconstruct(future, context)
    torch.testing.assert_close(out, plain.reconstruct((future - 20) / 40, (context - 20) / 40) * 40 + 20)
    assert torch.equal(scaled.state_dict()["std"], torch.full((1, 1, 1), 40.0))


def test_nan_inputs_do_not_poison_the_output(model):
    context, future = random_frames(1, 3), random_frames(1, 2, seed=1)
    context[0, 0, 0, 2, 3] = float("nan")
    future[0, 1, 0, 5, 5] = float("nan")
    assert torch.isfinite(model(future, context).reconstruction).all()


@pytest.mark.parametrize("call, message", [
    (lambda m, c, f: m.encode(f, c[:, :2]), "context must have shape"),
    (lambda m, c, f: m.encode(f[:1], c), "differ in B, H or W"),
    (lambda m, c, f: m.encode(f[:, :1], c), "lead_times"),
    (lambda m, c, f: m.decode(torch.full((2, 2, 2, 2), 16), c), r"\[0, 16\)"),
    (lambda m, c, f: m.decode(torch.zeros(2, 2, 3, 3, dtype=torch.long), c), "code maps of 8x8"),
    (lambda m, c, f: m.decode(torch.zeros(2, 2, 2, 2), c), "integer code maps"),
    (lambda m, c, f: m.decode(torch.zeros(2, 1, 2, 2, dtype=torch.long), c, lead_times=[2]), "lead_times"),
    (lambda m, c, f: m.imagine(c, f, Imagination(samples=0)), "imagination.samples must be"),
    (lambda m, c, f: m.imagine(c, f, Imagination(2, 8, -1.0)), "temperature"),
    (lambda m, c, f: m.imagine(c, f, Imagination(2, 17, 1.0)), "k must be"),
    (lambda m, c, f: m.set_normalization([1.0, 2.0], 1.0), "mean needs 1 or 1"),
    (lambda m, c, f: m.set_normalization(0.0, 0.0), "positive std"),
])
def test_user_mistakes_raise_user_errors(model, call, message):
    with pytest.raises(UserError, match=message):
        call(model, random_frames(2, 3), random_frames(2, 2, seed=1))
