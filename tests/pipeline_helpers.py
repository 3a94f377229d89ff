"""A tiny storms pipeline config (16x16 frames, a few steps per stage) shared by the pipeline tests."""

from pathlib import Path

import yaml

DATA = {"dataset": "storms", "n_sequences": 16, "frames": 6, "size": 16, "windows": {"context": 3, "target": 3},
        "loading": {"batch_size": 4}, "splits": {"val_fraction": 0.25, "test_fraction": 0.25}}
AGENT = {"class_path": "sfp.forecasting.GridForecaster", "init_args": {
    "backbone": "simvp", "context_len": 3, "target_len": 3, "normalization": {"global_norm": True},
    "backbone_kwargs": {"hidden_spatial": 4, "hidden_temporal": 8, "spatial_layers": 2, "temporal_blocks": 1}}}
TRAINER = {"enable_progress_bar": False, "accelerator": "cpu"}  # the CPU behaviour, also on a GPU machine
CONFIG = {
    "seed_everything": 0,
    "data": {"class_path": "sfp.data.FieldDataModule", "init_args": DATA},
    "agent": AGENT,
    "agent_trainer": {"max_steps": 3, **TRAINER},
    "world_model": {"architecture": {"in_frames": 3, "out_frames": 3, "width": 8, "encoder_blocks": 1,
                                     "decoder_blocks": 1, "code_dim": 4, "codebook_size": 16}},
    "world_model_trainer": {"max_steps": 3, **TRAINER},
    "sfp": {"planner": {"kind": "best_of_k", "imagination": {"samples": 4, "candidates": 2}},
            "pseudo_labels": {"weight": 1.0}},
    "sfp_trainer": {"max_steps": 2, **TRAINER},
    "report": {"gif_samples": 2},
}


def write_config(path: Path, run_dir: Path, **changes) -> Path:
    """The tiny config with ``run_dir`` (and top-level sections replaced by ``changes``) written to ``path``."""
    path.write_text(yaml.safe_dump({**CONFIG, "run_dir": str(run_dir), **changes}))
    return path
