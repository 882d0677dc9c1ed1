"""The one way to run a config: `train_and_evaluate(config, workdir)`, then `evaluate`.

`train_and_evaluate` checks the config, prepares the run folder, trains (resuming when
the folder holds the same config), evaluates the best checkpoint on validation once and
keeps that result in the folder (`result.json`, `val_outputs.npz`): calling it again on
a finished run reads them back without compiling anything. `evaluate` is the single test
evaluation of a finished run; it refuses a second one unless forced, and counts them.
Both write the run's `report.md` through the evaluator of the config's task.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxcx import plots, tracking
from jaxcx.config import ConfigDict, ConfigError, import_config_file
from jaxcx.data.imageio import decode_image
from jaxcx.data.registry import DATASETS, DataBundle, build_data
from jaxcx.evaluation import Evaluator, Outputs, available_evaluators, get_evaluator, task_for
from jaxcx.models.registry import MODELS, model_fields
from jaxcx.train.losses import LOSSES, REDUCTIONS
from jaxcx.train.loop import EvalResult, evaluate_best, fit
from jaxcx.train.optim import OPTIMIZERS, SCHEDULES
from jaxcx.workdir import CONFIG_FILE, WorkdirError, prepare_workdir

STUDY_SECTIONS = ("sweep", "study")
RESULT_FILE = "result.json"
VAL_OUTPUTS_FILE = "val_outputs.npz"
TEST_DIR = "test"
TEST_FILE = "test_metrics.json"
TEST_OUTPUTS_FILE = "test_outputs.npz"
REPORT_FILE = "report.md"
LAUNCH_FILE = "launch.json"
THRESHOLD_RULES = ("youden", "f1", "recall")

DataSource = DataBundle | Callable[[ConfigDict], DataBundle] | None


class AlreadyEvaluatedError(WorkdirError):
    """The test split of this run was evaluated already."""


@dataclasses.dataclass
class RunResult:
    """A finished run: its best checkpoint's step and validation metrics and outputs."""

    workdir: Path
    config: ConfigDict
    best_step: int
    val_metrics: dict[str, float]   # 'val/accuracy', 'val/loss', ... of the best checkpoint
    val: Outputs | None             # its validation probabilities, labels and ids
    stopped_early: bool
    train_seconds: float            # wall time of the call that finished training
    figures: list[str] = dataclasses.field(default_factory=list)  # relative to workdir

    @property
    def history(self) -> list[dict]:
        """The run's evaluation rows of metrics.jsonl (one per validation pass)."""
        return [row for row in tracking.read_metrics(self.workdir) if "val/loss" in row]


def run_config(config: ConfigDict) -> ConfigDict:
    """A training run's config: `config` without its study-only sections (sweep, study)."""
    plain = ConfigDict({k: v for k, v in config.to_dict().items() if k not in STUDY_SECTIONS})
    plain.lock()
    return plain


def _check_name(field: str, name: str, valid: list[str]) -> None:
    if name not in valid:
        raise ConfigError(f"unknown {field} {name!r}; valid: {', '.join(valid)}")


def validate(config: ConfigDict) -> None:
    """Checks every registry name and the model's fields; raises ConfigError. Runs before
    a run folder is touched."""
    DATASETS.get(config.data.name)
    MODELS.get(config.model.name)
    unknown = sorted(set(config.model) - {"name"} - set(model_fields(config.model.name)))
    if unknown:
        raise ConfigError(f"model {config.model.name!r} has no field(s) "
                          f"{', '.join('model.' + k for k in unknown)}; valid: "
                          f"{', '.join(model_fields(config.model.name))}")
    LOSSES.get(config.loss.name)
    OPTIMIZERS.get(config.optim.name)
    _check_name("loss.reduction", config.loss.get("reduction", "mean"), list(REDUCTIONS))
    _check_name("optim.schedule", config.optim.schedule, list(SCHEDULES))
    _check_name("eval.task", config.eval.task, ["auto", *available_evaluators()])
    _check_name("eval.threshold", config.eval.threshold, list(THRESHOLD_RULES))
    _check_name("train.best_mode", config.train.best_mode, ["max", "min"])


def record_launch(workdir: str | Path, spec: str, overrides: list[str]) -> None:
    """Keeps how a run was launched (`--config` spec, its file, the overrides) in
    `launch.json`, so a later process can import the config file's registrations."""
    config_file = Path(spec.partition(":")[0]).resolve()
    _write_json(Path(workdir) / LAUNCH_FILE, {"config": spec, "config_file": str(config_file),
                                              "overrides": overrides})


def import_registrations(workdir: Path, config: ConfigDict) -> None:
    """Imports the config file a run was launched with when it registered the run's
    dataset or model itself (they are unknown to a fresh process otherwise)."""
    launch = workdir / LAUNCH_FILE
    if config.data.name in DATASETS and config.model.name in MODELS or not launch.exists():
        return
    config_file = Path(json.loads(launch.read_text())["config_file"])
    if config_file.suffix != ".py" or not config_file.is_file():
        raise ConfigError(f"{workdir}: dataset {config.data.name!r} or model "
                          f"{config.model.name!r} is registered by {config_file}, which is gone")
    import_config_file(config_file)


