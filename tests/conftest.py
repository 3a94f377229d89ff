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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (each runs sfp in subprocesses for 5-25 s) go first, so that the two workers, which
    take tests in this order, do not end with one of them alone on a long test."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
