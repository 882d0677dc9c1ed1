"""The Optuna sweep: search-space sampling, overrides, resuming up to a trial count, the
budget shared by workers, storage retries. Several workers on PostgreSQL:
test_sweep_postgres.py."""

from pathlib import Path

import optuna
import pytest
import sqlalchemy

from jaxcx.config import ConfigError, load_config
from jaxcx.config import with_overrides
from jaxcx.run import load_result, run_config
from jaxcx.sweep import (StorageRetry, StudyMismatchError, SweepStorageError, TrialCounts,
                         as_flags, open_study, param_changes, run_sweep, suggest, within_budget)

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "pneumonia.py")


# A sweep whose trials train a tiny CNN for one epoch on 80 generated phantoms.
TINY_OVERRIDES = [
    "data.phantom.num_images=80", "data.phantom.min_size=48", "data.phantom.max_size=64",
    "sweep.space.image_size.choices=(16,)", "sweep.space.batch_size.choices=(16,)",
    "sweep.space.feature_maps.choices=(4,)", "sweep.space.kernel_size.choices=(3,)"]


def tiny_sweep_config(cache_dir, num_trials):
    return load_config(f"{CONFIG}:sweep,quick", [
        f"data.cache_dir={cache_dir}", *TINY_OVERRIDES, f"sweep.num_trials={num_trials}"])


def test_suggest_and_changes_round_trip():
    config = load_config(f"{CONFIG}:sweep,cpu")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = suggest(study.ask(), config.sweep.space)
    assert set(params) == set(config.sweep.space)
    assert 1e-5 <= params["learning_rate"] <= 1e-3 and 0.25 <= params["dropout"] <= 0.75
    run = with_overrides(run_config(config), param_changes(config.sweep.space, params))
    assert "sweep" not in run and "study" not in run
    assert run.optim.learning_rate == params["learning_rate"]
    assert run.model.activation == params["activation"]
    assert run.data.image_size == params["image_size"]
    flags = as_flags(param_changes(config.sweep.space, params)).split()
    again = load_config(f"{CONFIG}:sweep,cpu", [f.removeprefix("--config.") for f in flags])
    assert run_config(again).to_dict() == run.to_dict()  # the printed flags parse back


def test_bad_space_is_a_config_error():
    config = load_config(f"{CONFIG}:sweep", ["sweep.space.dropout.field=model.dropout_rate"])
    with config.unlocked():
        del config.sweep.space.dropout["low"]
    with pytest.raises(ConfigError, match="sweep.space.dropout needs"):
        suggest(optuna.create_study().ask(), config.sweep.space)


@pytest.mark.slow
def test_sweep_resumes_up_to_the_requested_count(tmp_path):
    workdir = tmp_path / "sweep"
    first = run_sweep(tiny_sweep_config(tmp_path / "cache", 2), workdir)
    assert len(first.study.trials) == 2
    second = run_sweep(tiny_sweep_config(tmp_path / "cache", 3), workdir)
    trials = second.study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert len({t.params["learning_rate"] for t in trials}) == 3  # no redrawn points
    assert sorted(p.name for p in (workdir / "trials").iterdir()) == ["0000", "0001", "0002"]
    again = run_sweep(tiny_sweep_config(tmp_path / "cache", 3), workdir)
    assert len(again.study.trials) == 3
    assert again.best_run.is_dir()
    best = load_result(again.best_run)
    assert best.config.optim.learning_rate == again.best_changes["optim.learning_rate"]
    assert best.val_metrics["val/accuracy"] == again.best_value == max(
        t.value for t in again.study.trials)


@pytest.mark.parametrize("counts, step", [
    (TrialCounts(complete=1, running=1), "run"),       # one more fits the budget of 3
    (TrialCounts(complete=2, running=1), "wait"),      # the running one may fail and retry
    (TrialCounts(complete=3, waiting=1), "run"),       # a queued retry is settled
    (TrialCounts(complete=3), "done"),
    (TrialCounts(complete=1, errors=3), "done"),       # every trial diverges: stop asking
])
def test_next_step(counts, step):
    assert counts.next_step(3) == step


def test_within_budget_counts_earlier_live_trials():
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0))          # 0 complete
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))  # 1
    study.ask()                                                    # 2 running
    study.enqueue_trial({})                                        # 3 waiting
    trials = study.get_trials() + [optuna.trial.create_trial(value=0.0)]
    trials[-1].number = 4
    assert within_budget(trials, 4, 4)        # 0, 2 and 3 are live: a fourth fits
    assert not within_budget(trials, 4, 3)
    assert within_budget(trials, 2, 2)        # only trial 0 is earlier and live


