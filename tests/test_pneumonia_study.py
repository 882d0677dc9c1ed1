"""The pneumonia study: arms as config edits, clear data errors, reproducible runs, and the
quick study end to end, with its numbers pinned on one processor."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcx.config import load_config
from jaxcx.data.errors import DataError
from jaxcx.data.registry import build_data
from jaxcx.run import load_result, run_config, train_and_evaluate
from jaxcx.studies.pneumonia import ARMS, arm_changes, run_study

REPO = Path(__file__).resolve().parents[1]
CONFIG = f"{REPO}/configs/pneumonia.py"

# (validation accuracy, loss) of every run of the quick study below and its test
# operating points. The numbers of XLA:CPU programs depend on the processor's vector
# instructions (between two x86-64 machines a validation loss moved by 5e-6 and, through
# BatchNorm and a sweep, by 4e-4), so they are compared on the processor that made them,
# PINNED_ON; elsewhere the test says so and skips that comparison after every other check.
# On another processor the same code gave the same selection, sweep choice and test
# accuracies, losses within 4e-4 and one validation image of no_tuning/seed_29 flipped.
PINNED_ON = "AuthenticAMD family 25 model 1 (avx avx2 fma)"
PINNED_RUNS = {
    "baseline/seed_28": (0.8125, 0.539558), "baseline/seed_29": (0.8125, 0.587271),
    "weighted_loss/seed_28": (0.6875, 0.437862), "weighted_loss/seed_29": (0.9375, 0.134776),
    "regularisation/seed_28": (0.9375, 0.206355), "regularisation/seed_29": (0.9375, 0.157199),
    "tuned/seed_28": (1.0, 0.149766), "tuned/seed_29": (0.75, 8.698305),
    "all_three/seed_28": (0.8125, 0.297685), "all_three/seed_29": (0.75, 4.955982),
    "no_weighted_loss/seed_28": (1.0, 0.061612), "no_weighted_loss/seed_29": (0.8125, 0.476813),
    "no_regularisation/seed_28": (1.0, 0.128043), "no_regularisation/seed_29": (0.8125, 0.694757),
    "no_tuning/seed_28": (0.8125, 0.37184), "no_tuning/seed_29": (1.0, 0.149222)}
PINNED_SELECTION = "regularisation/seed_29"
PINNED_TEST = {  # the selected run on the test split
    "0.5": {"threshold": 0.5, "accuracy": 15 / 17, "sensitivity": 1.0, "specificity": 0.6},
    "validation": {"threshold": 0.6729797720909119, "accuracy": 16 / 17, "sensitivity": 1.0,
                   "specificity": 0.8}}


def processor() -> str:
    """Vendor, family, model and vector extensions of this machine's CPU."""
    path = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in (path.read_text() if path.is_file() else "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    vector = sorted(f for f in fields.get("flags", "").split() if f.startswith(("avx", "fma", "amx")))
    return (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} model "
            f"{fields.get('model', '?')} ({' '.join(vector)})")


def tiny(cache_dir, *overrides):
    return [f"data.cache_dir={cache_dir}", "data.phantom.num_images=80",
            "data.phantom.min_size=48", "data.phantom.max_size=64", *overrides]


def test_arm_changes_are_the_improvements_edits():
    tuned = {"model.dropout_rate": 0.6, "optim.name": "adam"}
    assert arm_changes(ARMS["baseline"], tuned) == {}
    assert arm_changes(ARMS["no_tuning"], tuned) == {"loss.name": "weighted_ce",
                                                     "model.regularisation": True}
    # No dropout layer without regularisation, so the sweep's rate is not applied.
    assert arm_changes(ARMS["tuned"], tuned) == {"optim.name": "adam"}
    assert arm_changes(ARMS["no_regularisation"], tuned) == {"loss.name": "weighted_ce",
                                                             "optim.name": "adam"}
    assert arm_changes(ARMS["all_three"], tuned) == {
        "loss.name": "weighted_ce", "model.regularisation": True, **tuned}


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    config = run_config(load_config(f"{CONFIG}:combined,quick", tiny(
        tmp_path / "cache", "data.image_size=16", "train.num_epochs=2")))
    data = build_data(config.data, config.seed)
    histories = [train_and_evaluate(config, tmp_path / name, data=data).history
                 for name in ("a", "b")]
    assert len(histories[0]) == 2 and histories[0] == histories[1]


