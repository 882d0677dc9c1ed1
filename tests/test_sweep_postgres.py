"""Sweeps on a real PostgreSQL server: workers in separate processes share one study,
one is killed mid-trial, the server goes away, a study is reopened with another space.

The server is a throw-away one on 127.0.0.1 (tests/postgres_server.py). These tests skip,
saying why, where it cannot start; with JAXCX_REQUIRE_POSTGRES=1 (set by .ci/run) they
fail instead. The study's outcome is checked by reading its tables with plain SQL.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import sqlalchemy

from jaxcx.config import load_config, with_overrides
from jaxcx.data.registry import build_data
from jaxcx.run import run_config
from jaxcx.sweep import StudyMismatchError, SweepStorageError, open_study, run_sweep
from postgres_server import PostgresServer, ServerUnavailable, free_port
from test_sweep import CONFIG, TINY_OVERRIDES, tiny_sweep_config

REPO = Path(__file__).resolve().parents[1]
# The pneumonia config with a short heartbeat, so that a dead worker's trial is failed
# (and retried) 6 s after its last beat.
CONFIG_FILE = f"""
from jaxcx.config import import_config_file


def get_config(arg=None):
    config = import_config_file({CONFIG!r}).get_config(arg)
    config.sweep.heartbeat_seconds = 3
    config.sweep.storage_retry_seconds = 300
    return config
"""
TRIALS_SQL = sqlalchemy.text("""
    SELECT t.number, t.state, v.value,
        (SELECT value_json FROM trial_user_attributes a
         WHERE a.trial_id = t.trial_id AND a.key = 'worker') AS worker,
        (SELECT value_json FROM trial_user_attributes a
         WHERE a.trial_id = t.trial_id AND a.key = 'run_dir') AS run_dir,
        (SELECT value_json FROM trial_system_attributes s
         WHERE s.trial_id = t.trial_id AND s.key = 'failed_trial') AS failed_trial
    FROM trials t JOIN studies st ON st.study_id = t.study_id
    LEFT JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0
    WHERE st.study_name = :study ORDER BY t.number""")


def _start_server() -> PostgresServer:
    try:
        server = PostgresServer()
        try:
            server.start()
        except ServerUnavailable:
            server.remove()
            raise
    except ServerUnavailable as error:
        if os.environ.get("JAXCX_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL server could not start: {error}")
        pytest.skip(f"PostgreSQL server could not start: {error}")
    return server


@pytest.fixture(scope="module")
def postgres():
    server = _start_server()
    yield server
    server.stop("immediate")  # its data is thrown away
    server.remove()


def read_trials(url: str, study: str) -> list[dict]:
    """The study's trials, read from its tables (JSON attributes decoded); none before a
    worker has made the tables."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table("trial_values"):
                return []
            rows = connection.execute(TRIALS_SQL, {"study": study}).mappings().all()
    finally:
        engine.dispose()
    return [{**row, **{k: json.loads(row[k]) if row[k] is not None else None
                       for k in ("worker", "run_dir", "failed_trial")}} for row in rows]


def wait_until(condition, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if procs and all(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_worker(config_file: Path, url: str, workdir: Path, log: Path, num_trials: int,
                 extra=()) -> subprocess.Popen:
    flags = [f"--config.{item}" for item in [
        *TINY_OVERRIDES, f"data.cache_dir={workdir.parent / 'cache'}",
        f"sweep.num_trials={num_trials}", f"sweep.storage={url}", *extra]]
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.sweep", f"--config={config_file}:sweep,quick",
         *flags, f"--workdir={workdir}"],
        cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "JAXCX_NO_PROGRESS": "1"})


def prepare(tmp_path: Path) -> Path:
    """The test's config file; the phantom data built once (the workers only read it)."""
    config_file = tmp_path / "sweep_config.py"
    config_file.write_text(CONFIG_FILE)
    config = tiny_sweep_config(tmp_path / "cache", 1)
    trial = with_overrides(run_config(config), {"data.image_size": 16})
    build_data(trial.data, trial.seed)
    return config_file


def running_in_folder(url: str, study: str, workdir: Path):
    """(trial, worker) of a running trial whose training has started."""
    for t in read_trials(url, study):
        if t["state"] == "RUNNING" and t["run_dir"] and (workdir / t["run_dir"]).is_dir():
            return t["number"], t["worker"]
    return None


