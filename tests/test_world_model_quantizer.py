"""The vector quantizer: nearest-code EMA, restarts toward badly coded vectors, k-means init, candidates."""

import pytest
import torch

from sfp.errors import UserError
from sfp.planning import VectorQuantizer


def hand_made(decay: float = 0.5, dead_code_threshold: float = 0.0) -> VectorQuantizer:
    """Three 2-D codes at (0, 0), (10, 0), (0, 10), each with an EMA count of 4, already initialized."""
    quantizer = VectorQuantizer(3, 2, decay=decay, dead_code_threshold=dead_code_threshold, eps=1e-12)
    quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    quantizer.ema_count.fill_(4.0)
    quantizer.ema_sum.copy_(quantizer.codebook * 4.0)
    quantizer.initialized.fill_(True)
    return quantizer


def test_ema_moves_the_nearest_code_only():
    quantizer = hand_made()
    # Both vectors are nearest to code 0 (distance 1.4) and second-nearest to code 1 (distance 9.1).
    out = quantizer(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    assert out.indices.tolist() == [0, 0]
    # By hand, decay 0.5: count0 = 0.5*4 + 0.5*2 = 3, sum0 = 0.5*(0,0)*4 + 0.5*(2,0) = (1,0) -> code0 = (1/3, 0).
    expected = torch.tensor([[1 / 3, 0.0], [10.0, 0.0], [0.0, 10.0]])
    torch.testing.assert_close(quantizer.codebook, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(quantizer.ema_count, torch.tensor([3.0, 2.0, 2.0]))
    # The output used the codes before the update; the commitment is the mean squared distance to them.
    torch.testing.assert_close(out.quantized, torch.zeros(2, 2))
    assert out.commitment.item() == pytest.approx(1.0)


def test_no_update_in_eval_mode():
    quantizer = hand_made().eval()
    before = quantizer.codebook.clone()
    quantizer(torch.tensor([[1.0, 1.0], [9.0, 1.0]]))
    assert torch.equal(quantizer.codebook, before)


def test_straight_through_gradient_reaches_the_input_not_the_codebook():
    quantizer = hand_made()
    vectors = torch.tensor([[1.0, 1.0], [9.0, 2.0]], requires_grad=True)
    quantizer(vectors).quantized.sum().backward()
    torch.testing.assert_close(vectors.grad, torch.ones(2, 2))
    assert not quantizer.codebook.requires_grad


def test_dead_code_moves_onto_the_badly_coded_vector():
    quantizer = hand_made(dead_code_threshold=1.0)
    quantizer.ema_count[2] = 0.1  # code 2 is dead
    quantizer.ema_sum[2] = quantizer.codebook[2] * 0.1
    # Eleven vectors sit exactly on codes 0 and 1 (no error); one, (5, 5), is 7.07 away from every code.
    vectors = torch.cat([torch.zeros(6, 2), torch.tensor([[10.0, 0.0]]).repeat(5, 1), torch.tensor([[5.0, 5.0]])])
    out = quantizer(vectors)
    assert out.restarts.item() == 1
    torch.testing.assert_close(quantizer.codebook[2], torch.tensor([5.0, 5.0]))
    assert quantizer.ema_count[2].item() == pytest.approx(1.0)


def test_kmeans_init_finds_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    # The clusters are unequal (1000, 100, 30, 10 points): random seeding would likely miss the small ones.
    sizes = [1000, 100, 30, 10]
    vectors = torch.cat([c + 0.1 * torch.randn(s, 2) for c, s in zip(centres, sizes)])
    quantizer = VectorQuantizer(4, 2, dead_code_threshold=0.0)
    quantizer(vectors)
    assert bool(quantizer.initialized)
    nearest_code = torch.cdist(centres, quantizer.codebook).min(1).values
    assert (nearest_code < 0.3).all(), nearest_code  # a missed cluster would be >= 10 away


def test_candidates_are_sorted_and_match_brute_force():
    torch.manual_seed(1)
    quantizer = VectorQuantizer(32, 5)
    vectors = torch.randn(4, 3, 5)
    indices, distances = quantizer.candidates(vectors, 6)
    assert indices.shape == distances.shape == (4, 3, 6)
    brute = torch.cdist(vectors.reshape(-1, 5), quantizer.codebook)
    order = brute.argsort(dim=1)[:, :6]
    assert torch.equal(indices.reshape(-1, 6), order)
    torch.testing.assert_close(distances.reshape(-1, 6), brute.gather(1, order), atol=1e-4, rtol=1e-4)
    assert (distances[..., 1:] >= distances[..., :-1]).all()
    assert torch.equal(quantizer.nearest(vectors), indices[..., 0])


def test_bad_arguments_raise_user_errors():
    with pytest.raises(UserError, match="codebook_size"):
        VectorQuantizer(1, 4)
    with pytest.raises(UserError, match="decay"):
        VectorQuantizer(8, 4, decay=1.0)
    with pytest.raises(UserError, match="k must be"):
        VectorQuantizer(8, 4).candidates(torch.zeros(2, 4), 9)
