"""Config files, variants, overrides and run folders fail early and clearly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcx.config import ConfigError, apply_overrides, flat_keys, load_config
from jaxcx.tracking import read_metrics
from jaxcx.workdir import WorkdirError, prepare_workdir

XOR = "configs/xor.py"
REPO = Path(__file__).resolve().parents[1]
TINY_XOR = ["--config=configs/xor.py:quick", "--config.train.num_epochs=1",
            "--config.tracking.tensorboard=false"]


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


def _train(workdir, *args):
    return subprocess.run([sys.executable, "-m", "experiments.train", f"--workdir={workdir}",
                           *TINY_XOR, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "JAXCX_NO_PROGRESS": "1"}, timeout=300)


def test_unknown_override_key_stops_the_launch_before_any_work(tmp_path):
    """A misspelt `--config.` key: status 2, the key named, no run folder made."""
    result = _train(tmp_path / "run", "--config.train.no_such_key=1")
    assert result.returncode == 2
    assert "unknown config key 'train.no_such_key'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_overwrite_flag_replaces_a_run_of_another_config(tmp_path):
    """Another config in the same --workdir is refused (status 2, run untouched); with
    --overwrite the folder is emptied and the new config trains from scratch."""
    run = tmp_path / "run"
    first = _train(run)
    assert first.returncode == 0, first.stderr[-2000:]
    (run / "notes.txt").write_text("left by the first run")
    old_rows = read_metrics(run)

    refused = _train(run, "--config.seed=1")
    assert refused.returncode == 2
    assert "different config" in refused.stderr and "--overwrite" in refused.stderr
    assert json.loads((run / "config.json").read_text())["seed"] == 0
    assert read_metrics(run) == old_rows and (run / "notes.txt").exists()

    replaced = _train(run, "--config.seed=1", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    assert not (run / "notes.txt").exists()
    new_rows = read_metrics(run)
    # 256 examples in batches of 32, one epoch: one evaluation at step 8, from scratch.
    assert [row["step"] for row in new_rows if "val/loss" in row] == [8]
    assert [row["step"] for row in new_rows] == [row["step"] for row in old_rows]
    assert new_rows != old_rows  # seed 1's training, not the first run's rows kept


def test_compilation_cache_keeps_compiled_programs_for_the_next_process(tmp_path):
    """`launch.enable_compilation_cache` (run by every entry point, `--xla_cache_dir`): a
    second process finds the first one's compiled program on disk; '' turns it off."""
    script = (
        "import sys, jax, jax.numpy as jnp\n"
        "from jaxcx import launch\n"
        "assert launch.enable_compilation_cache('') is None\n"
        "assert launch.enable_compilation_cache(sys.argv[1]).name == 'xla'\n"
        "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)\n"
        "print(float(jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3)).sum()))\n")
    runs = [subprocess.run([sys.executable, "-c", script, str(tmp_path / "xla")], cwd=REPO,
                           capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-2000:]
    entries = list((tmp_path / "xla").iterdir())
    assert entries and runs[0].stdout == runs[1].stdout
    assert list((tmp_path / "xla").iterdir()) == entries  # the second process added nothing