def evaluator_for(config: ConfigDict, outputs: Outputs) -> Evaluator:
    """The evaluator of `config.eval.task` ('auto': implied by the outputs' labels)."""
    return get_evaluator(task_for(config.eval.task, multilabel=outputs.labels.ndim == 2,
                                  num_classes=len(outputs.class_names)), config.eval)


def _outputs(result: EvalResult, data: DataBundle) -> Outputs | None:
    if result.probs is None:
        return None
    return Outputs(np.asarray(result.probs), np.asarray(result.labels),
                   [str(c) for c in data.class_names], result.ids, result.label_mask)


def _data(config: ConfigDict, data: DataSource) -> DataBundle:
    if data is None:
        return build_data(config.data, config.seed)
    return data(config) if callable(data) else data


def saved_config(workdir: str | Path) -> ConfigDict:
    """The config a run folder was trained with."""
    path = Path(workdir) / CONFIG_FILE
    if not path.is_file():
        raise WorkdirError(f"{workdir} holds no {CONFIG_FILE}: not a run folder")
    return ConfigDict(json.loads(path.read_text()))


def load_result(workdir: str | Path) -> RunResult | None:
    """The finished run in `workdir`, or None if it has not finished."""
    workdir = Path(workdir)
    path = workdir / RESULT_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    outputs = workdir / VAL_OUTPUTS_FILE
    return RunResult(workdir, saved_config(workdir), saved["best_step"], saved["val_metrics"],
                     Outputs.load(outputs) if outputs.is_file() else None,
                     saved["stopped_early"], saved["train_seconds"], saved["figures"])


def _same_config(workdir: Path, config: ConfigDict) -> bool:
    path = workdir / CONFIG_FILE
    return path.is_file() and json.loads(path.read_text()) == json.loads(
        json.dumps(config.to_dict(), default=str))


def train_and_evaluate(config: ConfigDict, workdir: str | Path, *, overwrite: bool = False,
                       data: DataSource = None) -> RunResult:
    """Trains `config` in `workdir` (or resumes it) and evaluates its best checkpoint on
    validation; a finished run is read back. `data` is a DataBundle, a function of the
    config giving one (e.g. a `DataCache`), or None to build it from `config.data`."""
    validate(config)
    workdir = Path(workdir)
    if _same_config(workdir, config) and (finished := load_result(workdir)) is not None:
        return finished
    workdir = prepare_workdir(workdir, config, overwrite=overwrite)
    (workdir / RESULT_FILE).unlink(missing_ok=True)
    bundle = _data(config, data)
    is_chief = jax.process_index() == 0
    if bundle.bad_inputs is not None and bundle.bad_inputs.count and is_chief:
        print(f"{bundle.bad_inputs.summary()}\nlisted in {bundle.bad_inputs.write(workdir)}")
    start = time.perf_counter()
    fitted = fit(config, workdir, bundle)
    best = fitted.best_eval
    if best is None:  # the best evaluation happened before a resume
        best, _ = evaluate_best(config, workdir, bundle, bundle.val, "val",
                                keep_ids=jax.process_count() == 1)
    result = RunResult(workdir, config, int(fitted.best_step), dict(best.metrics),
                       _outputs(best, bundle), fitted.stopped_early,
                       time.perf_counter() - start)
    if is_chief:
        if result.val is not None:
            result.val.save(workdir / VAL_OUTPUTS_FILE)
        result.figures = _validation_figures(result)
        _write_json(workdir / RESULT_FILE, {
            "best_step": result.best_step, "val_metrics": result.val_metrics,
            "stopped_early": result.stopped_early, "train_seconds": result.train_seconds,
            "figures": result.figures})
        write_report(workdir)
    return result


def _validation_figures(result: RunResult) -> list[str]:
    """Draws the run's training curves and its evaluator's validation figures into
    `plots/` (once, when training ends); their paths relative to the run folder."""
    name = result.config.name
    plot_dir = result.workdir / "plots"
    figures = [plots.training_curves(result.history, plot_dir / "training_curves.png",
                                     f"{name}: training curves")]
    if result.val is not None:
        evaluator = evaluator_for(result.config, result.val)
        record = evaluator.metrics(result.val, evaluator.operating_points(result.val),
                                   intervals=False)
        figures += evaluator.figures(result.val, record, plot_dir, name, "val").values()
    return [path.relative_to(result.workdir).as_posix() for path in figures]


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


def image_lookup(source, input_shape) -> Callable[[str], np.ndarray] | None:
    """id -> the image as stored (decoded from its file when the source has paths); None
    when the records are not images or carry no ids."""
    if len(input_shape) != 3 or not hasattr(source, "ids"):
        return None
    index_of = {str(record_id): i for i, record_id in enumerate(source.ids)}

    def image_of(record_id: str) -> np.ndarray:
        record = source[index_of[record_id]]
        path = record.get("path")
        return decode_image(path) if path else record["image"]
    return image_of


