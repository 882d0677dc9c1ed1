"""The XOR/MNIST notebook's MNIST study: parameter counts, the 800-feature walk-through,
Table 2, a smoke run."""

from pathlib import Path

import numpy as np
import pytest

from jaxcx.config import load_config
from jaxcx.data.builders import mnist_root
from jaxcx.data.errors import DataError
from jaxcx.models import build_model, summary
from jaxcx.studies import mnist as mnist_study

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    return load_config(str(REPO / "configs/mnist.py"))


def test_parameter_counts_match_the_seed(config):
    counts = {entry: summary(build_model(config.study[entry].model), (1, 28, 28, 1)).total_params
              for entry in ("baseline", "candidate")}
    assert counts == {"baseline": 109_386, "candidate": 12_810}


def test_walkthrough_explains_the_800_features(config):
    table, features = mnist_study.shape_walkthrough(config.study.candidate.model)
    assert features == 800
    shapes = [line.rsplit("|", 2)[-2].strip() for line in table.splitlines()[2:]]
    assert shapes == ["28 x 28 x 1", "26 x 26 x 16", "13 x 13 x 16", "11 x 11 x 32",
                      "5 x 5 x 32", "800", "10"]


def test_comparison_table_gives_difference_and_increase():
    def result(label, per_digit, overall):
        return mnist_study.ModelResult(label.lower(), label, 0, "", {"test/accuracy": overall},
                                         np.asarray(per_digit), np.zeros((10, 10)), 0, 0.0, Path())

    table = mnist_study.comparison_table(result("FF", [0.9] * 10, 0.9), result("CNN", [0.99] * 10, 0.99))
    lines = table.splitlines()
    assert lines[0].startswith("| Digit | FF | CNN | Difference |")
    assert lines[2] == "| 0 | 0.9000 | 0.9900 | +0.0900 | +9.00 | +10.00 |"
    assert lines[-1].startswith("| all | 0.9000 | 0.9900 |")


def test_missing_mnist_says_where_to_put_it(tmp_path, config):
    with config.unlocked():
        config.data.root = str(tmp_path)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz.*--config\.data\.root"):
        mnist_root(config.data)


def test_shared_mnist_is_found_by_default(shared_data, config, monkeypatch):
    monkeypatch.setenv("JAXCX_SHARED_DATA", str(shared_data))
    assert config.data.root == "" and mnist_root(config.data) == shared_data / "mnist"


@pytest.mark.slow
def test_smoke_study_on_generated_idx_writes_report(tmp_path):
    config = load_config(str(REPO / "configs/mnist.py:smoke"), ["train.num_epochs=1"])
    results = mnist_study.run_mnist_study(config, tmp_path)
    assert [r.num_params for r in results] == [109_386, 12_810]
    assert all(r.per_digit.shape == (10,) and r.confusion.sum() == 400 for r in results)
    report = mnist_study.write_report(results, config, tmp_path).read_text()
    assert report.startswith("# mnist_study: feed-forward network versus CNN on MNIST")
    assert "| Digit | Feed Forward | CNN | Difference |" in report
    for figure in ("per_digit_accuracy", "feed_forward_training_curves", "cnn_confusion"):
        assert (tmp_path / "plots" / f"{figure}.png").stat().st_size > 0
