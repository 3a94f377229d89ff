"""The dataset registry: names, tasks, shapes promised by each spec, and the error on an unknown name."""

import numpy as np
import pytest

from sfp.data.registry import DATASETS, DatasetSpec, get_dataset
from sfp.errors import UserError
from sfp.task import TASKS

SMALL = {  # tiny versions of each standard dataset
    "storms": {"n": 2, "frames": 3, "size": 16},
    "navier_stokes": {"n": 2, "frames": 2, "size": 16},
    "flame": {"n": 2, "frames": 3, "size": 16},
    "ocean": {"n": 2, "frames": 3, "size": 16},
    "sensors": {"length": 12, "size": 16, "spin_up": 0.0},
    "sensors_kolmogorov": {"length": 12, "size": 16, "spin_up": 0.0},
}


def test_the_six_embedded_datasets_are_registered():
    assert set(DATASETS) == {"storms", "navier_stokes", "flame", "ocean", "sensors", "sensors_kolmogorov"}
    for name, spec in DATASETS.items():
        assert isinstance(spec, DatasetSpec) and spec.name == name
        assert spec.task is TASKS[name]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generate_returns_what_the_spec_promises(name):
    spec = get_dataset(name)
    data = spec.generate(**{**spec.defaults, **SMALL[name]}, seed=0, cache=False)
    assert data.dtype == np.float32
    if spec.kind == "field":
        small = SMALL[name]
        assert data.shape == (small["n"], small["frames"], spec.channels, small["size"], small["size"])
    else:
        assert spec.kind == "series" and data.shape == (SMALL[name]["length"], spec.channels)


def test_standard_sizes():
    assert get_dataset("navier_stokes").defaults["viscosity"] == 1e-4
    assert get_dataset("sensors").channels == 49
    assert get_dataset("flame").channels == 2
    assert all(spec.defaults.get("n", 256) >= 256 for name, spec in DATASETS.items() if name != "ocean")
    assert (get_dataset("ocean").defaults["n"], get_dataset("ocean").defaults["frames"]) == (20, 365)  # years


def test_defaults_are_read_only():
    with pytest.raises(TypeError):
        get_dataset("storms").defaults["n"] = 1  # type: ignore[index]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UserError, match="flame, navier_stokes, ocean, sensors, sensors_kolmogorov, storms"):
        get_dataset("sevir_real")
