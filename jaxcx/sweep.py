"""Optuna studies over config fields: sample a config, train it, score it on validation.

`config.sweep` describes the study:

    metric, direction    the validation metric to optimise (`val/accuracy`, `maximize`)
    num_trials           finished trials wanted in all; a rerun only adds the missing ones
    num_epochs           training epochs per trial (shorter than a full run, as the pneumonia notebook's)
    sampler              'random' (the pneumonia notebook's wandb sweep) or 'tpe'; `sampler_seed`
                         (+ the trials already there) seeds one sequence of draws
                         (default storage), or with a shared `storage` the draw of
                         trial N (`sampler_seed + N`)
    storage              SQLAlchemy URL; empty means SQLite `WORKDIR/sweep.db`. A shared
                         URL (e.g. `postgresql://user@host/db`) lets workers on several
                         machines work on one study.
    study_name           empty means `config.name`
    space                {param: {field: 'a.b', choices: (...)} or {field, low, high, log}}
    heartbeat_seconds    optional (60): a running trial's heartbeat; one silent for twice
                         as long is failed and retried
    storage_retry_seconds  optional (300): how long a worker retries a storage it cannot
                         reach before it exits

Each trial is a `jaxcx.run.train_and_evaluate` run in `WORKDIR/trials/NNNN`, keeping the
checkpoint best by the sweep's metric. Any number of workers may run `run_sweep` on one
study: each takes trials until `num_trials` are complete, counted in the storage. A trial
whose worker died is failed once its heartbeat is stale and retried with the same
parameters in the same folder, so it resumes from its checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import socket
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections  # noqa: E402
import optuna  # noqa: E402
import sqlalchemy  # noqa: E402
from optuna.storages import RetryHeartbeatStaleTrialCallback  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from jaxcx.config import ConfigError, format_value, with_overrides  # noqa: E402
from jaxcx.data.registry import DataCache  # noqa: E402
from jaxcx.run import DataSource, run_config, train_and_evaluate  # noqa: E402
from jaxcx.train.loop import NonFiniteLossError  # noqa: E402

DEFAULTS = {"heartbeat_seconds": 60, "storage_retry_seconds": 300}
STALE_RETRIES = 2  # times a trial whose worker died is run again
SEARCH_ATTR = "search"  # the study's user attribute holding its metric, direction and space
_STORAGE_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                   optuna.exceptions.StorageInternalError)
_LIVE = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
T = TypeVar("T")


class SweepStorageError(RuntimeError):
    """The study's storage could not be reached, or refused the connection."""


class StudyMismatchError(ConfigError):
    """The stored study was created with another metric, direction or search space."""


def setting(sweep_cfg: ml_collections.ConfigDict, name: str) -> Any:
    """An optional `sweep` field (see `DEFAULTS`)."""
    return sweep_cfg.get(name, DEFAULTS[name])


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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


def shown_url(url: str) -> str:
    """`url` with its password masked, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "<unparsable URL>"


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE code of the database error behind `error`, if the driver gives one."""
    while error is not None and not isinstance(error, sqlalchemy.exc.DBAPIError):
        error = error.__cause__
    return getattr(getattr(error, "orig", None), "sqlstate", None)


def _first_line(error: BaseException) -> str:
    if isinstance(error, optuna.exceptions.StorageInternalError) and error.__cause__:
        error = error.__cause__
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class StorageRetry:
    """Calls storage operations, retrying connection errors with exponential backoff
    for up to `seconds` from the first failure; then raises `SweepStorageError`."""

    def __init__(self, url: str, seconds: float, first_delay: float = 1.0,
                 max_delay: float = 30.0):
        self.url, self.seconds = url, seconds
        self.first_delay, self.max_delay = first_delay, max_delay

    def __call__(self, operation: Callable[[], T]) -> T:
        deadline, delay = None, self.first_delay
        while True:
            try:
                return operation()
            except _STORAGE_ERRORS as error:
                state = _sqlstate(error) or ""
                if state.startswith(("28", "3D")):  # bad credentials, no such database
                    raise SweepStorageError(
                        f"the sweep storage {shown_url(self.url)} refused the connection: "
                        f"{_first_line(error)}; check sweep.storage's user, password "
                        "(PGPASSWORD or ~/.pgpass for PostgreSQL) and database") from error
                if state and not state.startswith(("08", "40", "53", "57")):
                    raise  # not about reaching the server: a bug or bad data
                now = time.monotonic()
                deadline = deadline or now + self.seconds
                if now >= deadline:
                    raise SweepStorageError(
                        f"cannot reach the sweep storage {shown_url(self.url)} (retried for "
                        f"{self.seconds:g} s: {_first_line(error)}); check that its database "
                        "server is running and reachable from this host, and the URL. "
                        "Running the same command again resumes the study (a trial left "
                        "running is retried); sweep.storage_retry_seconds sets how long a "
                        "worker retries") from error
                wait = min(delay, deadline - now)
                print(f"sweep: storage {shown_url(self.url)} unreachable "
                      f"({_first_line(error)}); retrying in {wait:.3g} s", flush=True)
                time.sleep(wait)
                delay = min(2 * delay, self.max_delay)