def test_three_workers_one_killed_complete_exactly_the_budget(postgres, tmp_path):
    url = postgres.create_database("three_workers")
    config_file = prepare(tmp_path)
    workdir, study, num_trials = tmp_path / "sweep", "pneumonia_quick", 3
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    # Minimising the validation loss: unlike accuracy on these few images, it has no ties.
    procs = [start_worker(config_file, url, workdir, log, num_trials,
                          extra=["sweep.metric=val/loss", "sweep.direction=minimize"])
             for log in logs]
    by_pid = {p.pid: p for p in procs}
    try:
        victim_trial, victim = wait_until(lambda: running_in_folder(url, study, workdir), 240,
                                          "a trial to start training", procs)
        victim_proc = by_pid[int(victim.rsplit(":", 1)[1])]
        victim_proc.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait(timeout=300)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    output = "\n".join(log.read_text() for log in logs)
    assert victim_proc.returncode == -signal.SIGKILL
    assert all(p.returncode == 0 for p in procs if p is not victim_proc), output

    trials = read_trials(url, study)
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert len(complete) == num_trials, trials
    killed = trials[victim_trial]
    assert killed["state"] == "FAIL" and killed["worker"] == victim
    retries = [t for t in trials if t["failed_trial"] == victim_trial]
    assert len(retries) == 1, trials
    retry = retries[0]
    # The retry resumes in the killed trial's folder, on a live worker. (Were a fresh trial
    # asked between the kill's failure and its retry's queueing, the retry is skipped.)
    assert retry["state"] in ("COMPLETE", "PRUNED"), trials
    if retry["state"] == "COMPLETE":
        assert retry["run_dir"] == killed["run_dir"] and retry["worker"] != victim
    assert all(t["worker"] != victim for t in complete)

    best_trial = min(complete, key=lambda t: t["value"])
    assert [t["value"] for t in complete].count(best_trial["value"]) == 1
    best = json.loads((workdir / "best.json").read_text())
    assert best["value"] == pytest.approx(best_trial["value"], abs=1e-12)
    assert best["run"] == Path(best_trial["run_dir"]).name
    report = (workdir / "report.md").read_text()
    assert f"| {victim_trial} | fail | {victim} |" in report
    for t in complete:
        assert f"| {t['worker']} | {t['value']:.4f} |" in report
    assert sorted(p.name for p in (workdir / "trials").iterdir()) == sorted(
        {Path(t["run_dir"]).name for t in trials if t["run_dir"]})


def test_racing_workers_complete_exactly_the_budget(postgres, tmp_path, monkeypatch):
    """Four workers (threads) on trials that take a few milliseconds, so that they often
    decide at the same moment; no more and no fewer than the budget complete."""
    url = postgres.create_database("racing")

    def quick_training(config, run_dir, overwrite, data):
        time.sleep(random.uniform(0, 0.05))
        return types.SimpleNamespace(val_metrics={"val/accuracy": random.random()})

    monkeypatch.setattr("jaxcx.sweep.train_and_evaluate", quick_training)
    config = with_overrides(tiny_sweep_config(tmp_path / "cache", 12), {"sweep.storage": url})
    with config.unlocked():
        config.sweep.heartbeat_seconds = 1  # waiting workers poll every second
    results, errors = [], []

    def worker():
        try:
            results.append(run_sweep(config, tmp_path / "sweep"))
        except Exception as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 4
    trials = read_trials(url, config.sweep.study_name)
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert len(complete) == 12, [t["state"] for t in trials]
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}
    assert {r.best_value for r in results} == {max(t["value"] for t in complete)}


def test_changed_search_space_is_refused(postgres, tmp_path):
    url = postgres.create_database("changed_space")
    config = with_overrides(tiny_sweep_config(tmp_path / "cache", 2), {"sweep.storage": url})
    open_study(config, tmp_path)
    open_study(config, tmp_path)  # the same search reopens
    wider = with_overrides(config, {"sweep.space.learning_rate.high": 0.1,
                                    "sweep.space.kernel_size.choices": (3, 5)})
    with pytest.raises(StudyMismatchError) as refused:
        open_study(wider, tmp_path)
    message = str(refused.value)
    assert "study 'pneumonia_quick'" in message and "learning_rate: stored" in message
    assert "kernel_size: stored" in message and "dropout" not in message
    assert "new --config.sweep.study_name" in message
    renamed = with_overrides(wider, {"sweep.study_name": "pneumonia_quick_wider"})
    assert open_study(renamed, tmp_path).study_name == "pneumonia_quick_wider"


def test_unreachable_server_stops_the_worker_after_the_retry_time(tmp_path):
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/sweep"  # nothing listens
    config = load_config(f"{CONFIG}:sweep,quick", [f"sweep.storage={url}"])
    with config.unlocked():
        config.sweep.storage_retry_seconds = 3
    start = time.monotonic()
    with pytest.raises(SweepStorageError) as raised:
        run_sweep(config, tmp_path)
    assert 3 <= time.monotonic() - start < 30
    message = str(raised.value)
    assert "cannot reach the sweep storage postgresql://postgres:***@127.0.0.1" in message
    assert "secret" not in message and "retried for 3 s" in message


def test_worker_exits_with_a_message_when_the_server_goes_away(tmp_path):
    server = _start_server()
    try:
        url = server.create_database("goes_away")
        config_file = prepare(tmp_path)
        workdir, log = tmp_path / "sweep", tmp_path / "worker.log"
        proc = start_worker(config_file, url, workdir, log, 1,
                            extra=["sweep.storage_retry_seconds=5"])
        try:
            wait_until(lambda: running_in_folder(url, "pneumonia_quick", workdir), 240,
                       "the trial to start training", [proc])
            server.stop("immediate")
            stopped = time.monotonic()
            proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        try:
            server.stop("immediate")
        except ServerUnavailable:  # already stopped
            pass
        server.remove()
    output = log.read_text()
    assert proc.returncode == 1, output
    assert "unreachable" in output and "retrying in 1 s" in output
    assert f"error: cannot reach the sweep storage {url}" in output
    assert "Running the same command again resumes the study" in output
    assert time.monotonic() - stopped < 120
