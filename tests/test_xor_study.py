"""The XOR/MNIST notebook's XOR study: parameter counts, grouped training equals
per-setting runs, report."""

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcx.config import load_config
from jaxcx.studies import xor as xor_study
from jaxcx.train import multiseed
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer

NOTEBOOK_TABLE_1_PARAMS = {1: (5, 7, 9, 11), 2: (9, 15, 21, 27), 3: (13, 25, 37, 49)}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_config():
    return load_config(str(REPO / "configs/xor_study.py:smoke"))


@pytest.fixture(scope="module")
def smoke_study(smoke_config):
    return xor_study.run_xor_study(smoke_config)


def test_parameter_counts_match_the_notebook_table():
    config = load_config(str(REPO / "configs/xor_study.py"))
    for width, counts in NOTEBOOK_TABLE_1_PARAMS.items():
        for depth, expected in enumerate(counts):
            model = xor_study.xor_model(config, xor_study.Setting(width, depth))
            shapes = jax.eval_shape(lambda: multiseed.init_params(model, jax.random.key(0), jnp.ones((1, 2))))
            assert sum(leaf.size for leaf in jax.tree.leaves(shapes)) == expected, (width, depth)


def test_settings_stack_deepest_first_widths_apart_unless_activation_keeps_zero(smoke_config):
    settings = xor_study.settings_grid((1, 2, 3), (0, 1))
    groups = xor_study.training_groups(smoke_config, settings)
    assert [[(s.width, s.depth) for s in group] for group in groups] == [
        [(1, 1), (2, 1), (3, 1), (1, 0), (2, 0), (3, 0)]]
    sigmoid = load_config(str(REPO / "configs/xor_study.py:smoke"), ["model.activation=sigmoid"])
    assert [[(s.width, s.depth) for s in group] for group in
            xor_study.training_groups(sigmoid, settings)] == [[(1, 1), (1, 0)], [(2, 1), (2, 0)],
                                                              [(3, 1), (3, 0)]]


def test_stacked_initial_params_equal_each_settings_flax_init(smoke_config):
    settings = xor_study.settings_grid((1, 2, 3), (0, 1, 2, 3))
    group, = xor_study.training_groups(smoke_config, settings)
    keys = jax.random.split(jax.random.key(3), 2)
    stacked = jax.jit(lambda k: xor_study.initial_params(smoke_config, group, k, 2))(keys)
    for row, setting in enumerate(group):
        model = xor_study.xor_model(smoke_config, setting)
        expected = jax.vmap(lambda key: multiseed.init_params(model, key, jnp.ones((1, 2))))(keys)
        own = xor_study.own_params(stacked, group, row,
                                   xor_study.layer_shapes(smoke_config, setting, 2))
        jax.tree.map(np.testing.assert_array_equal, own, expected)


def test_stacked_training_equals_each_setting_alone(smoke_config, smoke_study):
    """MLPs trained stacked (narrow ones zero-padded) give the same results as alone."""
    config = smoke_config
    (train_x, train_y), (eval_x, eval_y) = xor_study.load_xor_data(config)
    data = {"image": jnp.asarray(train_x), "label": jnp.asarray(train_y)}
    keys = jax.random.split(jax.random.key(config.seed), config.study.num_seeds)
    orders = multiseed.epoch_orders(keys, config.train.num_epochs, len(train_y))
    optimizer, _ = make_optimizer(config.optim, 1)
    for result in smoke_study.results:
        model = xor_study.xor_model(config, result.setting)
        trainer = multiseed.make_seed_trainer(
            model, optimizer, make_loss(config.loss),
            num_epochs=config.train.num_epochs, batch_size=config.train.batch_size)
        alone = jax.jit(jax.vmap(trainer, in_axes=(0, None, 0)))(keys, data, orders)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     alone.params, result.params)
        np.testing.assert_allclose(alone.epoch_loss, result.epoch_loss, rtol=1e-5)
        logits = multiseed.apply_seeds(model, alone.params, jnp.asarray(eval_x))
        np.testing.assert_allclose(np.mean((logits[..., 0] >= 0) == (eval_y == 1), axis=1),
                                   result.eval_accuracy)


def test_report_has_table_and_figures(smoke_config, smoke_study, tmp_path):
    report = xor_study.write_report(smoke_study, smoke_config, tmp_path).read_text()
    assert report.startswith("# xor_study: deep versus wide MLPs on XOR")
    assert "| Width | Depth | Mean accuracy | Standard deviation |" in report
    table_rows = [line for line in report.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[:2] for row in table_rows] == [["| 1", "0"], ["| 1", "1"],
                                                           ["| 3", "0"], ["| 3", "1"]]
    for figure in ("xor_data", "xor_decision_boundaries", "xor_accuracy", "xor_training_loss"):
        assert f"plots/{figure}.png" in report
        assert (tmp_path / "plots" / f"{figure}.png").stat().st_size > 0
    assert (tmp_path / "results.json").is_file()


def test_experiment_entry_point_writes_report(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "experiments.xor_study", "--config=configs/xor_study.py:smoke",
         f"--workdir={tmp_path}", "--config.study.num_seeds=1"],
        cwd=REPO, check=True, capture_output=True, timeout=120)
    assert "Table 1" in (tmp_path / "report.md").read_text()