def _engine_kwargs(url: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in (
            "psycopg", "psycopg2"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    return kwargs


def search_signature(sweep_cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """The metric, direction and space of a sweep, as stored with its study."""
    return json.loads(json.dumps({"metric": sweep_cfg.metric, "direction": sweep_cfg.direction,
                                  "space": sweep_cfg.space.to_dict()}))


def check_same_search(study: optuna.Study, signature: dict[str, Any], url: str) -> None:
    """Stores `signature` with a new study; refuses a study stored with another one."""
    if SEARCH_ATTR not in study.user_attrs:
        study.set_user_attr(SEARCH_ATTR, signature)  # of workers racing here, one write stays
    stored = study.user_attrs[SEARCH_ATTR]
    if stored == signature:
        return
    differences = [f"{key}: stored {stored.get(key)!r}, now {signature[key]!r}"
                   for key in ("metric", "direction") if stored.get(key) != signature[key]]
    old, new = stored.get("space", {}), signature["space"]
    for name in sorted(set(old) | set(new)):
        if name not in old:
            differences.append(f"{name}: not in the stored space")
        elif name not in new:
            differences.append(f"{name}: only in the stored space")
        elif old[name] != new[name]:
            differences.append(f"{name}: stored {old[name]}, now {new[name]}")
    raise StudyMismatchError(
        f"study {study.study_name!r} in {shown_url(url)} was created with another search "
        f"({'; '.join(differences)}); its trials cannot be merged with this one. Give this "
        "search a new --config.sweep.study_name, or run it with the stored space")


def open_storage(config: ml_collections.ConfigDict,
                 workdir: str | Path) -> optuna.storages.RDBStorage:
    """The study's storage, with heartbeats every `sweep.heartbeat_seconds`: a running
    trial silent for twice as long is failed and queued again (`STALE_RETRIES` times)."""
    heartbeat = setting(config.sweep, "heartbeat_seconds")
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise ConfigError(f"sweep.heartbeat_seconds must be a whole number of seconds >= 1, "
                          f"got {heartbeat!r}")
    url = storage_url(config, workdir)
    try:
        kwargs = _engine_kwargs(url)
    except sqlalchemy.exc.ArgumentError as error:
        raise ConfigError(f"sweep.storage is not a SQLAlchemy URL ({error}); e.g. "
                          "postgresql://user@host:5432/database") from error
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=kwargs, heartbeat_interval=heartbeat,
                    grace_period=2 * heartbeat,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=STALE_RETRIES))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(random.uniform(0.1, 1.0))  # workers made the tables at once: they exist


def open_study(config: ml_collections.ConfigDict, workdir: str | Path,
               storage: optuna.storages.RDBStorage | None = None) -> optuna.Study:
    """Creates or loads the study, refusing one stored with another search."""
    sweep_cfg = config.sweep
    if sweep_cfg.direction not in ("maximize", "minimize"):
        raise ConfigError(f"sweep.direction must be 'maximize' or 'minimize', got "
                          f"{sweep_cfg.direction!r}")
    storage = storage or open_storage(config, workdir)
    study = optuna.create_study(study_name=sweep_cfg.study_name or config.name, storage=storage,
                                direction=sweep_cfg.direction, load_if_exists=True)
    check_same_search(study, search_signature(sweep_cfg), storage_url(config, workdir))
    return study


@contextlib.contextmanager
def heartbeat(storage: optuna.storages.RDBStorage, trial: optuna.Trial, seconds: float):
    """Records the trial's heartbeat every `seconds` while the block runs. A beat that
    cannot reach the storage is retried at the next one, so a short outage does not
    make the trial look dead."""
    stop = threading.Event()

    def beat():
        while True:
            try:
                storage.record_heartbeat(trial._trial_id)
            except _STORAGE_ERRORS as error:
                print(f"sweep: heartbeat of trial {trial.number} not recorded "
                      f"({_first_line(error)})", flush=True)
            if stop.wait(seconds):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


@dataclasses.dataclass
class TrialCounts:
    """A study's trials by state; `errors` counts trials failed by their own error."""

    complete: int = 0
    running: int = 0
    waiting: int = 0
    errors: int = 0

    def next_step(self, num_trials: int) -> str:
        """'run' a trial, 'wait' for running ones (they may fail and be retried) or 'done'.

        A waiting trial is a retry: it is taken even when the budget looks met, so that
        it is settled (run, or skipped by `within_budget`) rather than left queued."""
        if self.waiting or (self.complete + self.running < num_trials
                            and self.errors < num_trials):
            return "run"
        return "wait" if self.running else "done"


def trial_counts(study: optuna.Study) -> TrialCounts:
    """Fails trials whose heartbeat is stale (queueing their retries), then counts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    counts = TrialCounts()
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            counts.complete += 1
        elif t.state == TrialState.RUNNING:
            counts.running += 1
        elif t.state == TrialState.WAITING:
            counts.waiting += 1
        elif t.state == TrialState.FAIL and "error" in t.user_attrs:
            counts.errors += 1
    return counts


def within_budget(trials: list[optuna.trial.FrozenTrial], number: int, num_trials: int) -> bool:
    """Whether trial `number` may run: fewer than `num_trials` trials numbered before it
    are complete, running or queued. Trial numbers follow creation order, so of trials
    that end complete at most `num_trials` pass this, whatever the workers' timing."""
    earlier = sum(1 for t in trials if t.number < number and t.state in _LIVE)
    return earlier < num_trials


def retried_trial(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial that `trial` retries (its worker died), if any."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


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
    """Takes trials until `config.sweep.num_trials` are complete in the study; returns the
    best once no worker sharing the study has a trial left running."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sweep_cfg = config.sweep
    data = data or DataCache()
    retry_seconds = setting(sweep_cfg, "storage_retry_seconds")
    if isinstance(retry_seconds, bool) or not isinstance(retry_seconds, (int, float)) \
            or retry_seconds < 0:
        raise ConfigError(f"sweep.storage_retry_seconds must be a number of seconds >= 0, got "
                          f"{retry_seconds!r}")
    retry = StorageRetry(storage_url(config, workdir), retry_seconds)
    storage = retry(lambda: open_storage(config, workdir))
    study = retry(lambda: open_study(config, workdir, storage))
    shared = bool(sweep_cfg.storage)
    if not shared:  # one worker: one sequence of draws, from `sampler_seed` plus the
        # trials already there (a resumed sweep does not draw its first points again)
        begun = len(retry(lambda: study.get_trials(deepcopy=False)))
        study.sampler = _sampler(sweep_cfg, sweep_cfg.sampler_seed + begun)
    metric, worker = sweep_cfg.metric, worker_id()
    heartbeat_seconds = setting(sweep_cfg, "heartbeat_seconds")

    def objective(trial: optuna.Trial) -> float:
        retry(lambda: trial.set_user_attr("worker", worker))
        trials = retry(lambda: study.get_trials(deepcopy=False))
        if not within_budget(trials, trial.number, sweep_cfg.num_trials):
            retry(lambda: trial.set_user_attr("skipped", "the budget was met by earlier trials"))
            raise optuna.TrialPruned()
        if shared:  # workers on several machines: each trial its own seed, so that
            # workers started together do not all draw the same points
            study.sampler = _sampler(sweep_cfg, sweep_cfg.sampler_seed + trial.number)
        params = retry(lambda: suggest(trial, sweep_cfg.space))
        trial_config = with_overrides(run_config(config), {
            **param_changes(sweep_cfg.space, params), "train.num_epochs": sweep_cfg.num_epochs,
            "train.best_metric": metric,
            "train.best_mode": "max" if sweep_cfg.direction == "maximize" else "min"})
        retried = retried_trial(trials[trial.number])
        number = trial.number if retried is None else retried
        run_dir = workdir / "trials" / f"{number:04d}"
        retry(lambda: trial.set_user_attr("run_dir", str(run_dir.relative_to(workdir))))
        print(f"sweep: {worker} runs trial {trial.number}"
              + ("" if retried is None else f" (retry of {retried})") + f" in {run_dir}",
              flush=True)
        try:
            result = train_and_evaluate(trial_config, run_dir, overwrite=True, data=data)
        except NonFiniteLossError as error:
            retry(lambda: trial.set_user_attr("error", str(error)))
            raise
        return result.val_metrics[metric]

    def run_trial() -> None:
        """One trial, told to the storage. One that raises is failed, and the error
        raised; one stopped otherwise (Ctrl-C) is left to go stale and be retried."""
        trial = retry(study.ask)
        value, state = None, TrialState.COMPLETE
        with heartbeat(storage, trial, heartbeat_seconds):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except NonFiniteLossError as error:
                print(f"sweep: trial {trial.number} failed: {error}", flush=True)
                state = TrialState.FAIL
            except SweepStorageError:
                raise  # the trial goes stale, and a worker that reaches the storage retries it
            except Exception:
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
        # skip_if_finished: the trial may have been failed meanwhile as stale (its retry
        # runs elsewhere), or this tell may be a retry of one that reached the storage.
        retry(lambda: study.tell(trial, value, state=state, skip_if_finished=True))
        if value is not None:
            print(f"sweep: trial {trial.number}: {metric} = {value:.4f}", flush=True)

    announced = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna's heartbeat thread lives in Study.optimize; `heartbeat` is this loop's.
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
        while (step := retry(lambda: trial_counts(study)).next_step(
                sweep_cfg.num_trials)) != "done":
            if step == "run":
                run_trial()
                announced = False
                continue
            if not announced:
                print(f"sweep: {worker} waits for trials still running in other workers",
                      flush=True)
                announced = True
            time.sleep(min(10.0, heartbeat_seconds))
        finished = retry(lambda: finished_trials(study))
    if not finished:
        raise RuntimeError(f"no trial of {study.study_name} finished; see {workdir}/trials")
    best = retry(lambda: study.best_trial)
    return SweepResult(study, dict(best.params), float(best.value),
                       param_changes(sweep_cfg.space, best.params),
                       workdir / best.user_attrs["run_dir"])


def _save_axes(axes, path: Path, title: str, width: float = 8) -> Path:
    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
    figure.suptitle(title)
    figure.set_size_inches(width, 5)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    figure.savefig(tmp, dpi=90)
    plt.close(figure)
    os.replace(tmp, path)
    return path


def _write_text(path: Path, text: str) -> None:
    """Writes `text` whole, although every worker of a study writes the same reports."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


def _state(trial: optuna.trial.FrozenTrial) -> str:
    if "skipped" in trial.user_attrs:
        return "skipped"
    retried = retried_trial(trial)
    state = trial.state.name.lower()
    return state if retried is None else f"{state} (retry of {retried})"


def trials_table(study: optuna.Study, metric: str) -> str:
    """A markdown table of every trial: number, state, the worker that ran it (host:pid),
    value and parameters."""
    names = sorted({k for t in study.trials for k in t.params})
    lines = ["| trial | state | worker | " + metric + " | " + " | ".join(names) + " |",
             "|---|---|---|---|" + "---|" * len(names)]
    for t in study.trials:
        value = f"{t.value:.4f}" if t.value is not None else ""
        cells = [f"{t.params[n]:.3g}" if isinstance(t.params.get(n), float)
                 else str(t.params.get(n, "")) for n in names]
        lines.append(f"| {t.number} | {_state(t)} | {t.user_attrs.get('worker', '')} | "
                     f"{value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sweep_report(config: ml_collections.ConfigDict, workdir: str | Path,
                       result: SweepResult) -> Path:
    """`WORKDIR/report.md` with the trials, the best configuration and the figures;
    `WORKDIR/best.json` with the best parameters and the config changes they make."""
    workdir = Path(workdir)
    figures = sweep_figures(result.study, workdir / "plots", config.name)
    _write_text(workdir / "best.json", json.dumps(
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
    _write_text(path, "\n".join(lines))
    return path
