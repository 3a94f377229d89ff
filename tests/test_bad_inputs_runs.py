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
    (["pipeline", "--config", "{t}/pipe.yaml", "--world_model.architecture.width", "0"], "architecture.width"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_weights", "[0.5, -1]"], "surrogate_weights"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--surrogate_weights", "[]"], "surrogate_weights"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--data.init_args.frames", "2"], "longer than the 2 frames"),
    (["pipeline", "--config", "{t}/pipe.yaml", "--agent.init_args.backbone", "transformer"], "unknown backbone"),
    (["pipeline", "--config", "{t}/popen.yaml"], "data"),
    (["demo", "--sfp.pseudo_labels.weight", "-1"], "pseudo_labels.weight"),
]


def _digests(root):
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(c[0][:1] + c[0][3:5]) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(files, argv, words, capsys, monkeypatch):
    monkeypatch.chdir(files)
    before = _digests(files)
    assert main([part.format(t=files) for part in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sfp: error: ") and words in err, err
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