def evaluate(workdir: str | Path, *, force: bool = False, data: DataSource = None) -> dict:
    """The test evaluation of a finished run's best checkpoint, with operating points
    chosen on validation. Writes `test/test_metrics.json`, figures beside it and a test
    section in `report.md`; refuses a second evaluation unless `force` (and counts them)."""
    workdir = Path(workdir)
    result = load_result(workdir)
    if result is None:
        raise WorkdirError(f"{workdir} holds no finished run ({RESULT_FILE} missing): train it "
                           "first with `python -m experiments.train --config=... "
                           f"--workdir={workdir}`")
    record_path = workdir / TEST_DIR / TEST_FILE
    previous = json.loads(record_path.read_text()) if record_path.exists() else None
    if previous is not None and not force:
        raise AlreadyEvaluatedError(
            f"the test split was already evaluated for {workdir} on {previous['when']} "
            f"({record_path}); the test set is for one final evaluation. Pass --force to "
            "evaluate again (the count of evaluations is kept in the record).")
    config = result.config
    import_registrations(workdir, config)
    bundle = _data(config, data)
    if bundle.test is None:
        raise WorkdirError(f"dataset {config.data.name!r} has no test split to evaluate")
    if result.val is None:
        raise WorkdirError(f"{workdir}: loss {config.loss.name!r} gives no class "
                           "probabilities, so there is nothing for an evaluator to score")
    single = jax.process_count() == 1
    test_eval, best_step = evaluate_best(config, workdir, bundle, bundle.test, "test",
                                         keep_ids=single)
    test = _outputs(test_eval, bundle)
    evaluator = evaluator_for(config, result.val)
    record = evaluator.metrics(test, evaluator.operating_points(result.val), intervals=True)
    out_dir = workdir / TEST_DIR
    if jax.process_index() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        test.save(out_dir / TEST_OUTPUTS_FILE)
    figures = evaluator.figures(test, record, out_dir, config.name, "test",
                                image_of=image_lookup(bundle.test, bundle.input_shape)
                                if single else None)
    record.update({
        "run": workdir.name, "best_step": best_step,
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "evaluations": 1 + (previous or {}).get("evaluations", 0),
        "loss": test_eval.metrics["test/loss"],
        "figures": {name: path.name for name, path in figures.items()}})
    if jax.process_index() == 0:
        _write_json(record_path, record)
        write_report(workdir)
    return record


def split_outputs(workdir: str | Path, split: str, *,
                  data: DataSource = None) -> tuple[Outputs, float]:
    """The best checkpoint of a finished run, restored from its folder, on the 'train' or
    'val' split (evaluation transforms: no augmentation): its outputs and mean loss. The
    test split is `evaluate`'s alone."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}; the test split is "
                         "scored once, by evaluate()")
    workdir = Path(workdir)
    result = load_result(workdir)
    if result is None:
        raise WorkdirError(f"{workdir} holds no finished run ({RESULT_FILE} missing)")
    import_registrations(workdir, result.config)
    bundle = _data(result.config, data)
    source = getattr(bundle, split)
    source = getattr(source, "source", source)  # the distinct images of an oversampled split
    scored, _ = evaluate_best(result.config, workdir, bundle, source, split,
                              keep_ids=jax.process_count() == 1)
    return _outputs(scored, bundle), float(scored.metrics[f"{split}/loss"])


def write_report(workdir: str | Path) -> Path:
    """`report.md` of a run: best checkpoint, validation metrics and the figures drawn
    when training ended, and the test evaluation when there is one. Draws nothing."""
    workdir = Path(workdir)
    result = load_result(workdir)
    config = result.config
    history = result.history
    lines = [f"# {config.name}", "",
             f"Best checkpoint: step {result.best_step} of "
             f"{history[-1]['step'] if history else 0} (by `{config.train.best_metric}`, "
             f"{config.train.best_mode})" + ("; stopped early." if result.stopped_early else "."),
             "", "## Validation (best checkpoint)", ""]
    if result.val is not None:
        evaluator = evaluator_for(config, result.val)
        record = evaluator.metrics(result.val, evaluator.operating_points(result.val),
                                   intervals=False)
        lines += [f"Task `{evaluator.task}`; thresholds chosen on validation are shown at "
                  "their own split, so they flatter it.", "", *evaluator.markdown(record)]
    else:
        lines += ["| metric | value |", "|---|---|",
                  *[f"| {k} | {v:.4f} |" for k, v in result.val_metrics.items()]]
    lines += ["", *[f"![{Path(f).stem}]({f})" for f in result.figures], ""]
    test_path = workdir / TEST_DIR / TEST_FILE
    if test_path.exists():
        test = json.loads(test_path.read_text())
        evaluator = get_evaluator(test["task"], config.eval)
        lines += ["## Test (the one evaluation of the test split)", "",
                  f"{test['n']} examples, best checkpoint (step {test['best_step']}), "
                  f"evaluated {test['when']}; test evaluations so far: {test['evaluations']}. "
                  "Bootstrap 95% intervals in brackets.", "", *evaluator.markdown(test), "",
                  *[f"![{Path(name).stem}]({TEST_DIR}/{name})"
                    for name in test["figures"].values()], ""]
    path = workdir / REPORT_FILE
    path.write_text("\n".join(lines))
    return path

