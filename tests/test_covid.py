"""The COVID study: its data source and split, the common-source resize, Keras' metrics,
save and reload in a fresh process, and the quick study end to end."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from jaxcx import tracking
from jaxcx.config import load_config, with_overrides
from jaxcx.data import covid
from jaxcx.data.errors import BadInputLog, DataError
from jaxcx.data.registry import build_data
from jaxcx.data.synthetic import write_phantom_chest_xrays
from jaxcx.data.transforms import common_source_resolution
from jaxcx.models import build_model
from jaxcx.run import VAL_OUTPUTS_FILE, Outputs, split_outputs, train_and_evaluate
from jaxcx.studies import covid as study

from conftest import REPO_ROOT


def _gray_file(path, value, size=8, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, np.uint8)).save(path, format=fmt)
    return str(path)


def test_split_is_stratified_deterministic_and_keeps_copies_together(tmp_path):
    files = [(_gray_file(tmp_path / f"a{i}.png", i), 0) for i in range(50)]
    files += [(_gray_file(tmp_path / f"b{i}.png", 100 + i), 1) for i in range(30)]
    # Three byte-identical copies of one class-1 image, and a pair in class 0.
    for name in ("b_copy1.png", "b_copy2.png"):
        (tmp_path / name).write_bytes((tmp_path / "b0.png").read_bytes())
        files.append((str(tmp_path / name), 1))
    (tmp_path / "a_copy.png").write_bytes((tmp_path / "a7.png").read_bytes())
    files.append((str(tmp_path / "a_copy.png"), 0))
    splits, duplicated = covid.duplicate_aware_split(files, 0.16, 0.2, seed=3)
    assert duplicated == 5
    assert splits == covid.duplicate_aware_split(files, 0.16, 0.2, seed=3)[0]
    assert splits != covid.duplicate_aware_split(files, 0.16, 0.2, seed=4)[0]
    assert sorted(sum(splits.values(), [])) == sorted(files)  # nothing lost or repeated
    split_of = {path: split for split, part in splits.items() for path, _ in part}
    assert split_of[str(tmp_path / "b0.png")] == split_of[str(tmp_path / "b_copy1.png")] \
        == split_of[str(tmp_path / "b_copy2.png")]
    assert split_of[str(tmp_path / "a7.png")] == split_of[str(tmp_path / "a_copy.png")]
    for label, size in ((0, 51), (1, 32)):
        counts = {s: sum(1 for _, y in part if y == label) for s, part in splits.items()}
        # Test and validation reach their share of the class (a group may overshoot by
        # its size - 1), train takes the rest.
        assert round(size * 0.2) <= counts["test"] <= round(size * 0.2) + 2
        assert round(size * 0.16) <= counts["val"] <= round(size * 0.16) + 2
        assert counts["train"] == size - counts["test"] - counts["val"]


def test_identical_files_in_two_classes_are_an_error(tmp_path):
    a = _gray_file(tmp_path / "Normal" / "x.png", 5)
    b = tmp_path / "COVID" / "x.png"
    b.parent.mkdir()
    b.write_bytes((tmp_path / "Normal" / "x.png").read_bytes())
    with pytest.raises(DataError, match="identical files in different classes") as error:
        covid.duplicate_groups([(a, 0), (str(b), 1)])
    assert str(b) in str(error.value)


def test_common_source_resolution_matches_pil_and_leaves_jpegs_alone():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 256, 1), dtype=np.uint8)
    # Independently: PIL bilinear to 224, then one JPEG generation at quality 90.
    small = Image.fromarray(image[:, :, 0]).resize((224, 224), Image.BILINEAR)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=90)
    expected = np.asarray(Image.open(buffer))[:, :, None]
    np.testing.assert_array_equal(common_source_resolution(image, 224, 90, is_jpeg=False),
                                  expected)
    jpeg_already = common_source_resolution(image, 224, 90, is_jpeg=True)
    np.testing.assert_array_equal(jpeg_already, np.asarray(small)[:, :, None])


def _data_config(tmp_path, **changes):
    config = load_config(f"{REPO_ROOT}/configs/covid.py:generated")
    return with_overrides(config, {"data.cache_dir": str(tmp_path), **changes})


def test_generated_pooled_folders_three_classes(tmp_path):
    data = build_data(_data_config(tmp_path, **{"data.classes": "three"}).data, 0)
    assert data.class_names == ("COVID-19", "Viral Pneumonia", "Normal")
    for split, per_class in (("train", 13), ("val", 3), ("test", 4)):
        assert np.bincount(getattr(data, split).labels).tolist() == [per_class] * 3
    assert data.train.images.shape[1:] == (32, 32, 1)
    ids = [i for split in ("train", "val", "test") for i in getattr(data, split).ids]
    assert len(ids) == len(set(ids)) == 60


def test_covid_qu_ex_layout_keeps_its_own_split(tmp_path):
    written = write_phantom_chest_xrays(tmp_path / "quex", 45, layout="covid",
                                        size_range=(40, 60))
    binary = build_data(_data_config(tmp_path, **{"data.generated.enabled": False,
                                                  "data.root": str(tmp_path / "quex"),
                                                  "data.min_per_class": 1}).data, 0)
    assert binary.class_names == ("Normal", "COVID-19")
    # COVID-QU-Ex labels COVID-19 0, Non-COVID 1, Normal 2; the notebook's binary task
    # reads Normal as 0 and COVID-19 as 1 and leaves Non-COVID out.
    expected = [{2: 0, 0: 1}[label] for _, label in written["Test"] if label != 1]
    assert sorted(binary.test.labels.tolist()) == sorted(expected)
    assert any("Non-COVID" in item.item for item in binary.bad_inputs.ignored())
    three = build_data(_data_config(tmp_path, **{"data.generated.enabled": False,
                                                 "data.root": str(tmp_path / "quex"),
                                                 "data.classes": "three",
                                                 "data.min_per_class": 1}).data, 0)
    assert len(three.train) == len(written["Train"])


def test_missing_class_folder_says_what_is_expected(tmp_path):
    _gray_file(tmp_path / "data" / "COVID" / "a.png", 1)
    config = _data_config(tmp_path, **{"data.generated.enabled": False,
                                       "data.root": str(tmp_path / "data")})
    with pytest.raises(DataError, match=r"Normal.*not found"):
        build_data(config.data, 0)


def test_keras_metrics_agree_with_sklearn():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    got = study.keras_metrics(scores, labels, loss=0.25, threshold=0.5)
    predicted = (scores >= 0.5).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(labels, predicted).ravel()
    assert (got["tp"], got["fp"], got["tn"], got["fn"]) == (tp, fp, tn, fn)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert got["precision"] == pytest.approx(skm.precision_score(labels, predicted))
    assert got["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert got["auc"] == pytest.approx(skm.roc_auc_score(labels, scores))
    assert got["loss"] == 0.25


def test_glorot_uniform_kernels_as_keras():
    import jax
    model = build_model({"name": "covid_mlp", "hidden": (512,)})
    params = model.init(jax.random.key(0), np.zeros((1, 32, 32, 1), np.float32))["params"]
    kernel = np.asarray(params["Dense_0"]["kernel"])
    limit = np.sqrt(6 / (1024 + 512))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.99 * limit
    assert kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)


def test_analysis_names_the_unsure_class():
    names = ["Normal", "COVID-19"]
    labels = np.array([0] * 10 + [1] * 10)
    scores = np.r_[np.full(10, 0.45), np.full(10, 0.95)]  # Normal unsure, COVID sure
    outputs = Outputs(scores, labels, names)
    record = {"threshold_rule": "youden", "operating_points": {
        "0.5": {"sensitivity": 1.0, "specificity": 1.0, "accuracy": 1.0, "roc_auc": 1.0},
        "validation": {"threshold": 0.7, "sensitivity": 1.0, "specificity": 1.0,
                       "accuracy": 1.0}}}
    arm = study.ArmResult("a", [], None, outputs, 0.1, record, outputs, {})
    text = "\n".join(study.analysis(arm, names))
    assert "100% of the test Normal images" in text
    assert "Normal is the class predicted with the lower confidence" in text
    assert "0.700, above 0.5" in text


RELOAD = """
import json, sys
import numpy as np
from pathlib import Path
from jaxcx.run import split_outputs
from jaxcx.studies.covid import load_history
from jaxcx import plots
run = Path(sys.argv[1])
outputs, loss = split_outputs(run, "val")
history = load_history(run)
plots.history_curves(history, run / "reloaded_history.png", "reloaded")
np.save(run / "reloaded_probs.npy", outputs.probs)
print(json.dumps({"loss": loss, "history": history}))
"""


def test_saved_model_and_history_reload_in_a_fresh_process(tmp_path):
    config = with_overrides(_data_config(tmp_path), {"train.num_epochs": 2,
                                                     "train.batch_size": 8})
    run_dir = tmp_path / "run"
    result = train_and_evaluate(config, run_dir)
    history = study.keras_history(result.history)
    study.save_history(run_dir, history)
    assert len(history["val_loss"]) == 2
    done = subprocess.run([sys.executable, "-c", RELOAD, str(run_dir)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert reloaded["history"] == history
    np.testing.assert_array_equal(np.load(run_dir / "reloaded_probs.npy"),
                                  Outputs.load(run_dir / VAL_OUTPUTS_FILE).probs)
    assert reloaded["loss"] == pytest.approx(result.val_metrics["val/loss"], rel=1e-6)
    assert (run_dir / "reloaded_history.png").stat().st_size > 0
    with pytest.raises(ValueError, match="evaluate"):
        split_outputs(run_dir, "test")


def test_quick_study_reports_every_arm_and_tests_each_once(tmp_path):
    config = load_config(f"{REPO_ROOT}/configs/covid_study.py:quick")
    config = with_overrides(config, {"data.cache_dir": str(tmp_path / "cache")})
    workdir = tmp_path / "study"
    arms = study.run_study(config, workdir, log=lambda _: None)
    assert set(arms) == {"sample_mlp", "modified_mlp", "three_class_mlp", "cnn", "resnet18"}
    report = (workdir / "report.md").read_text()
    for name in arms:
        assert f"## {name}" in report
    assert "| train | " in report and "| validation | " in report
    assert "Sharpness per class" in report
    assert arms["three_class_mlp"].test["task"] == "multiclass"
    records = {name: arm.chosen.result.workdir / "test" / "test_metrics.json"
               for name, arm in arms.items()}
    again = study.run_study(config, workdir, log=lambda _: None)
    for name, path in records.items():
        assert json.loads(path.read_text())["evaluations"] == 1
        assert again[name].test == arms[name].test
    rows = tracking.read_metrics(arms["sample_mlp"].chosen.result.workdir)
    assert len([r for r in rows if "val/loss" in r]) == 2  # not retrained


def test_real_split_counts(shared_data):
    """The shared data: 1,250 COVID + 1,250 Normal split about 800/200/250 per class.
    Byte-identical files stay together: the 7 viral-pneumonia pairs the data README lists
    and 2 COVID pairs it does not (COVID-49 = COVID-52, COVID-2458 = COVID-2459)."""
    log = BadInputLog()
    files = covid.pooled_files(shared_data / "covid_radiography", "three",
                               shared_data / "lung_segmentation" / "images", log)
    groups = [g for g in covid.duplicate_groups(files) if len(g) > 1]
    names = sorted(tuple(Path(files[i][0]).name for i in g) for g in groups)
    assert ("COVID-49.jpg", "COVID-52.jpg") in names
    assert ("Viral Pneumonia-74.png", "Viral Pneumonia-75.png") in names
    assert len(names) == 9
    splits, duplicated = covid.duplicate_aware_split(files, 0.16, 0.2, seed=0)
    assert duplicated == 18
    counts = {s: np.bincount([y for _, y in part]).tolist() for s, part in splits.items()}
    assert counts["test"][2] == 250 and counts["val"][2] == 200  # Normal: no copies
    assert 250 <= counts["test"][0] <= 251 and 200 <= counts["val"][0] <= 201
    assert 269 <= counts["test"][1] <= 270 and 215 <= counts["val"][1] <= 216
    assert not covid.cross_split_duplicates(splits)
