"""The multi-label chest X-ray models (DenseNet-121, ResNet-18, ResNet-50; 1 input channel,
14 sigmoid outputs): training images/s of the engine's jitted step beside PyTorch eager.

    python benchmarks/bench_chest_models.py [--rows=densenet121_64,resnet18_224] [--steps=5]
        [--repeats=3] [--torch_threads=1,2] [--xla_fast_compile] [--quick]

One measured step is a full training step: forward with BatchNorm in training mode,
BCE-with-logits on random 0/1 targets (mean over the batch's labels), backward, Adam 1e-3
update. jaxcx runs `jaxcx.train.steps.compile_steps`' jitted step over a one-axis mesh,
as `jaxcx.train.loop.fit` runs it (`sigmoid_bce` with `multilabel=True`; with
`--xla_fast_compile`, compiled with `small_model_compiler_options(fast_compile=True)`).
The PyTorch models are written here with the same layers as `jaxcx.models.DenseNet` and
`jaxcx.models.ResNet` (DenseNet-BC; ResNet v1.5 as torchvision's; BatchNorm momentum 0.1,
eps 1e-5); their parameter counts are checked against `jaxcx.models.summary` before any
timing. Steady speed: best of `--repeats` runs of `--steps` steps on one batch already in
memory, after one warm-up step (random images: speed does not depend on content). jaxcx's
compile time is its first call less one steady step. Ratios are jaxcx img/s over the
fastest torch thread count's.

`--quick` swaps in tiny variants of the selected models (DenseNet blocks (2, 2) growth 8;
ResNets with stages (1, 1)) at 32 px, batch 4, for a smoke check.
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np
import torch
from absl import app, flags
from torch import nn

from bench_common import REPEATS, TORCH_THREADS, best_time, machine, torch_speeds
from jaxcx.config import ConfigDict
from jaxcx.models import build_model, summary
from jaxcx.models.densenet import DENSENET_BLOCKS
from jaxcx.models.resnet import RESNET_STAGES
from jaxcx.train import sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train.steps import compile_steps, small_model_compiler_options

NUM_CLASSES = 14
MODELS = {  # key: (name, jaxcx model config, tiny --quick variant)
    "densenet121": ("DenseNet-121", {"name": "densenet", "depth": 121},
                    {"name": "densenet", "depth": 121, "blocks": (2, 2), "growth": 8}),
    "resnet18": ("ResNet-18", {"name": "resnet", "depth": 18},
                 {"name": "resnet", "depth": 18, "stages": (1, 1), "stage_widths": (16, 32),
                  "stem_width": 16}),
    "resnet50": ("ResNet-50", {"name": "resnet", "depth": 50},
                 {"name": "resnet", "depth": 50, "stages": (1, 1), "stage_widths": (8, 16),
                  "stem_width": 16}),
}
ROWS = {f"{key}_{size}": (key, size, batch) for key in MODELS
        for size, batch in ((64, 32), (224, 8))}
QUICK_SIZE, QUICK_BATCH = 32, 4

_ROWS = flags.DEFINE_list("rows", list(ROWS), f"rows to run, of {', '.join(ROWS)}")
_STEPS = flags.DEFINE_integer("steps", 5, "timed training steps per timing (2 with --quick)")
_QUICK = flags.DEFINE_bool("quick", False, "tiny model variants at 32 px, batch 4 "
                           "(and 1 repeat of 2 steps unless --steps/--repeats are given)")
_XLA_FAST_COMPILE = flags.DEFINE_bool(
    "xla_fast_compile", False,
    "compile the jaxcx step with small_model_compiler_options(fast_compile=True)")


# --- PyTorch models of the same shapes as jaxcx's ---------------------------------------

def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)  # Flax momentum 0.9


class TorchDenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (`bottleneck * growth`), BN-ReLU-conv3x3 (`growth`), concatenated."""

    def __init__(self, channels: int, growth: int, bottleneck: int):
        super().__init__()
        width = bottleneck * growth
        self.norm1, self.conv1 = _bn(channels), nn.Conv2d(channels, width, 1, bias=False)
        self.norm2 = _bn(width)
        self.conv2 = nn.Conv2d(width, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv1(torch.relu(self.norm1(x)))
        return torch.cat([x, self.conv2(torch.relu(self.norm2(y)))], 1)


class TorchDenseNet(nn.Module):
    """DenseNet-BC in the layout of `jaxcx.models.DenseNet`."""

    def __init__(self, blocks, growth: int, bottleneck: int, compression: float,
                 num_classes: int, in_channels: int = 1):
        super().__init__()
        channels = 2 * growth
        layers = [nn.Conv2d(in_channels, channels, 7, 2, 3, bias=False), _bn(channels),
                  nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        for block, count in enumerate(blocks, start=1):
            for _ in range(count):
                layers.append(TorchDenseLayer(channels, growth, bottleneck))
                channels += growth
            if block < len(blocks):
                reduced = int(channels * compression)
                layers += [_bn(channels), nn.ReLU(), nn.Conv2d(channels, reduced, 1, bias=False),
                           nn.AvgPool2d(2, 2)]
                channels = reduced
        layers += [_bn(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), _bn(cout)]


class TorchBlock(nn.Module):
    """torchvision's BasicBlock (two 3x3) or v1.5 Bottleneck (1x1, 3x3 with the stride,
    1x1 x4), with a 1x1 conv + BN downsample where the shape changes."""

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool):
        super().__init__()
        cout = 4 * width if bottleneck else width
        if bottleneck:
            layers = (_conv_bn(cin, width, 1) + [nn.ReLU()] + _conv_bn(width, width, 3, stride)
                      + [nn.ReLU()] + _conv_bn(width, cout, 1))
        else:
            layers = _conv_bn(cin, width, 3, stride) + [nn.ReLU()] + _conv_bn(width, width, 3)
        self.body = nn.Sequential(*layers)
        self.downsample = (nn.Sequential(*_conv_bn(cin, cout, 1, stride))
                           if stride != 1 or cin != cout else nn.Identity())
        self.out_channels = cout

    def forward(self, x):
        return torch.relu(self.body(x) + self.downsample(x))


class TorchResNet(nn.Module):
    """ResNet in the layout of `jaxcx.models.ResNet`."""

    def __init__(self, stages, widths, stem_width: int, bottleneck: bool, num_classes: int,
                 in_channels: int = 1):
        super().__init__()
        layers = _conv_bn(in_channels, stem_width, 7, 2) + [nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        channels = stem_width
        for stage, (count, width) in enumerate(zip(stages, widths), start=1):
            for index in range(count):
                block = TorchBlock(channels, width, 2 if index == 0 and stage > 1 else 1,
                                   bottleneck)
                layers.append(block)
                channels = block.out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def torch_model(model) -> nn.Module:
    """The PyTorch twin of a built jaxcx DenseNet or ResNet, read from its fields."""
    if model.__class__.__name__ == "DenseNet":
        blocks = DENSENET_BLOCKS[model.depth] if model.blocks is None else tuple(model.blocks)
        return TorchDenseNet(blocks, model.growth, model.bottleneck, model.compression,
                             model.num_classes)
    stages = RESNET_STAGES[model.depth] if model.stages is None else tuple(model.stages)
    return TorchResNet(stages, tuple(model.stage_widths), model.stem_width, model.depth >= 50,
                       model.num_classes)


# --- timing -------------------------------------------------------------------------------

def jaxcx_speed(model, images, labels, steps, repeats, compiler_options):
    """(steady seconds per step, compile seconds) of the engine's jitted train step."""
    mesh = sharding.make_mesh()
    loss = make_loss(ConfigDict({"name": "sigmoid_bce", "multilabel": True}))
    tx, _ = make_optimizer(ConfigDict({"name": "adam", "learning_rate": 1e-3}), 1000)
    train_step, _ = compile_steps(loss, mesh, NUM_CLASSES, compiler_options)
    batch = sharding.shard_batch({"image": images, "label": labels,
                                  "mask": np.ones(len(images), np.float32)}, mesh)
    # The state is initialised as `fit` does, but inside one jit compiled with the fast
    # options: Flax's op-by-op initialisation compiles every primitive separately (a tiny
    # DenseNet's took 19 s against 8 s). Not part of any timing.
    init = jax.jit(lambda sample: create_train_state(model, tx, sample, 0),
                   compiler_options=small_model_compiler_options(fast_compile=True))
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
    step_seconds = best_time(lambda: run(steps), repeats) / steps
    return step_seconds, max(first_call - step_seconds, 0.0)


def torch_speed(net, images, labels, steps, repeats) -> dict[int, float]:
    """Steady seconds per step of the same training step in PyTorch eager, per thread count."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()

    def run(count):
        for _ in range(count):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            optimizer.step()

    run(1)  # warm-up
    return {threads: seconds / steps
            for threads, seconds in torch_speeds(lambda: run(steps), repeats).items()}


def _rate(images_per_second: float) -> str:
    return f"{images_per_second:,.1f}" if images_per_second < 1000 else f"{images_per_second:,.0f}"


def main(argv):
    del argv
    unknown = [row for row in _ROWS.value if row not in ROWS]
    if unknown:
        raise app.UsageError(f"unknown --rows {unknown}; choose from {', '.join(ROWS)}")
    quick = _QUICK.value
    steps = _STEPS.value if (flags.FLAGS["steps"].present or not quick) else 2
    repeats = REPEATS.value if (flags.FLAGS["repeats"].present or not quick) else 1
    compiler_options = (small_model_compiler_options(fast_compile=True)
                        if _XLA_FAST_COMPILE.value else None)
    # --quick: each selected model once, tiny, at 32 px, batch 4.
    rows = list(dict.fromkeys(
        (ROWS[row][0], QUICK_SIZE, QUICK_BATCH) if quick else ROWS[row] for row in _ROWS.value))

    print(f"machine: {machine()}")
    print(f"jax devices: {jax.devices()}")
    print(f"XLA_FLAGS: {os.environ.get('XLA_FLAGS') or '(not set)'}")
    print(f"jaxcx compiler_options: {compiler_options or '(XLA defaults)'}")
    print(f"jax persistent compilation cache: "
          f"{jax.config.jax_compilation_cache_dir or '(off)'}")
    print(f"torch threads timed: {','.join(TORCH_THREADS.value)} "
          f"(interop threads {torch.get_num_interop_threads()})")
    print(f"timing: best of {repeats} run(s) of {steps} step(s) after 1 warm-up step"
          f"{'; --quick: tiny variants' if quick else ''}")

    lines = []
    for key, size, batch_size in rows:
        name, config, tiny = MODELS[key]
        config = dict(tiny if quick else config, num_classes=NUM_CLASSES, dropout_rate=0.0)
        model = build_model(config)
        torch.manual_seed(0)
        net = torch_model(model)
        jax_params = summary(model, (1, size, size, 1)).total_params
        torch_params = sum(p.numel() for p in net.parameters())
        assert jax_params == torch_params, (
            f"{name}: jaxcx has {jax_params:,} parameters, the torch model {torch_params:,}")
        label = f"{name} (tiny)" if quick else name
        print(f"{label}: {jax_params:,} parameters in both")

        rng = np.random.default_rng(0)
        images = rng.normal(size=(batch_size, size, size, 1)).astype(np.float32)
        labels = rng.integers(0, 2, (batch_size, NUM_CLASSES)).astype(np.float32)
        jax_step, compile_seconds = jaxcx_speed(model, images, labels, steps, repeats,
                                                compiler_options)
        torch_steps = torch_speed(net, images, labels, steps, repeats)
        threads, torch_step = min(torch_steps.items(), key=lambda item: item[1])
        for count, seconds in torch_steps.items():
            print(f"  torch, {count} thread(s): {_rate(batch_size / seconds)} img/s")
        lines.append(f"| {label} | {size} px | {batch_size} | {_rate(batch_size / jax_step)} | "
                     f"{_rate(batch_size / torch_step)} ({threads} thr) | "
                     f"{torch_step / jax_step:.2f} | {compile_seconds:.1f} |")

    options = (f"compiler_options={compiler_options}" if compiler_options
               else "XLA's default compiler options")
    print(f"\nTraining step (BN train mode, BCE-with-logits, Adam), images/s; jaxcx: "
          f"compile_steps' jitted step, {options}; torch: eager, fastest of "
          f"--torch_threads={','.join(TORCH_THREADS.value)}; ratio: jaxcx over torch; "
          f"compile s: jaxcx's first call less one steady step.\n")
    print("| model | input | batch | jaxcx img/s | torch img/s | ratio | compile s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
