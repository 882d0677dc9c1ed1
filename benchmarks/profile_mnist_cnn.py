"""Where the MNIST CNN's training step (the XOR/MNIST notebook's model) spends its time,
per XLA kernel.

    python benchmarks/profile_mnist_cnn.py [--conv=fused|xla|patch|auto] [--steps=100] [--top=15]
        [--hlo=FILE]

Runs the engine's train step (batch 64, Adam, compiled as `fit` compiles it for
`configs/mnist.py`) on random images, prints the wall time per step, then records three
`jax.profiler` traces of `--steps` steps and prints each XLA kernel's time per step (the
least of the three traces). XLA:CPU runs Eigen convolutions partly on its thread pool
outside their own trace events, so their rows are lower bounds; the sum of the rows is
therefore less than the wall time. Kernel names are instruction names of the compiled
program, which `--hlo=FILE` writes out as text.
"""

from __future__ import annotations

import collections
import glob
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

from jaxcx.config import load_config
from jaxcx.models import build_model
from jaxcx.models.layers import CONV_FORMS
from jaxcx.train import sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train.steps import compile_steps, small_model_compiler_options

_CONV = flags.DEFINE_enum("conv", "fused", list(CONV_FORMS), "mnist_cnn's conv form")
_STEPS = flags.DEFINE_integer("steps", 100, "steps per timing and per trace")
_TOP = flags.DEFINE_integer("top", 15, "kernels to print")
_HLO = flags.DEFINE_string("hlo", None, "write the compiled step's HLO text to this file")
_BATCH_SIZE = 64
_TRACES = 3


def kernel_times(trace_dir: str) -> collections.Counter:
    """Nanoseconds per XLA kernel name in the trace written to `trace_dir`."""
    (path,) = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)
    totals = collections.Counter()
    for plane in jax.profiler.ProfileData.from_file(path).planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLA"):  # XLA:CPU's executor and worker threads
                continue
            for event in line.events:
                if not event.name.startswith(("ThunkExecutor", "ThreadpoolListener", "end:")):
                    totals[event.name] += event.duration_ns
    return totals


def main(argv):
    del argv
    steps = _STEPS.value
    config = load_config("configs/mnist.py")
    model = build_model({**config.study.candidate.model.to_dict(), "conv": _CONV.value})
    optimizer, _ = make_optimizer(config.optim, steps)
    mesh = sharding.make_mesh()
    options = small_model_compiler_options() if config.train.xla_small_model else None
    train_step, _ = compile_steps(make_loss(config.loss), mesh, 10, options)
    rng = np.random.default_rng(0)
    batches = [sharding.shard_batch({
        "image": rng.random((_BATCH_SIZE, 28, 28, 1), dtype=np.float32),
        "label": rng.integers(0, 10, _BATCH_SIZE).astype(np.int32),
        "mask": np.ones(_BATCH_SIZE, np.float32)}, mesh) for _ in range(steps)]
    state = sharding.replicate(create_train_state(model, optimizer, batches[0]["image"][:1], 0),
                               mesh)

    def run():
        nonlocal state
        for batch in batches:
            state, _ = train_step(state, batch)
        jax.block_until_ready(state.params)

    run()  # compile and warm up
    if _HLO.value:
        with open(_HLO.value, "w") as file:
            file.write(train_step.lower(state, batches[0]).compile().as_text())
    best = min(_timed(run) for _ in range(3))
    print(f"mnist_cnn(conv={_CONV.value!r}), batch {_BATCH_SIZE}: {best / steps * 1e6:.0f} us "
          f"per step ({steps * _BATCH_SIZE / best:.0f} img/s)")
    traces = []
    for _ in range(_TRACES):
        with tempfile.TemporaryDirectory() as trace_dir:
            with jax.profiler.trace(trace_dir):
                run()
            traces.append(kernel_times(trace_dir))
    least = collections.Counter({name: min(t.get(name, 0) for t in traces) for name in traces[0]})
    print(f"kernels, us per step (least of {_TRACES} traces; sum "
          f"{sum(least.values()) / steps / 1e3:.0f} us):")
    for name, nanoseconds in least.most_common(_TOP.value):
        print(f"  {nanoseconds / steps / 1e3:8.1f}  {name}")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    app.run(main)
