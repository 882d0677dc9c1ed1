"""Optuna studies over config fields: sample a config, train it, score it on validation.

`config.sweep` describes the study:

    metric, direction    the validation metric to optimise (`val/accuracy`, `maximize`)
    num_trials           finished trials wanted in all; a rerun only adds the missing ones
    num_epochs           training epochs per trial (shorter than a full run, as the pneumonia notebook's)
    sampler              'random' (the pneumonia notebook's wandb sweep) or 'tpe'; `sampler_seed`
    storage              SQLAlchemy URL; empty means SQLite `WORKDIR/sweep.db`. A shared
                         URL (e.g. PostgreSQL) lets several machines work on one study.
    study_name           empty means `config.name`
    space                {param: {field: 'a.b', choices: (...)} or {field, low, high, log}}

Each trial is a `jaxcx.run.train_and_evaluate` run in `WORKDIR/trials/NNNN`, keeping the
checkpoint best by the sweep's metric; a trial killed mid-way is marked failed by
Optuna's heartbeat once stale and retried with the same parameters in the same folder,
so it resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import optuna  # noqa: E402
from optuna.storages import RetryHeartbeatStaleTrialCallback  # noqa: E402

from jaxcx.config import ConfigError, format_value, with_overrides  # noqa: E402
from jaxcx.data.registry import DataCache  # noqa: E402
from jaxcx.run import DataSource, run_config, train_and_evaluate  # noqa: E402
from jaxcx.train.loop import NonFiniteLossError  # noqa: E402

HEARTBEAT_SECONDS = 60


def param_changes(space: ml_collections.ConfigDict, params: dict[str, Any]) -> dict[str, Any]:
    """{config field: sampled value} of each parameter of `space`."""
    return {space[name].field: value for name, value in params.items()}


def as_flags(changes: dict[str, Any]) -> str:
    """Config changes as the command line's `--config.a.b=value` flags."""
    return " ".join(f"--config.{field}={format_value(value)}" for field, value in changes.items())


def suggest(trial: optuna.Trial, space: ml_collections.ConfigDict) -> dict[str, Any]:
    """Samples each parameter of `space` (categorical `choices`, or float `low`..`high`)."""
    params = {}
    for name, spec in space.items():
        if "field" not in spec:
            raise ConfigError(f"sweep.space.{name} needs a 'field' (the config path it sets)")
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, list(spec.choices))
        elif "low" in spec and "high" in spec:
            params[name] = trial.suggest_float(name, float(spec.low), float(spec.high),
                                               log=bool(spec.get("log", False)))
        else:
            raise ConfigError(f"sweep.space.{name} needs 'choices' or 'low' and 'high'")
    return params


def _sampler(sweep_cfg: ml_collections.ConfigDict, seed: int) -> optuna.samplers.BaseSampler:
    if sweep_cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sweep_cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ConfigError(f"sweep.sampler must be 'random' or 'tpe', got {sweep_cfg.sampler!r}")


def storage_url(config: ml_collections.ConfigDict, workdir: str | Path) -> str:
    return config.sweep.storage or f"sqlite:///{Path(workdir).absolute() / 'sweep.db'}"