@pytest.mark.parametrize("make_root, message", [
    (lambda tmp: tmp / "nonexistent", "is not a folder; expected the Kaggle layout"),
    (lambda tmp: tmp, "expected the Kaggle layout"),
    (lambda tmp: (tmp / "train" / "cats").mkdir(parents=True) or tmp, "class 'NORMAL'"),
])
def test_bad_data_folder_is_named(tmp_path, make_root, message):
    root = make_root(tmp_path)
    config = load_config(f"{CONFIG}:baseline,cpu", [f"data.root={root}"])
    with pytest.raises(DataError, match=message):
        build_data(config.data, config.seed)


def test_study_fails_at_start_on_a_missing_data_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.pneumonia_study", "--config.data.root=/nonexistent",
         f"--workdir={tmp_path / 'study'}"], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "JAXCX_NO_PROGRESS": "1"})
    assert result.returncode == 2
    assert "/nonexistent is not a folder; expected the Kaggle layout" in result.stderr
    assert not (tmp_path / "study" / "runs").exists()


@pytest.mark.slow
def test_quick_study_end_to_end_resume_and_reproduce(tmp_path):
    config = load_config(f"{CONFIG}:quick", tiny(tmp_path / "cache", "data.phantom.num_images=160"))
    study = tmp_path / "study"
    result = run_study(config, study, spec="configs/pneumonia.py:quick", log=lambda _: None)
    assert set(result.arms) == set(ARMS) and all(len(r) == 2 for r in result.arms.values())
    assert len(list((study / "sweep" / "trials").iterdir())) == 3
    runs = {run.key: run for runs in result.arms.values() for run in runs}
    pinned = processor() == PINNED_ON
    if pinned:
        for key, (accuracy, loss) in PINNED_RUNS.items():
            assert runs[key].val["accuracy"] == accuracy, key
            assert runs[key].val["loss"] == pytest.approx(loss, abs=2e-6), key
        assert result.selected.key == PINNED_SELECTION
        for name, expected in PINNED_TEST.items():
            point = result.test["operating_points"][name]
            assert {k: point[k] for k in expected} == pytest.approx(expected, abs=1e-7), name
    report = (study / "report.md").read_text()
    for section in ("## 1. Data", "## 2. Validation", "## 3. Sweep", "## 4. Selection",
                    "## 6. Targets", "sweep_history.png", "test_most_wrong.png"):
        assert section in report
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert len(links) > 20 and all((study / link).is_file() for link in links)
    assert result.test["evaluations"] == 1

    # A second run of the study reads every run back and evaluates nothing again.
    record = result.selected.result.workdir / "test" / "test_metrics.json"
    stamps = {p: p.stat().st_mtime_ns for p in (record, *study.glob("runs/*/*/result.json"))}
    again = run_study(config, study, log=lambda _: None)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again.selected.key == result.selected.key
    assert json.loads(record.read_text())["evaluations"] == 1

    # The printed reproduce command, run by hand, gives the run's metrics.
    run = runs["all_three/seed_28"]
    command = shlex.split(run.command.replace("configs/pneumonia.py", CONFIG))
    assert command[:3] == ["python", "-m", "experiments.train"]
    subprocess.run([sys.executable, *command[1:]], cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "JAXCX_NO_PROGRESS": "1"})
    workdir = Path(next(a for a in command if a.startswith("--workdir=")).split("=", 1)[1])
    by_hand = load_result(workdir if workdir.is_absolute() else REPO / workdir)
    assert by_hand.val_metrics == run.result.val_metrics
    if not pinned:
        pytest.skip(f"every check passed but the pinned numbers: they were made on "
                    f"{PINNED_ON}, this is {processor()}")
