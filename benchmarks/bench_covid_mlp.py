"""The COVID notebook's X-ray MLP (`covid_mlp`: flatten 256x256x1, sigmoid Dense layers,
one logit), batch 64, SGD 1e-3: training images/s, GFLOP/s and peak memory of the engine's
jitted step beside PyTorch eager.

    python benchmarks/bench_covid_mlp.py [--rows=modified,sample] [--steps=5] [--repeats=3]
        [--torch_threads=1,2] [--xla_small_model] [--quick]

Rows: `modified`, the notebook's modified model, hidden (1024, 256) (67,372,545
parameters); `sample`, its sample model, hidden (1024,) (67,110,913). One measured step is
a full training step: forward, sigmoid BCE on one logit with random 0/1 integer labels
(mean over the batch), backward, plain SGD (no momentum) lr 1e-3. jaxcx runs
`jaxcx.train.steps.compile_steps`' jitted step over a one-axis mesh, as
`jaxcx.train.loop.fit` runs it (loss `sigmoid_bce`; XLA's default options, or
`small_model_compiler_options()` with `--xla_small_model`). The PyTorch model is written
here with the same layers (`nn.Linear`, sigmoid; `BCEWithLogitsLoss`, `torch.optim.SGD`);
its parameter count is checked against `jaxcx.models.summary` before any timing. Steady
speed: best of `--repeats` runs of `--steps` steps on one batch already in memory, after
one warm-up step; jaxcx's compile time is its first call less one steady step. Ratios are
jaxcx img/s over the fastest torch thread count's.

FLOPs per step (matrix products only; not counted: biases, activations and loss, under
1 MFLOP, the SGD update, 2 FLOPs per parameter, 0.13 GFLOP, and in jaxcx's step the
gradient norm it logs, another 0.13 GFLOP): with batch B and layer widths n_0 = 65536 inputs,
n_1, ..., n_L = 1, each Dense layer costs 2*B*n_in*n_out for the forward product and the
same for its weight gradient (x^T @ dy); every layer but the first also costs 2*B*n_in*n_out
for its input gradient (dy @ W^T); the first layer's input gradient is the gradient of the
images, which neither framework computes (torch: the input does not require grad; jax:
only the parameters are differentiated). For the modified model at B = 64 that is
2*64*(65536*1024 + 1024*256 + 256*1) = 8.62 GFLOP forward, as much for the weight
gradients and 2*64*(1024*256 + 256*1) = 0.03 GFLOP for the input gradients: 17.28 GFLOP.

Each side of each row runs in its own child process (`--side=jax` / `--side=torch`,
spawned by the parent), which reports its peak resident set size (`ru_maxrss`) after its
last step, its resident size then, and its peak after imports (Python, jax and torch
loaded, nothing allocated) for reference. The peak covers the model's initialisation too:
the random draw of the 65536x1024 kernel (256 MiB) holds about four times its size while
it runs, more than the jaxcx step itself needs (here in one jit, as in
`bench_chest_models.py`; `fit`'s op-by-op initialisation peaks as high). The model is
built with `covid_mlp`'s defaults but `hidden`: the initialiser does not change the timings.

Then the same child measures its framework's matmul roof, right after the steps, so that
both see the same load on a shared machine: best GFLOP/s (of at least 3) of a float32
(B x n_0) @ (n_0 x n_1) product (the shape of the first layer's forward) and of a
(n_0 x B) @ (B x n_1) product (the shape of its weight gradient), in jax (`jnp.dot` under
`jax.jit`) or in torch at each `--torch_threads` count. "roof %" is the time the step's
products would take at those rates (forward and input-gradient products at the first
rate, weight gradients at the second; same framework and thread count) over the measured
step time. The parent checks the parameter counts (the torch model on the meta device)
and prints the tables.

`--quick`: a tiny variant (32x32x1 inputs, hidden (64, 16), batch 8, 1 repeat of 2 steps
unless --steps/--repeats are given), as a smoke check.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from absl import app, flags
from torch import nn

from bench_common import REPEATS, TORCH_THREADS, best_time, machine, torch_speeds
from jaxcx.config import ConfigDict
from jaxcx.models import build_model, summary
from jaxcx.train import sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train.steps import compile_steps, small_model_compiler_options

ROWS = {  # key: (hidden widths, tiny --quick hidden widths)
    "modified": ((1024, 256), (64, 16)),
    "sample": ((1024,), (64,)),
}
SIZE, BATCH = 256, 64
QUICK_SIZE, QUICK_BATCH = 32, 8
LEARNING_RATE = 1e-3
RESULT = "RESULT "  # prefix of a child's one result line

_ROWS = flags.DEFINE_list("rows", list(ROWS), f"rows to run, of {', '.join(ROWS)}")
_STEPS = flags.DEFINE_integer("steps", 5, "timed training steps per timing (2 with --quick)")
_QUICK = flags.DEFINE_bool("quick", False, "tiny variant: 32x32x1, hidden (64, 16), batch 8 "
                           "(and 1 repeat of 2 steps unless --steps/--repeats are given)")
_XLA_SMALL_MODEL = flags.DEFINE_bool(
    "xla_small_model", False, "compile the jaxcx step with small_model_compiler_options()")
_SIDE = flags.DEFINE_enum("side", "both", ["both", "jax", "torch"],
                          "both: the parent, which runs each side of each row in a child "
                          "process; jax / torch: one such child (with --rows=ROW)")


def _setting() -> tuple[int, int, int, int]:
    """(input size, batch, steps, repeats) for the flags given."""
    quick = _QUICK.value
    steps = _STEPS.value if (flags.FLAGS["steps"].present or not quick) else 2
    repeats = REPEATS.value if (flags.FLAGS["repeats"].present or not quick) else 1
    size, batch = (QUICK_SIZE, QUICK_BATCH) if quick else (SIZE, BATCH)
    return size, batch, steps, repeats


def _hidden(row: str) -> tuple[int, ...]:
    hidden, tiny = ROWS[row]
    return tiny if _QUICK.value else hidden


def _name(row: str) -> str:
    return f"{row} {'-'.join(map(str, _hidden(row)))}-1"


def _compiler_options() -> dict | None:
    return small_model_compiler_options() if _XLA_SMALL_MODEL.value else None


def step_flops(batch: int, in_features: int, hidden: tuple[int, ...]) -> dict[str, int]:
    """Matrix-product FLOPs of one training step, by kind (see the module docstring)."""
    layers = list(zip((in_features, *hidden), (*hidden, 1)))
    products = [2 * batch * n_in * n_out for n_in, n_out in layers]
    return {"forward": sum(products), "weight_grad": sum(products),
            "input_grad": sum(products[1:])}


def _data(size: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, size, size, 1)).astype(np.float32)
    return images, rng.integers(0, 2, batch).astype(np.int32)


# --- the PyTorch model --------------------------------------------------------------------

class TorchMLP(nn.Module):
    """Flatten, `nn.Linear` + sigmoid per hidden width, `nn.Linear` to one logit: the
    layout of `jaxcx.models.mlp.MLP` with `activation="sigmoid"`, `num_outputs=1`."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], device=None):
        super().__init__()
        widths = (in_features, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(n_in, n_out, device=device)
                                    for n_in, n_out in zip(widths, widths[1:]))
        self.out = nn.Linear(widths[-1], 1, device=device)

    def forward(self, x):
        x = torch.flatten(x, 1)
        for layer in self.hidden:
            x = torch.sigmoid(layer(x))
        return self.out(x)