def test_changed_direction_is_refused(tmp_path):
    config = tiny_sweep_config(tmp_path / "cache", 2)
    open_study(config, tmp_path)
    again = with_overrides(config, {"sweep.direction": "minimize"})
    with pytest.raises(StudyMismatchError, match="direction: stored 'maximize', now 'minimize'"):
        open_study(again, tmp_path)


@pytest.mark.parametrize("field, value, message", [
    ("storage", "not a url", "sweep.storage is not a SQLAlchemy URL"),
    ("heartbeat_seconds", 0, "sweep.heartbeat_seconds must be a whole number"),
    ("storage_retry_seconds", -1, "sweep.storage_retry_seconds must be a number"),
])
def test_bad_sweep_settings_are_config_errors(tmp_path, field, value, message):
    config = tiny_sweep_config(tmp_path / "cache", 1)
    with config.unlocked():
        config.sweep[field] = value
    with pytest.raises(ConfigError, match=message):
        run_sweep(config, tmp_path / "sweep")


def test_a_fractional_heartbeat_is_refused_on_the_command_line():
    with pytest.raises(ConfigError, match="sweep.heartbeat_seconds"):
        load_config(f"{CONFIG}:sweep", ["sweep.heartbeat_seconds=2.5"])


def _connection_error(sqlstate=None):
    cause = ConnectionError("connection refused")
    cause.sqlstate = sqlstate
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, cause)


def test_storage_retry_backs_off_then_succeeds(monkeypatch):
    delays = []
    monkeypatch.setattr("jaxcx.sweep.time.sleep", delays.append)
    failures = iter([_connection_error(), _connection_error(), None])

    def operation():
        error = next(failures)
        if error:
            raise error
        return "ok"

    assert StorageRetry("postgresql://u:secret@db/x", seconds=60)(operation) == "ok"
    assert delays == [1.0, 2.0]


def test_storage_retry_gives_up_with_the_url_and_what_to_check(monkeypatch, capsys):
    monkeypatch.setattr("jaxcx.sweep.time.sleep", lambda s: None)

    def unreachable():
        raise _connection_error()

    with pytest.raises(SweepStorageError) as raised:
        StorageRetry("postgresql://u:secret@db/x", seconds=0)(unreachable)
    message = str(raised.value)
    assert "cannot reach the sweep storage postgresql://u:***@db/x" in message
    assert "secret" not in message + capsys.readouterr().out
    assert "server is running" in message and "storage_retry_seconds" in message

    def no_such_database():
        raise _connection_error("3D000")

    with pytest.raises(SweepStorageError, match="refused the connection"):
        StorageRetry("postgresql://db/x", seconds=60)(no_such_database)


def _fake_training(config, run_dir, overwrite, data):
    import types
    return types.SimpleNamespace(val_metrics={"val/accuracy": config.optim.learning_rate})


@pytest.mark.parametrize("shared", [False, True])
def test_trial_draws_one_seeded_sequence_or_per_trial_seeds_with_shared_storage(
        tmp_path, monkeypatch, shared):
    """On the default storage trial N of a new sweep gets the N-th draw of one
    `sampler_seed` sequence (as before workers took trials themselves, so a sweep run
    again draws the same points); on a shared storage trial N gets the first draw seeded
    `sampler_seed + N`."""
    monkeypatch.setattr("jaxcx.sweep.train_and_evaluate", _fake_training)
    config = tiny_sweep_config(tmp_path / "cache", 3)
    if shared:
        config = with_overrides(config, {"sweep.storage": f"sqlite:///{tmp_path / 'shared.db'}"})
    run_sweep(config, tmp_path / "sweep")
    study = open_study(config, tmp_path / "sweep")
    drawn = [t.params for t in sorted(study.trials, key=lambda t: t.number)]
    seed, space = config.sweep.sampler_seed, config.sweep.space
    if shared:
        expected = [suggest(optuna.create_study(sampler=optuna.samplers.RandomSampler(
            seed=seed + n)).ask(), space) for n in range(3)]
    else:
        reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        expected = [suggest(reference.ask(), space) for _ in range(3)]
    assert drawn == expected
