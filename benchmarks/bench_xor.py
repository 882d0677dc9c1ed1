"""The XOR/MNIST notebook's XOR work in jaxcx beside a plain PyTorch eager reference, in
one process.

    python benchmarks/bench_xor.py [--parts=step,study] [--repeats=3] [--torch_threads=1,2]

`step`: XOR MLP of width 3 and depth 3, batch 128, Adam: training steps per second over
100 epochs of the 2,500-point training set (2,000 steps), for jaxcx's scanned trainer
(`jaxcx.train.multiseed`), jaxcx's per-step engine (`jaxcx.train.steps`, one jitted call
per step) and torch. `study`: the whole deep-versus-wide study (12 settings x 10 seeds x
100 epochs, SGD) as `jaxcx.studies.xor` runs it, against the same study as a torch
loop over the 120 runs. Both sides shuffle every epoch and count the final partial batch.
Ratios are torch time over jaxcx time (how many times faster jaxcx is), against the
fastest torch thread count timed (default 1: two threads were far slower on this shared
2-core machine); best of `--repeats` timings.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from absl import app, flags

from bench_common import REPEATS, TORCH_THREADS, best_time, machine, torch_speeds
from jaxcx.config import load_config
from jaxcx.data.xor import make_xor
from jaxcx.models import build_model
from jaxcx.studies import xor as xor_study
from jaxcx.train import multiseed, sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train.steps import compile_steps, small_model_compiler_options

_PARTS = flags.DEFINE_list("parts", ["step", "study"], "which benchmarks: step, study")
_STUDY_CONFIG = "configs/xor_study.py"


def torch_mlp(width: int, depth: int) -> torch.nn.Module:
    """The notebook's SimpleClassifier: depth + 1 tanh hidden layers of `width`, one logit."""
    layers, inputs = [], 2
    for _ in range(depth + 1):
        layers += [torch.nn.Linear(inputs, width), torch.nn.Tanh()]
        inputs = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(inputs, 1))


def torch_train(model, optimizer, x, y, *, num_epochs: int, batch_size: int) -> None:
    """Eager training: a fresh permutation per epoch, BCE on logits."""
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(num_epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(x[batch]).squeeze(1), y[batch]).backward()
            optimizer.step()


def bench_step(repeats: int) -> None:
    """Benchmark 1: steps per second of one width-3, depth-3 MLP under Adam."""
    num_epochs, batch_size, learning_rate = 100, 128, 0.01
    x, y = make_xor(2500, 0.1, 0)
    num_steps = num_epochs * multiseed.steps_per_epoch(len(y), batch_size)
    config = load_config(_STUDY_CONFIG, [f"optim.learning_rate={learning_rate}", "optim.name=adam"])
    model = build_model({"name": "xor_mlp", "width": 3, "depth": 3})
    optimizer, _ = make_optimizer(config.optim, num_steps)
    loss = make_loss(config.loss)
    data = {"image": jnp.asarray(x), "label": jnp.asarray(y)}
    key = jax.random.key(0)
    orders = multiseed.epoch_orders(key[None], num_epochs, len(y))[0]

    trainer = multiseed.make_seed_trainer(model, optimizer, loss, num_epochs=num_epochs, batch_size=batch_size)
    start = time.perf_counter()
    scanned = jax.jit(trainer, compiler_options=small_model_compiler_options())
    scanned = scanned.lower(key, data, orders).compile()
    scan_compile = time.perf_counter() - start
    scan_seconds = best_time(lambda: jax.block_until_ready(scanned(key, data, orders)), repeats)

    mesh = sharding.make_mesh()
    train_step, _ = compile_steps(loss, mesh, 2)
    device_batches = [
        sharding.shard_batch({"image": x[order], "label": y[order],
                              "mask": np.ones(len(order), np.float32)}, mesh)
        for order in np.array_split(orders[0], len(orders[0]) // batch_size + 1)[:-1]]

    def engine_run():
        state = sharding.replicate(create_train_state(model, optimizer, x[:1], 0), mesh)
        for step in range(num_steps):
            state, _ = train_step(state, device_batches[step % len(device_batches)])
        jax.block_until_ready(state.params)

    engine_run()  # compile
    engine_seconds = best_time(engine_run, repeats)

    tx, ty = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))

    def torch_run():
        torch.manual_seed(0)
        net = torch_mlp(3, 3)
        torch_train(net, torch.optim.Adam(net.parameters(), lr=learning_rate), tx, ty,
                    num_epochs=num_epochs, batch_size=batch_size)

    torch_seconds = torch_speeds(torch_run, repeats)
    torch_best = min(torch_seconds.values())
    print(f"\n[1] XOR MLP width 3 depth 3, batch 128, Adam, {num_steps} steps")
    print(f"  jaxcx multiseed (lax.scan):  {num_steps / scan_seconds:10.0f} steps/s"
          f"   (compile {scan_compile:.2f} s)   ratio {torch_best / scan_seconds:5.1f}x")
    print(f"  jaxcx steps (jit per step):  {num_steps / engine_seconds:10.0f} steps/s"
          f"   ratio {torch_best / engine_seconds:5.1f}x")
    for threads, seconds in torch_seconds.items():
        print(f"  torch eager, {threads} thread(s):    {num_steps / seconds:10.0f} steps/s")