# --- the children: one side of one row each ---------------------------------------------

def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mib() -> float:
    """This process's resident size now (Linux; NaN elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def jax_child(row: str) -> dict:
    """Steady seconds per step and compile seconds of the engine's jitted train step, and
    the resident size after the last step."""
    size, batch_size, steps, repeats = _setting()
    images, labels = _data(size, batch_size)
    model = build_model({"name": "covid_mlp", "hidden": _hidden(row)})
    mesh = sharding.make_mesh()
    loss = make_loss(ConfigDict({"name": "sigmoid_bce"}))
    tx, _ = make_optimizer(ConfigDict({"name": "sgd", "learning_rate": LEARNING_RATE}), 1000)
    train_step, _ = compile_steps(loss, mesh, 2, _compiler_options())
    batch = sharding.shard_batch({"image": images, "label": labels,
                                  "mask": np.ones(batch_size, np.float32)}, mesh)
    # Initialised as `fit` does, inside one jit (not part of any timing).
    init = jax.jit(lambda sample: create_train_state(model, tx, sample, 0))
    state = sharding.replicate(init(images[:1]), mesh)
    start = time.perf_counter()
    state, out = train_step(state, batch)
    jax.block_until_ready((state, out))
    first_call = time.perf_counter() - start

    def run(count):
        nonlocal state, out
        for _ in range(count):
            state, out = train_step(state, batch)
        jax.block_until_ready((state, out))

    run(1)  # warm-up
    step = best_time(lambda: run(steps), repeats) / steps
    return {"step": step, "compile": max(first_call - step, 0.0), "rss_end_mib": _rss_mib()}


def torch_child(row: str) -> dict:
    """Steady seconds per step of the same training step in PyTorch eager, per thread count,
    and the resident size after the last step."""
    size, batch_size, steps, repeats = _setting()
    images, labels = _data(size, batch_size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels).float()[:, None]  # BCEWithLogitsLoss takes float targets
    torch.manual_seed(0)
    net = TorchMLP(size * size, _hidden(row))
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()

    def run(count):
        for _ in range(count):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            optimizer.step()

    run(1)  # warm-up
    seconds = torch_speeds(lambda: run(steps), repeats)
    return {"steps": {str(threads): total / steps for threads, total in seconds.items()},
            "rss_end_mib": _rss_mib()}


def _roof_operands(batch: int, in_features: int, width: int) -> dict[str, tuple]:
    """Random float32 operands of the first layer's forward-shaped and
    weight-gradient-shaped products."""
    rng = np.random.default_rng(1)
    shapes = {"forward": ((batch, in_features), (in_features, width)),
              "weight_grad": ((in_features, batch), (batch, width))}
    return {kind: tuple(rng.normal(size=shape).astype(np.float32) for shape in pair)
            for kind, pair in shapes.items()}


def jax_roof(batch: int, in_features: int, width: int, repeats: int) -> dict[str, dict]:
    """Best GFLOP/s of the two first-layer products under `jax.jit(jnp.dot)` (a fresh
    output each call, as in the step)."""
    flops, dot, roof = 2 * batch * in_features * width, jax.jit(jnp.dot), {}
    for kind, (a, b) in _roof_operands(batch, in_features, width).items():
        a, b = jnp.asarray(a), jnp.asarray(b)
        dot(a, b).block_until_ready()  # compile
        roof[kind] = flops / best_time(lambda: dot(a, b).block_until_ready(), repeats) / 1e9
    return {"jax": roof}


def torch_roof(batch: int, in_features: int, width: int, repeats: int) -> dict[str, dict]:
    """Best GFLOP/s of the two first-layer products as torch `a @ b`, per thread count."""
    flops, roof = 2 * batch * in_features * width, {}
    for kind, (a, b) in _roof_operands(batch, in_features, width).items():
        a, b = torch.from_numpy(a), torch.from_numpy(b)
        a @ b  # warm-up
        for threads, seconds in torch_speeds(lambda: a @ b, repeats).items():
            roof.setdefault(f"torch {threads}", {})[kind] = flops / seconds / 1e9
    return roof


def child_main(side: str) -> None:
    if len(_ROWS.value) != 1:
        raise app.UsageError("a --side=jax/torch child runs one row: pass --rows=ROW")
    row = _ROWS.value[0]
    baseline = _max_rss_mib()
    result = (jax_child if side == "jax" else torch_child)(row)
    result.update(rss_start_mib=baseline, peak_rss_mib=_max_rss_mib())
    # The roof right after the steps, so that both see the same load on a shared machine.
    size, batch_size, _, repeats = _setting()
    result["roof"] = (jax_roof if side == "jax" else torch_roof)(
        batch_size, size * size, _hidden(row)[0], max(repeats, 3))
    print(RESULT + json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)  # skips jax's and torch's interpreter teardown (about a second)


def run_child(side: str, row: str) -> dict:
    """Runs one side of one row in a fresh Python process and returns its result."""
    args = [sys.executable, os.path.abspath(__file__), f"--side={side}", f"--rows={row}",
            f"--torch_threads={','.join(TORCH_THREADS.value)}"]
    args += [f"--{name}={flags.FLAGS[name].value}" for name in ("steps", "repeats")
             if flags.FLAGS[name].present]
    args += ["--quick"] * _QUICK.value + ["--xla_small_model"] * _XLA_SMALL_MODEL.value
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    results = [line[len(RESULT):] for line in done.stdout.splitlines()
               if line.startswith(RESULT)]
    if done.returncode != 0 or not results:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"the {side} child for row {row} failed (exit {done.returncode})")
    return json.loads(results[-1])


# --- the parent: parameter check, children, tables ---------------------------------------

def check_params(row: str, size: int) -> int:
    """jaxcx's parameter count, asserted equal to the torch model's."""
    hidden = _hidden(row)
    jax_params = summary(build_model({"name": "covid_mlp", "hidden": hidden}),
                         (1, size, size, 1)).total_params
    net = TorchMLP(size * size, hidden, device="meta")  # shapes only, nothing allocated
    torch_params = sum(p.numel() for p in net.parameters())
    assert jax_params == torch_params, (
        f"{row}: jaxcx has {jax_params:,} parameters, the torch model {torch_params:,}")
    return jax_params


def _rate(images_per_second: float) -> str:
    return f"{images_per_second:,.1f}" if images_per_second < 1000 else f"{images_per_second:,.0f}"


def parent_main() -> None:
    unknown = [row for row in _ROWS.value if row not in ROWS]
    if unknown:
        raise app.UsageError(f"unknown --rows {unknown}; choose from {', '.join(ROWS)}")
    size, batch_size, steps, repeats = _setting()
    in_features = size * size
    print(f"machine: {machine()}")
    print(f"load average at start: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(f"XLA_FLAGS: {os.environ.get('XLA_FLAGS') or '(not set)'}")
    print(f"jaxcx compiler_options: {_compiler_options() or '(XLA defaults)'}")
    print(f"torch threads timed: {','.join(TORCH_THREADS.value)}")
    print(f"timing: best of {repeats} run(s) of {steps} step(s) after 1 warm-up step; "
          f"input {size}x{size}x1, batch {batch_size}{'; --quick' if _QUICK.value else ''}")

    params = {row: check_params(row, size) for row in _ROWS.value}
    for row, count in params.items():
        print(f"{_name(row)}: {count:,} parameters in both")

    results = {}
    for row in _ROWS.value:
        for side in ("jax", "torch"):
            print(f"running {side} side of {row} ...", flush=True)
            results[row, side] = run_child(side, row)

    print(f"load average at end: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")

    roofs = {row: {**results[row, "jax"]["roof"], **results[row, "torch"]["roof"]}
             for row in _ROWS.value}
    columns = list(roofs[_ROWS.value[0]])
    print(f"\nMatmul roof, float32 GFLOP/s, best of {max(repeats, 3)}, measured in each "
          "row's own processes right after its steps; jax: jnp.dot under jax.jit; torch: "
          "a @ b per thread count:\n")
    print("| row | product | " + " | ".join(columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for row, roof in roofs.items():
        width = _hidden(row)[0]
        for kind, (rows, cols, inner) in (
                ("forward", (batch_size, width, in_features)),
                ("weight_grad", (in_features, width, batch_size))):
            print(f"| {row} | ({rows}x{inner})@({inner}x{cols}) | "
                  + " | ".join(f"{roof[column][kind]:.1f}" for column in columns) + " |")

    lines = []
    for row in _ROWS.value:
        name = _name(row)
        hidden = _hidden(row)
        flops = step_flops(batch_size, in_features, hidden)
        roof = roofs[row]

        def roof_seconds(side):
            rates = roof[side]
            return ((flops["forward"] + flops["input_grad"]) / rates["forward"]
                    + flops["weight_grad"] / rates["weight_grad"]) / 1e9

        total = sum(flops.values())
        jax_result, torch_result = results[row, "jax"], results[row, "torch"]
        jax_step = jax_result["step"]
        torch_steps = {int(threads): seconds
                       for threads, seconds in torch_result["steps"].items()}
        threads, torch_step = min(torch_steps.items(), key=lambda item: item[1])
        for count, seconds in torch_steps.items():
            print(f"  {name}, torch {count} thread(s): {_rate(batch_size / seconds)} img/s, "
                  f"{total / seconds / 1e9:.1f} GFLOP/s")
        lines.append(
            f"| {name} | {params[row]:,} | {total / 1e9:.3g} | "
            f"{_rate(batch_size / jax_step)} | {_rate(batch_size / torch_step)} ({threads} thr) | "
            f"**{torch_step / jax_step:.2f}x** | "
            f"{total / jax_step / 1e9:.1f} ({100 * roof_seconds('jax') / jax_step:.0f}%) | "
            f"{total / torch_step / 1e9:.1f} "
            f"({100 * roof_seconds(f'torch {threads}') / torch_step:.0f}%) | "
            f"{jax_result['compile']:.1f} | "
            + " | ".join(f"{result['peak_rss_mib']:,.0f} / {result['rss_end_mib']:,.0f} "
                         f"({result['rss_start_mib']:,.0f})"
                         for result in (jax_result, torch_result)) + " |")

    options = (f"compiler_options={_compiler_options()}" if _compiler_options()
               else "XLA's default compiler options")
    print(f"\nTraining step (sigmoid BCE on one logit, SGD {LEARNING_RATE:g}), batch "
          f"{batch_size}; jaxcx: compile_steps' jitted step, {options}; torch: eager, fastest "
          f"of --torch_threads={','.join(TORCH_THREADS.value)}; ratio: jaxcx img/s over "
          "torch's; GFLOP/s: the step's matrix-product FLOPs over its time (roof %: the "
          "products' time at the roof rates, same framework and thread count, over the step "
          "time); compile s: jaxcx's first call less one steady step; RSS MiB: each side's "
          "own process, its peak (ru_maxrss) / its resident size after the last step (in "
          "brackets: after imports).\n")
    print("| model | params | GFLOP/step | jaxcx img/s | torch img/s | ratio | "
          "jaxcx GFLOP/s (roof %) | torch GFLOP/s (roof %) | compile s | "
          "jaxcx RSS MiB peak / end | torch RSS MiB peak / end |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


def main(argv):
    del argv
    if _SIDE.value == "both":
        parent_main()
    else:
        child_main(_SIDE.value)


if __name__ == "__main__":
    app.run(main)