def open_study(config: ml_collections.ConfigDict, workdir: str | Path) -> optuna.Study:
    """Creates or loads the study. The sampler is seeded with `sampler_seed` plus the
    number of trials already there, so a resumed study does not redraw old points."""
    sweep_cfg = config.sweep
    if sweep_cfg.direction not in ("maximize", "minimize"):
        raise ConfigError(f"sweep.direction must be 'maximize' or 'minimize', got "
                          f"{sweep_cfg.direction!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            storage_url(config, workdir), heartbeat_interval=HEARTBEAT_SECONDS,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
    study = optuna.create_study(study_name=sweep_cfg.study_name or config.name, storage=storage,
                                direction=sweep_cfg.direction, load_if_exists=True)
    study.sampler = _sampler(sweep_cfg, sweep_cfg.sampler_seed + len(study.trials))
    return study


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def wait_for_running_trials(study: optuna.Study, poll_seconds: float = 10.0) -> None:
    """Returns once no trial is running: trials that other workers sharing the study are
    still training could become the best. A trial whose worker died is marked failed
    once its heartbeat is older than the storage's grace period (2 minutes here)."""
    announced = False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if not running:
            return
        if not announced:
            print(f"sweep: waiting for {len(running)} trial(s) still running in other workers "
                  f"({', '.join(str(t.number) for t in running)})", flush=True)
            announced = True
        time.sleep(poll_seconds)


@dataclasses.dataclass
class SweepResult:
    """The study and its best trial, as config changes and a run folder."""

    study: optuna.Study
    best_params: dict[str, Any]
    best_value: float
    best_changes: dict[str, Any]  # {config field: value}
    best_run: Path


def run_sweep(config: ml_collections.ConfigDict, workdir: str | Path,
              data: DataSource = None) -> SweepResult:
    """Runs trials until `config.sweep.num_trials` have finished; returns the best, once
    no worker sharing the study has a trial left running."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sweep_cfg = config.sweep
    data = data or DataCache()
    study = open_study(config, workdir)
    metric = sweep_cfg.metric

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, sweep_cfg.space)
        trial_config = with_overrides(run_config(config), {
            **param_changes(sweep_cfg.space, params), "train.num_epochs": sweep_cfg.num_epochs,
            "train.best_metric": metric,
            "train.best_mode": "max" if sweep_cfg.direction == "maximize" else "min"})
        frozen = study.get_trials(deepcopy=False)[trial.number]
        retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        number = trial.number if retried is None else retried
        run_dir = workdir / "trials" / f"{number:04d}"
        trial.set_user_attr("run_dir", str(run_dir.relative_to(workdir)))
        result = train_and_evaluate(trial_config, run_dir, overwrite=True, data=data)
        return result.val_metrics[metric]

    missing = sweep_cfg.num_trials - len(finished_trials(study))
    if missing > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=missing, catch=(NonFiniteLossError,),
                           callbacks=[optuna.study.MaxTrialsCallback(
                               sweep_cfg.num_trials, states=(optuna.trial.TrialState.COMPLETE,))])
    wait_for_running_trials(study)
    if not finished_trials(study):
        raise RuntimeError(f"no trial of {study.study_name} finished; see {workdir}/trials")
    best = study.best_trial
    return SweepResult(study, dict(best.params), float(best.value),
                       param_changes(sweep_cfg.space, best.params),
                       workdir / best.user_attrs["run_dir"])


def _save_axes(axes, path: Path, title: str, width: float = 8) -> Path:
    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
    figure.suptitle(title)
    figure.set_size_inches(width, 5)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def sweep_figures(study: optuna.Study, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Optuna's history, parallel-coordinates and parameter-importance plots as PNGs.

    Importances need two or more finished trials with differing values; they are left
    out otherwise."""
    out_dir = Path(out_dir)
    figures = {}
    vis = optuna.visualization.matplotlib
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        figures["history"] = _save_axes(vis.plot_optimization_history(study),
                                        out_dir / "sweep_history.png", f"{name}: sweep history")
        figures["parallel coordinates"] = _save_axes(
            vis.plot_parallel_coordinate(study), out_dir / "sweep_parallel_coordinates.png",
            f"{name}: parallel coordinates", width=13)
        values = {t.value for t in finished_trials(study)}
        if len(values) > 1:
            figures["parameter importances"] = _save_axes(
                vis.plot_param_importances(study), out_dir / "sweep_param_importances.png",
                f"{name}: parameter importances (fANOVA)")
    return figures


def trials_table(study: optuna.Study, metric: str) -> str:
    """A markdown table of every trial: number, state, value and parameters."""
    names = sorted({k for t in study.trials for k in t.params})
    lines = ["| trial | state | " + metric + " | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for t in study.trials:
        value = f"{t.value:.4f}" if t.value is not None else ""
        cells = [f"{t.params[n]:.3g}" if isinstance(t.params.get(n), float)
                 else str(t.params.get(n, "")) for n in names]
        lines.append(f"| {t.number} | {t.state.name.lower()} | {value} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sweep_report(config: ml_collections.ConfigDict, workdir: str | Path,
                       result: SweepResult) -> Path:
    """`WORKDIR/report.md` with the trials, the best configuration and the figures;
    `WORKDIR/best.json` with the best parameters and the config changes they make."""
    workdir = Path(workdir)
    figures = sweep_figures(result.study, workdir / "plots", config.name)
    (workdir / "best.json").write_text(json.dumps(
        {"value": result.best_value, "params": result.best_params,
         "changes": result.best_changes, "run": result.best_run.name}, indent=2) + "\n")
    goal = "maximising" if config.sweep.direction == "maximize" else "minimising"
    lines = [
        f"# Sweep {result.study.study_name}",
        "",
        f"{len(finished_trials(result.study))} finished trials of {config.sweep.num_epochs} "
        f"epochs, {config.sweep.sampler} sampler, {goal} `{config.sweep.metric}`. "
        f"Best: {result.best_value:.4f} (trial folder {result.best_run.name}).",
        "",
        f"Best values: `{as_flags(result.best_changes)}`",
        "",
        trials_table(result.study, config.sweep.metric),
        "",
        *[f"![{name}](plots/{path.name})" for name, path in figures.items()],
        "",
    ]
    path = workdir / "report.md"
    path.write_text("\n".join(lines))
    return path
