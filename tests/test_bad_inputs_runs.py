"""Bad inputs to `sfp fit/test/pipeline/demo` and bad checkpoint files: each ends with exit code 2, exactly one line
on stderr naming the problem, and no file that existed before changed (nothing is created for a pipeline run)."""

import hashlib

import pytest
import torch
import yaml

from pipeline_helpers import AGENT, DATA, write_config
from sfp.cli.main import main

FIT = {"seed_everything": 0, "trainer": {"max_steps": 1, "enable_progress_bar": False},
       "model": AGENT, "data": {"class_path": "sfp.data.FieldDataModule", "init_args": DATA}}


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.fixture
def files(tmp_path):
    """A tiny fit config (its run directory inside tmp_path), a pipeline config and bad files of every kind."""
    run = tmp_path / "run"
    fit = tmp_path / "fit.yaml"
    fit.write_text(yaml.safe_dump({**FIT, "trainer": {**FIT["trainer"], "default_root_dir": str(run)}}))
    write_config(tmp_path / "pipe.yaml", tmp_path / "piperun")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "broken.yaml").write_text("model: [1,\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "text.ckpt").write_text("not a checkpoint\n")
    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "evil.ckpt")
    torch.save({"state_dict": {"w": torch.ones(3)}, "hyper_parameters": {}}, tmp_path / "good.ckpt")
    (tmp_path / "truncated.ckpt").write_bytes((tmp_path / "good.ckpt").read_bytes()[:200])
    (tmp_path / "popen.yaml").write_text(yaml.safe_dump({**yaml.safe_load((tmp_path / "pipe.yaml").read_text()),
                                                        "data": {"class_path": "subprocess.Popen",
                                                                 "init_args": {"args": "touch pwned", "shell": True}}}))
    (tmp_path / "used" / "checkpoints").mkdir(parents=True)
    (tmp_path / "used" / "checkpoints" / "last.ckpt").write_bytes((tmp_path / "good.ckpt").read_bytes())
    (tmp_path / "piped" / "agent" / "checkpoints").mkdir(parents=True)  # a finished pipeline's folder
    (tmp_path / "piped" / "manifest.json").write_text('{"stages": {}}')
    (tmp_path / "piped" / "metrics.json").write_text('{"models": {}}')
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 11)]
    (tmp_path / "laughs.yaml").write_text("\n".join([*laughs, "model: *a10"]) + "\n")
    (tmp_path / "deep.yaml").write_text("model: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "endless.yaml").write_text("model: &x [1, *x]\n")
    return tmp_path


CASES = [
    (["fit", "--config", "{t}/nosuch.yaml"], "no such config file"),
    (["fit", "--config", "{t}"], "is a directory"),
    (["fit", "--config", "{t}/empty.yaml"], "the config is empty"),
    (["fit", "--config", "{t}/broken.yaml"], "not valid YAML"),
    (["fit", "--config", "{t}/list.yaml"], "a config is a mapping"),
    (["fit", "--config", "{t}/fit.yaml", "--model.init_args.context_lne", "3"], "context_lne"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.max_steps", "abc"], "max_steps"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.max_steps", "-5"], "max_steps` must be a non-negative"),
    (["fit", "--config", "{t}/fit.yaml", "--data", "subprocess.Popen"], "data"),
    (["fit", "--config", "{t}/fit.yaml", "--model", "sfp.planning.WorldModelModule",
      "--model.init_args.samples", "3"], "model.init_args.samples moved to model.init_args.imagination.samples"),
    (["fit", "--config", "{t}/fit.yaml", "--data.init_args.stride", "3"],
     "data.init_args.stride moved to data.init_args.windows.stride"),
    (["fit", "--config", "{t}/fit.yaml", "--data.init_args.windows.stride", "0"], "windows.stride must be at least 1"),
    (["fit", "--config", "sensors_linear", "--data.init_args.augment", "false"], "augment: null for none"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/used"], "holds a run already"),
    (["fit", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/truncated.ckpt"], "not a readable checkpoint"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/empty.yaml/run"], "cannot write the run"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--run_dir", "{t}/empty.yaml/run"], "cannot write the run"),
    (["test", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/nosuch.ckpt"], "no such checkpoint file"),
    (["test", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/empty.ckpt"], "not a readable checkpoint"),
    (["test", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/text.ckpt"], "not a readable checkpoint"),
    (["test", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/truncated.ckpt"], "not a readable checkpoint"),
    (["test", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/evil.ckpt"], "holds pickled objects"),
    (["test", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}"], "is a directory"),
    (["test", "--config", "{t}/fit.yaml", "--ckpt_path", "best"], "no such checkpoint; train first"),
    (["predict", "--config", "{t}/fit.yaml", "--ckpt_path", "last"], "no such checkpoint; train first"),
    (["pipeline", "--config", "{t}/nosuch.yaml"], "no such config file"),
    (["pipeline", "--config", "{t}/empty.yaml"], "the config is empty"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--set", "sfp.pseudo_weight=1"], "--set KEY=VALUE is gone"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.pseudo_weight", "1"], "moved to sfp.pseudo_labels.weight"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--until", "nowhere"], "'data', 'world_model'"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp_trainer.max_steps", "-5"], "max_steps must be >= -1"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp_trainer.max_steps", "abc"], "max_steps"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.planner.kind", "greedy"], "planner.kind"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.planner.imagination.temperature", "nan"], "temperature"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.pseudo_labels.kind", "truth"], "pseudo_labels.kind"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.pseudo_labels.kind", "objects"], "object reward"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_loss", "{{name: soft_csi, thresholds: [5], pool: 0}}"],
     "surrogate_loss: pool"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_loss", "{{name: soft_csi, thresholds: [5], size: 3}}"],
     "surrogate_loss: surrogate 'soft_csi'"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_loss", "{{name: soft_iou}}"],
     "unknown surrogate 'soft_iou'"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_loss", "{{thresholds: [5]}}"],
     "surrogate_loss: a surrogate"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_soft_csi", "{{thresholds: [5]}}"],
     "surrogate_soft_csi is surrogate_loss now"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--world_model.architecture.width", "0"], "architecture.width"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_weights", "[0.5, -1]"], "surrogate_weights"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_weights", "[]"], "surrogate_weights"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.planner.centring", "reconstruction"], "centres ensemble members"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.pseudo_labels.beta", "-1"], "pseudo_labels.beta"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.pseudo_labels.beta", "10", "--sfp.planner.kind", "beam"],
     "beam search keeps partial"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--data.init_args.dataset", "navier_stokes", "--balanced_mse_baseline",
      "true"], "balanced_mse_baseline: balanced MSE bins intensities by event thresholds; the navier_stokes task "
               "has none"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--data.init_args.frames", "2"], "longer than the 2 frames"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--agent.init_args.backbone", "transformer"], "unknown backbone"),
    (["pipeline", "--config", "{t}/popen.yaml"], "data"),
    (["demo", "--sfp.pseudo_labels.weight", "-1"], "pseudo_labels.weight"),
    # run folders: what made them, and the checkpoint a command names
    (["test", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/piped", "--ckpt_path", "{t}/good.ckpt"],
     "belongs to a `sfp pipeline` run"),
    (["predict", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/piped", "--ckpt_path",
      "{t}/good.ckpt"], "belongs to a `sfp pipeline` run"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/piped/agent"], "lies inside"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/piped", "--ckpt_path", "last"],
     "belongs to a `sfp pipeline` run"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--run_dir", "{t}/used"], "belongs to a `sfp fit` run"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--run_dir", "{t}/piped/agent"], "lies inside"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/used", "--ckpt_path", "best"],
     "no such checkpoint"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}/used", "--force", "true"],
     "holds a run already"),
    # options checked before any work
    (["fit", "--config", "{t}/fit.yaml", "--seed_everything", "-1"], "seed_everything must be in 0 .. 4294967295"),
    (["fit", "--config", "{t}/fit.yaml", "--seed_everything", "4294967296"], "seed_everything must be in 0"),
    (["fit", "--config", "{t}/fit.yaml", "--checkpoint_every", "-1"], "checkpoint_every must be >= 1"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--seed_everything", "-1"], "seed_everything must be in 0"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--checkpoint_every", "-1"], "checkpoint_every must be >= 1"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.reward", "os:system"],
     "must be a function (pred, target, **options)"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.reward", "nosuchmodule:f"], "cannot import"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--world_model_from", "{t}/good.ckpt"], "not a world-model checkpoint"),
    (["predict", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/good.ckpt", "--ensemble", "2",
      "--world_model_checkpoint", "{t}/good.ckpt"], "not a world-model checkpoint"),
    (["predict", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/good.ckpt", "--output", "{t}/" + "f" * 300 + ".npz"],
     "file name is"),
    (["predict", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/good.ckpt", "--output", "{t}/empty.yaml/f.npz"],
     "not a directory"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--run_dir", "{t}"], "is not empty"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--run_dir", ""], "the run folder is empty"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.default_root_dir", "{t}"], "is not empty"),
    (["fit", "--config", "{t}/fit.yaml", "--trainer.devices", "1000"], "more CPU processes than this machine's"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--agent_trainer.devices", "1000"], "more CPU processes"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp_trainer.accelerator", "tpu"], "sfp_trainer"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--report.gif_samples", "-1"], "report.gif_samples must be >= 0"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.planner.imagination.samples", "100000000000"],
     "sfp.planner.imagination.samples 100000000000"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--data.init_args.size", "100000"], "storms data of shape"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--agent.init_args.backbone_kwargs.spatial_layers", "1000000000000"],
     "spatial_layers must be at most 256"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--world_model.architecture.decoder_blocks", "100000"],
     "decoder_blocks must be at most 256"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--sfp.planner.imagination", "1"], "sfp.planner.imagination"),
    (["predict", "--config", "{t}/fit.yaml", "--ckpt_path", "{t}/good.ckpt", "--gif_samples", "-1"],
     "--gif_samples must be >= 0"),
    # bounded YAML: aliases, depth, self-reference, in files and in values
    (["fit", "--config", "{t}/laughs.yaml"], "expands to more than 100,000 values"),
    (["pipeline", "--config", "{t}/laughs.yaml"], "expands to more than 100,000 values"),
    (["table", "--config", "{t}/laughs.yaml"], "expands to more than 100,000 values"),
    (["fit", "--config", "{t}/deep.yaml"], "nested deeper than 64 levels"),
    (["pipeline", "--config", "{t}/endless.yaml"], "refers to a node that contains it"),
    (["fit", "--config", "{t}/fit.yaml", "--data.init_args.size", "[" * 3000 + "]" * 3000],
     "nested deeper than 64 levels"),
    # a class path names a class its module defines, checked without importing the module
    (["fit", "--config", "{t}/fit.yaml", "--data", "this.Foo"], "module 'this' defines no 'Foo'"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--agent", "nosuchpackage.module.Forecaster"], "no such module"),
]


def _digests(root):
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(c[0][:1] + c[0][3:5]) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(files, argv, words, capsys, monkeypatch):
    monkeypatch.chdir(files)
    before = _digests(files)
    assert main([part.format(t=files) for part in argv]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("sfp: error: ") and words in err, err
    assert "Beautiful is better than ugly" not in out  # the class path `this.Foo` never ran `import this`
    assert _digests(files) == before
    assert not (files / "piperun").exists() and not (files / "pwned").exists() and not (files / "runs").exists()


def test_a_forking_strategy_after_gpu_work_is_refused_in_one_line(monkeypatch):
    """CUDA does not survive a fork: ``ddp_fork`` after GPU work in this process is a user error, ``ddp`` is not."""
    from sfp.errors import UserError
    from sfp.training import prepare_strategy

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(UserError, match="'ddp_fork' forks this process, which has already used the GPU"):
        prepare_strategy("ddp_fork")
    prepare_strategy("ddp")
