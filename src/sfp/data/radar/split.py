"""Split windows by event: whole events are held out for validation and test, so no test event trains a model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sfp.errors import UserError

VAL_EVENTS: tuple[str, ...] = ("mch/20150515",)
TEST_EVENTS: tuple[str, ...] = ("fmi/20170509", "mch/20160711")


def split_by_event(event: np.ndarray, names: Sequence[str], val_events: Sequence[str] = VAL_EVENTS,
                   test_events: Sequence[str] = TEST_EVENTS) -> dict[str, list[int]]:
    """Window indices per split: ``event`` holds each window's index into ``names``; the rest of the events train."""
    for name in (*val_events, *test_events):
        if name not in names:
            raise UserError(f"unknown radar event {name!r}; the file holds: {', '.join(names)}")
    overlap = set(val_events) & set(test_events)
    if overlap:
        raise UserError(f"events in both validation and test: {', '.join(sorted(overlap))}")
    held = {name: split for split, group in (("val", val_events), ("test", test_events)) for name in group}
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for index, owner in enumerate(event.tolist()):
        splits[held.get(names[owner], "train")].append(index)
    for split, indices in splits.items():
        if not indices:
            raise UserError(f"the {split} split of the radar windows is empty; choose other val/test events")
    return splits
