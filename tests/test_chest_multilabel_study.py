"""The multi-label chest X-ray study (quick profile, tiny models) and run comparison."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxcx.config import load_config
from jaxcx.evaluation import Outputs
from jaxcx.studies.chest_multilabel import run_study
from jaxcx.studies.compare import CompareError, compare_runs
from tests.conftest import REPO_ROOT

SPEC = f"{REPO_ROOT}/configs/chest_multilabel_study.py:quick"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chest_study")
    config = load_config(SPEC, [f"data.cache_dir={workdir / 'cache'}", "data.image_size=16",
                                "data.generated.num_patients=40", "study.seeds=(0,)",
                                "study.min_positives=3", "train.num_epochs=2"])
    return config, workdir, run_study(config, workdir, spec=SPEC, log=lambda _: None)


def test_study_trains_every_arm_selects_on_validation_and_tests_once(study):
    config, workdir, result = study
    assert set(result.runs) == {"densenet", "resnet"}
    runs = {arm: runs[0] for arm, runs in result.runs.items()}
    assert runs["resnet"].result.config.model.name == "resnet"
    best = max(runs, key=lambda arm: runs[arm].val["roc_auc"])
    assert result.selected.arm == best and result.test["evaluations"] == 1
    assert result.test["task"] == "multilabel"
    report = (workdir / "report.md").read_text()
    for name in config.data.labels or result.selected.result.val.class_names:
        assert f"| {name} |" in report
    for link in re.findall(r"\]\(([^)]+\.png)\)", report):
        assert (workdir / link).is_file(), link
    # The validation table's cells are the runs' own per-label AUCs (one seed: std 0).
    label = result.selected.result.val.class_names[0]
    value = runs["densenet"].val[f"roc_auc/{label}"]
    assert f"{value:.3f} +- 0.000" in report.split("## Selection")[0]


def test_a_finished_study_is_read_back_without_training_or_testing_again(study):
    config, workdir, result = study
    stamps = {p: p.stat().st_mtime for p in workdir.glob("runs/*/seed_0/result.json")}
    again = run_study(config, workdir, spec=SPEC, log=lambda _: None)
    assert again.selected.key == result.selected.key and again.test == result.test
    assert {p: p.stat().st_mtime for p in stamps} == stamps


def test_compare_tabulates_differing_fields_and_sklearn_aucs(study):
    _, workdir, result = study
    dirs = [runs[0].result.workdir for runs in result.runs.values()]
    comparison = compare_runs(dirs, labels=["dense", "res"])
    assert "| `model.name` * | densenet | resnet |" in comparison.parameters
    assert "| `data.image_size` | 16 | 16 |" in comparison.parameters
    val = Outputs.load(dirs[1] / "val_outputs.npz")
    j = next(j for j in range(val.labels.shape[1]) if 0 < val.labels[:, j].sum() < len(val.labels))
    name = val.class_names[j]
    auc = skm.roc_auc_score(val.labels[:, j], val.probs[:, j])
    row = next(line for line in comparison.metrics.splitlines()
               if line.startswith(f"| {name}: val roc_auc |"))
    assert row.split("|")[3].strip() == f"{auc:.4f}"
    with pytest.raises(CompareError, match="holds no finished run"):
        compare_runs([workdir / "nowhere"])


def test_compare_entry_point_prints_the_tables_and_refuses_a_bad_folder(study, tmp_path):
    _, _, result = study
    dirs = ",".join(str(runs[0].result.workdir) for runs in result.runs.values())
    done = subprocess.run([sys.executable, "-m", "experiments.compare", f"--workdirs={dirs}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| parameter |" in done.stdout and "val macro roc_auc" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "experiments.compare",
                          f"--workdirs={tmp_path}"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "holds no finished run" in bad.stderr


def test_selection_file_names_the_chosen_run(study):
    _, workdir, result = study
    saved = json.loads((workdir / "selection.json").read_text())
    assert saved["run"] == result.selected.key
    assert np.isfinite(result.selected.val["roc_auc"])
