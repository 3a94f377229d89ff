"""Shared test set-up: small thread counts (two xdist workers share two cores) and an isolated data cache."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point the dataset cache at a per-session temporary folder so tests never touch ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "sfp-cache"
    monkeypatch.setenv("SFP_CACHE", str(cache))
    yield