def torch_study(config) -> dict[tuple[int, int], float]:
    """The study as a torch loop over settings x seeds; mean evaluation accuracy per setting."""
    (train_x, train_y), (eval_x, eval_y) = xor_study.load_xor_data(config)
    tx, ty = torch.from_numpy(train_x), torch.from_numpy(train_y.astype(np.float32))
    ex, ey = torch.from_numpy(eval_x), torch.from_numpy(eval_y)
    means = {}
    for setting in xor_study.settings_grid(config.study.widths, config.study.depths):
        accuracies = []
        for seed in range(config.study.num_seeds):
            torch.manual_seed(seed)
            net = torch_mlp(setting.width, setting.depth)
            torch_train(net, torch.optim.SGD(net.parameters(), lr=config.optim.learning_rate),
                        tx, ty, num_epochs=config.train.num_epochs,
                        batch_size=config.train.batch_size)
            with torch.no_grad():
                accuracies.append(((net(ex).squeeze(1) >= 0).long() == ey).float().mean().item())
        means[(setting.width, setting.depth)] = float(np.mean(accuracies))
    return means


def bench_study(repeats: int) -> None:
    """Benchmark 2: wall time of the whole study, compile included for jaxcx."""
    config = load_config(_STUDY_CONFIG)
    timings = []
    for _ in range(repeats):
        jax.clear_caches()
        start = time.perf_counter()
        study = xor_study.run_xor_study(config)
        timings.append((time.perf_counter() - start, study))
    jax_seconds, study = min(timings, key=lambda item: item[0])
    torch_seconds, torch_means = {}, {}
    for threads in map(int, TORCH_THREADS.value):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        torch_means = torch_study(config)
        torch_seconds[threads] = time.perf_counter() - start
    torch_best = min(torch_seconds.values())
    runs = len(study.results) * config.study.num_seeds
    print(f"\n[2] XOR study: {len(study.results)} settings x {config.study.num_seeds} seeds x "
          f"{config.train.num_epochs} epochs ({runs} runs)")
    print(f"  jaxcx vmapped: {jax_seconds:7.2f} s wall (compile {study.compile_seconds:.2f} s, "
          f"run {study.run_seconds:.2f} s)   ratio {torch_best / jax_seconds:5.1f}x"
          f" (run only {torch_best / study.run_seconds:.0f}x)")
    for threads, seconds in torch_seconds.items():
        print(f"  torch loop over runs, {threads} thread(s): {seconds:7.2f} s wall")
    print("  mean accuracy width 3 (jaxcx / torch): " + ", ".join(
        f"d{r.setting.depth} {r.eval_accuracy.mean():.3f}/{torch_means[(3, r.setting.depth)]:.3f}"
        for r in study.results if r.setting.width == 3))


def main(argv):
    del argv
    print(f"machine: {machine()}")
    if "step" in _PARTS.value:
        bench_step(REPEATS.value)
    if "study" in _PARTS.value:
        bench_study(REPEATS.value)


if __name__ == "__main__":
    app.run(main)
