"""Data parallelism on CPU: 4 forced devices, and two `jax.distributed` processes."""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jaxcx import tracking

REPO = Path(__file__).resolve().parents[1]

SHARDED_VS_SINGLE = textwrap.dedent("""
    import jax
    jax.config.update("jax_num_cpu_devices", 4)
    import numpy as np
    from jaxcx.config import load_config
    from jaxcx.models import build_model
    from jaxcx.train import sharding
    from jaxcx.train.losses import make_loss
    from jaxcx.train.optim import make_optimizer
    from jaxcx.train.state import create_train_state
    from jaxcx.train.steps import compile_steps

    assert len(jax.devices()) == 4, jax.devices()
    config = load_config("configs/pneumonia.py:regularisation,quick",
                         ["--config.optim.name=sgd", "--config.optim.learning_rate=0.05"])
    model = build_model(config.model)
    rng = np.random.default_rng(0)
    batches = [{"image": rng.normal(size=(16, 32, 32, 1)).astype(np.float32),
                "label": rng.integers(0, 2, 16).astype(np.int32),
                "mask": np.ones(16, np.float32)} for _ in range(3)]
    eval_batch = {**batches[0], "mask": np.r_[np.ones(13), np.zeros(3)].astype(np.float32)}
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = sharding.make_mesh(devices)
        tx, _ = make_optimizer(config.optim, 10)
        state = sharding.replicate(create_train_state(model, tx, batches[0]["image"][:1], 0), mesh)
        train_step, eval_step = compile_steps(make_loss(config.loss), mesh, 2)
        losses = []
        for batch in batches:
            state, out = train_step(state, sharding.shard_batch(batch, mesh))
            losses.append(float(out["loss_sum"]) / float(out["loss_weight"]))
        evaluated = sharding.to_host(eval_step(state, sharding.shard_batch(eval_batch, mesh)))
        results.append((sharding.to_host(state.params), sharding.to_host(state.batch_stats),
                        losses, evaluated))
    (p1, s1, l1, e1), (p4, s4, l4, e4) = results
    np.testing.assert_allclose(l1, l4, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves((p1, s1)), jax.tree_util.tree_leaves((p4, s4))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(e1["confusion"], e4["confusion"])
    np.testing.assert_allclose(e1["probs"], e4["probs"], rtol=1e-5, atol=1e-6)
    print("OK", l1)
""")


def _env():
    return {**os.environ, "JAXCX_NO_PROGRESS": "1", "PYTHONPATH": str(REPO)}


def test_sharded_step_equals_single_device_step():
    """BatchNorm statistics, dropout masks and eval counts agree across 1 and 4 devices."""
    result = subprocess.run([sys.executable, "-c", SHARDED_VS_SINGLE], cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("OK")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


XOR_SGD = ["--config=configs/xor.py:quick", "--config.optim.name=sgd",
           "--config.optim.learning_rate=0.1", "--config.tracking.tensorboard=false"]

# `python -m experiments.train` that prints jax.process_count() once the process has joined
# (or not) the distributed job, so the test sees how many processes really took part.
TRAIN_REPORTING_PROCESSES = textwrap.dedent("""
    import runpy, sys
    import jax
    from jaxcx import launch
    join = launch.init_distributed
    def join_and_report():
        join()
        print(f"jax.process_count()={jax.process_count()} "
              f"jax.process_index()={jax.process_index()}", flush=True)
    launch.init_distributed = join_and_report
    sys.argv = ["experiments/train.py", *sys.argv[1:]]
    runpy.run_module("experiments.train", run_name="__main__", alter_sys=True)
""")


def _train(*args):
    return [sys.executable, "-c", TRAIN_REPORTING_PROCESSES, *XOR_SGD, *args]


def _evaluated_steps(output):
    return [int(s) for s in re.findall(r"^step (\d+) epoch ", output, re.MULTILINE)]


@pytest.mark.slow
def test_two_process_run_matches_one_process(tmp_path):
    """Two processes on 127.0.0.1, each feeding half of every global batch, train the same
    steps as one process (to float tolerance: only summation order differs). Both must
    report jax.process_count() == 2; one deadline covers both, and both are killed on it."""
    single, double = tmp_path / "single", tmp_path / "double"
    alone = subprocess.run(_train(f"--workdir={single}"), cwd=REPO, env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert "jax.process_count()=1 jax.process_index()=0" in alone.stdout
    address = f"127.0.0.1:{_free_port()}"
    logs = [tmp_path / f"process{i}.log" for i in range(2)]
    workers = []
    try:
        for i, log in enumerate(logs):
            with open(log, "w") as out:
                workers.append(subprocess.Popen(
                    _train(f"--workdir={double}", f"--coordinator_address={address}",
                           "--num_processes=2", f"--process_id={i}"),
                    cwd=REPO, env=_env(), stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 300
        for worker in workers:
            worker.wait(timeout=max(deadline - time.monotonic(), 0.1))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    outputs = [log.read_text() for log in logs]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    for i, output in enumerate(outputs):
        assert f"jax.process_count()=2 jax.process_index()={i}" in output, output[-2000:]
    # Only process 0 reports progress; process 1 trained silently beside it.
    assert _evaluated_steps(outputs[0]) == _evaluated_steps(alone.stdout) == [8, 16, 24]
    assert _evaluated_steps(outputs[1]) == []
    one, two = tracking.read_metrics(single), tracking.read_metrics(double)
    assert [r["step"] for r in one] == [r["step"] for r in two]
    assert [r["step"] for r in one if "val/loss" in r] == [8, 16, 24]
    assert sum("train/running_loss" in r for r in two) == 2  # log_every_steps 10: 10, 20
    for a, b in zip(one, two):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key)
    assert json.loads((double / "config.json").read_text())["name"] == "xor"
