"""`sfp fit` in the pipeline's words: a config's agent (or world model), its trainer section and run_dir are
Lightning's model, trainer and default_root_dir; a pipeline config trains its agent."""

import pytest
import torch
import yaml

from pipeline_helpers import CONFIG, write_config
from sfp.cli.fit_dialect import in_pipeline_words, lightning_arguments, lightning_config, role_of
from sfp.cli.main import main
from sfp.forecasting.checkpoints import load_forecaster

AGENT = {"class_path": "sfp.forecasting.GridForecaster", "init_args": {"backbone": "unet"}}


def test_a_config_in_the_pipelines_words_is_lightnings_model_trainer_and_folder():
    config = {"seed_everything": 3, "run_dir": "runs/x", "agent": AGENT, "agent_trainer": {"max_steps": 5},
              "data": {"class_path": "D"}}
    assert role_of([config], []) == "agent"
    assert lightning_config(config, "agent") == (
        {"seed_everything": 3, "data": {"class_path": "D"}, "model": AGENT,
         "trainer": {"max_steps": 5, "default_root_dir": "runs/x"}}, [])


def test_a_world_model_config_names_its_arguments_alone():
    config = {"world_model": {"architecture": {"width": 8}}, "world_model_trainer": {"max_epochs": 2}}
    assert role_of([config], []) == "world_model"
    assert lightning_config(config, "world_model")[0] == {
        "model": {"class_path": "sfp.planning.WorldModelModule", "init_args": {"architecture": {"width": 8}}},
        "trainer": {"max_epochs": 2}}


def test_a_pipeline_config_trains_its_agent_and_names_what_it_sets_aside():
    config = {**CONFIG, "run_dir": "r", "surrogate_baseline": True}
    translated, aside = lightning_config(config, "agent")
    assert translated["model"] == CONFIG["agent"] and translated["trainer"]["max_steps"] == 3
    assert aside == ["report", "sfp", "sfp_trainer", "surrogate_baseline", "world_model", "world_model_trainer"]
    assert role_of([{"model": AGENT, "trainer": {}}], ["--trainer.max_steps", "3"]) is None  # Lightning's words


def test_overrides_and_messages_in_the_pipelines_words():
    argv = ["fit", "--agent.init_args.backbone", "fno", "--agent_trainer.max_steps=7", "--run_dir", "r",
            "--agent", "X", "--data.init_args.size", "8", "--model.init_args.width", "4"]
    assert lightning_arguments(argv, "agent") == [
        "fit", "--model.init_args.backbone", "fno", "--trainer.max_steps=7", "--trainer.default_root_dir", "r",
        "--model", "X", "--data.init_args.size", "8", "--model.init_args.width", "4"]
    assert lightning_arguments(["test", "--world_model.agent_checkpoint", "a.ckpt"], "world_model") == [
        "test", "--model.init_args.agent_checkpoint", "a.ckpt"]
    assert role_of([], ["--world_model.agent_checkpoint", "a"]) == "world_model"
    assert (in_pipeline_words('Parser key "model": Option \'model.init_args.backbon\' and trainer.max_stepz',
                              "agent") == 'Parser key "agent": Option \'agent.init_args.backbon\' and '
                                          'agent_trainer.max_stepz')
    assert in_pipeline_words("another --trainer.default_root_dir", "agent") == "another --run_dir"


def test_sfp_fit_trains_a_pipeline_configs_agent_in_its_run_dir(tmp_path, capsys):
    config = write_config(tmp_path / "pipe.yaml", tmp_path / "run")
    assert main(["fit", "--config", str(config), "--agent_trainer.max_steps", "2"]) == 0
    assert "set aside: report, sfp, sfp_trainer, world_model, world_model_trainer" in capsys.readouterr().out
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2
    agent = load_forecaster(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert type(agent).__name__ == "GridForecaster" and agent.target_len == 3  # the pipeline's agent
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["trainer"]["default_root_dir"] == str(tmp_path / "run")


@pytest.mark.parametrize("override, words", [
    (["--agent.init_args.backbon", "simvp"], "agent.init_args.backbon|backbon"),
    (["--agent_trainer.max_stepz", "3"], "--agent_trainer.max_stepz"),
    (["--data.init_args.context", "3"], "data.init_args.context moved to data.init_args.windows.context"),
])
def test_mistakes_in_the_pipelines_words_are_named_in_them(tmp_path, capsys, override, words):
    config = write_config(tmp_path / "pipe.yaml", tmp_path / "run")
    assert main(["fit", "--config", str(config), *override]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert any(word in error for word in words.split("|")) and "model" not in error.replace("world_model", "")
