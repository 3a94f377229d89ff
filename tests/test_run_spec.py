"""The run spec: a checked pipeline config as one typed object whose fields are the YAML's keys."""

import dataclasses

from pipeline_helpers import write_config
from sfp.pipeline_config import load_config
from sfp.planning.options import PlannerOptions, PseudoLabels
from sfp.run_spec import ClassSpec, Evaluation, FineTuning, RunSpec


def test_every_key_of_a_pipeline_config_is_a_typed_field(tmp_path):
    config = load_config(["--config", str(write_config(tmp_path / "p.yaml", tmp_path / "run")),
                          "--sfp.pseudo_labels.weight", "0.7", "--qmap_baseline", "true"])
    assert set(config) == {field.name for field in dataclasses.fields(RunSpec)}  # no key without a field, or back
    spec = RunSpec.of(config)
    assert isinstance(spec.data, ClassSpec) and isinstance(spec.agent, ClassSpec)
    assert isinstance(spec.sfp, FineTuning) and isinstance(spec.evaluation, Evaluation)
    assert isinstance(spec.sfp.planner, PlannerOptions) and isinstance(spec.sfp.pseudo_labels, PseudoLabels)
    assert spec.sfp.pseudo_labels.weight == 0.7 and spec.switched_on("qmap_baseline")
    assert not spec.switched_on("facl_baseline")
    baseline = spec.sfp.without_planning()
    assert baseline.pseudo_labels.weight == 0.0 and spec.sfp.pseudo_labels.weight == 0.7  # a copy, the spec kept
    assert dataclasses.replace(baseline.pseudo_labels, weight=0.7) == spec.sfp.pseudo_labels  # only the weight
    assert type(spec.data.build()).__name__ == "FieldDataModule"
