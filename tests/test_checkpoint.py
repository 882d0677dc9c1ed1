"""Transfer learning through checkpoints, and checkpoints that do not fit the model."""

import jax
import numpy as np
import pytest

from jaxcx import tracking
from jaxcx.checkpoint import Checkpointer, CheckpointError, load_saved_state, transfer_subtrees
from jaxcx.config import load_config
from jaxcx.data.registry import build_data
from jaxcx.train.loop import evaluate_best, fit, initial_params

TINY = ["--config.data.train_size=64", "--config.data.val_size=32", "--config.data.test_size=32",
        "--config.train.batch_size=16", "--config.train.eval_batch_size=32",
        "--config.train.num_epochs=1", "--config.tracking.tensorboard=false"]


def autoencoder_config():
    config = load_config("configs/xor.py:quick", TINY + ["--config.loss.name=sigmoid_mse",
                                                         "--config.train.best_metric=val/loss",
                                                         "--config.train.best_mode=min"])
    with config.unlocked():
        config.model = {"name": "mlp_autoencoder", "features": (8, 4)}
    return config


def classifier_config(pretrained, subtrees=("encoder",)):
    config = load_config("configs/xor.py:quick", TINY + [f"--config.init_from.workdir={pretrained}"])
    with config.unlocked():
        config.model = {"name": "mlp_encoder_classifier", "features": (8, 4), "num_classes": 1}
        config.init_from.subtrees = subtrees
    return config


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("autoencoder")
    config = autoencoder_config()
    result = fit(config, workdir, build_data(config.data, config.seed))
    assert result.best_step == 4 and "val/loss" in result.best_metrics
    return workdir


def test_encoder_moves_into_a_classifier_with_a_new_head(pretrained, tmp_path):
    config = classifier_config(pretrained)
    data = build_data(config.data, config.seed)
    saved = load_saved_state(pretrained / "checkpoints")["params"]
    fresh = {"encoder": jax.tree_util.tree_map(np.zeros_like, saved["encoder"]),
             "head": {"kernel": np.ones((4, 1), np.float32), "bias": np.zeros(1, np.float32)}}
    moved = initial_params(config, fresh)
    for a, b in zip(jax.tree_util.tree_leaves(moved["encoder"]),
                    jax.tree_util.tree_leaves(saved["encoder"])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(moved["head"]["kernel"], fresh["head"]["kernel"])
    result = fit(config, tmp_path, data)  # trains from the moved encoder
    assert result.best_step == 4


def test_subtree_errors_name_what_is_there(pretrained):
    saved = load_saved_state(pretrained / "checkpoints")["params"]
    with pytest.raises(CheckpointError, match="'trunk' not in the checkpoint; it has: decoder, encoder"):
        transfer_subtrees({"trunk": {}}, saved, ["trunk"])
    wrong = {"encoder": jax.tree_util.tree_map(lambda x: np.zeros((1, *x.shape)), saved["encoder"])}
    with pytest.raises(CheckpointError, match="subtree 'encoder' has shapes"):
        transfer_subtrees(wrong, saved, ["encoder"])


def test_resuming_with_another_model_fails_clearly(pretrained):
    config = classifier_config("")
    with pytest.raises(CheckpointError, match="does not match this model/config.*--overwrite"):
        fit(config, pretrained, build_data(config.data, config.seed))


def test_best_checkpoint_in_min_mode_is_the_lowest_logged_val_loss(tmp_path):
    """Twelve evaluations of a bouncing SGD run: with best_mode=min on val/loss the best
    checkpoint is the step of the lowest logged loss (not the highest, not the last), and
    restoring it reproduces that loss."""
    config = load_config("configs/xor.py:quick", TINY + [
        "--config.train.num_epochs=6", "--config.train.eval_every_steps=2",
        "--config.optim.name=sgd", "--config.optim.learning_rate=2.0",
        "--config.train.best_metric=val/loss", "--config.train.best_mode=min"])
    data = build_data(config.data, config.seed)
    result = fit(config, tmp_path, data)
    rows = [row for row in tracking.read_metrics(tmp_path) if "val/loss" in row]
    assert len(rows) == 12
    losses = np.array([row["val/loss"] for row in rows])
    lowest, highest = rows[int(np.argmin(losses))]["step"], rows[int(np.argmax(losses))]["step"]
    assert lowest not in (highest, rows[-1]["step"])  # the case tells the modes apart
    assert result.best_step == lowest
    assert result.best_metrics["val/loss"] == losses.min()
    assert Checkpointer(tmp_path / "checkpoints").best_step() == lowest
    best, step = evaluate_best(config, tmp_path, data, data.val, "val")
    assert step == lowest and best.metrics["val/loss"] == pytest.approx(losses.min(), rel=1e-5)
