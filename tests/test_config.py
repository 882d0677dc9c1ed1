"""Config files, variants, overrides and run folders fail early and clearly."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcx.config import ConfigError, apply_overrides, flat_keys, load_config
from jaxcx.workdir import WorkdirError, prepare_workdir

XOR = "configs/xor.py"


def test_variant_and_field_arguments():
    config = load_config(f"{XOR}:width=1,depth=3")
    assert (config.model.width, config.model.depth) == (1, 3)
    quick = load_config(f"{XOR}:quick")
    assert quick.train.num_epochs == 3


def test_overrides_are_typed():
    config = load_config(XOR, ["--config.optim.learning_rate=1", "--config.train.batch_size=64",
                               "--config.tracking.tensorboard=false"])
    assert config.optim.learning_rate == 1.0 and isinstance(config.optim.learning_rate, float)
    assert config.train.batch_size == 64
    assert config.tracking.tensorboard is False


def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(ConfigError) as error:
        load_config(XOR, ["--config.optim.learnig_rate=0.1"])
    message = str(error.value)
    assert "optim.learnig_rate" in message and "Did you mean optim.learning_rate" in message
    assert "train.batch_size" in message  # the list of valid keys


def test_wrong_type_names_field():
    with pytest.raises(ConfigError, match="train.batch_size.*expects int"):
        load_config(XOR, ["--config.train.batch_size=big"])


def test_unknown_variant_lists_variants():
    with pytest.raises(ConfigError, match="unknown config variant 'fast'.*quick"):
        load_config(f"{XOR}:fast")


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("configs/nope.py")


def test_subtree_cannot_be_overwritten_by_scalar():
    config = load_config(XOR)
    with pytest.raises(ConfigError, match="unknown config key 'optim'"):
        apply_overrides(config, ["optim=3"])
    assert "optim.learning_rate" in flat_keys(config)


def test_workdir_records_config_and_refuses_other_configs(tmp_path):
    run = tmp_path / "run"
    config = load_config(XOR)
    prepare_workdir(run, config)
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "xor_mlp"
    (run / "metrics.jsonl").write_text("{}\n")
    prepare_workdir(run, config)  # same config: reused (resume)
    assert (run / "metrics.jsonl").exists()
    other = load_config(XOR, ["--config.seed=1"])
    with pytest.raises(WorkdirError, match="different config.*--overwrite"):
        prepare_workdir(run, other)
    assert (run / "metrics.jsonl").exists()
    prepare_workdir(run, other, overwrite=True)
    assert not (run / "metrics.jsonl").exists()


def test_workdir_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(WorkdirError, match="is a file"):
        prepare_workdir(path, load_config(XOR))


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")  # a file where a parent folder should be: mkdir fails
    with pytest.raises(WorkdirError, match="cannot write to --workdir"):
        prepare_workdir(blocker / "run", load_config(XOR))


def test_entry_points_refuse_stray_positional_arguments(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--config=configs/xor.py",
         f"--workdir={tmp_path / 'run'}", "configs/xor.py"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unexpected arguments: configs/xor.py" in result.stderr
    assert not (tmp_path / "run").exists()
