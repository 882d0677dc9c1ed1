"""Images/s of the grain pipeline (decode, grayscale, resize, scale) beside a plain PIL loop,
and of the training feed (cached arrays) beside the pneumonia model's train step.

    python benchmarks/bench_pipeline.py [--num_images=1000] [--sizes=64,128] [--workers=0,2]

Reads the 224 px JPEGs of ../shared/data/chest_xray_224 (or $JAXCX_SHARED_DATA); exits
with a message when they are absent. Both sides produce float32 [0, 1] gray arrays.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

from absl import app, flags
import numpy as np
from PIL import Image

import tempfile

import jax

from jaxcx.config import ConfigDict
from jaxcx.data.builders import preprocess_files
from jaxcx.data.folder import KAGGLE_PNEUMONIA_CLASSES, image_folder_source
from jaxcx.data.pipeline import eval_loader, train_loader
from jaxcx.data.sampling import IndexedSource
from jaxcx.data.transforms import ScaleToUnit, Standardize, standard_transforms
from jaxcx.models import build_model
from jaxcx.train import sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train.steps import compile_steps

_NUM_IMAGES = flags.DEFINE_integer("num_images", 1000, "images per measurement")
_SIZES = flags.DEFINE_list("sizes", ["64", "128"], "output sizes in pixels")
_WORKERS = flags.DEFINE_list("workers", ["0", "2"], "grain worker counts")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 50, "pipeline batch size")


def shared_data_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("JAXCX_SHARED_DATA", default))


def pil_loop(paths: list[str], size: int) -> float:
    """Images/s of open -> grayscale -> bilinear resize -> float32 / 255, one by one."""
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            gray = image.convert("L").resize((size, size), Image.BILINEAR)
        np.asarray(gray, np.float32) / 255.0
    return len(paths) / (time.perf_counter() - start)


def pipeline(source, size: int, workers: int, batch_size: int) -> tuple[float, float]:
    """Images/s of `eval_loader` with the standard chain: overall (worker start-up
    included) and after the first batch (steady state)."""
    chain = standard_transforms(image_size=size, channels=1)
    start = time.perf_counter()
    iterator = iter(eval_loader(source, batch_size=batch_size, transforms=chain,
                                worker_count=workers))
    first = len(next(iterator)["mask"])
    after_first = time.perf_counter()
    rest = sum(len(batch["mask"]) for batch in iterator)
    end = time.perf_counter()
    iterator.close()
    del iterator
    gc.collect()  # release worker shared memory before the next measurement
    return (first + rest) / (end - start), rest / (end - after_first)


def training_feed(files: list[tuple[str, int]], size: int, batch_size: int = 32,
                  steps: int = 60) -> None:
    """What a pneumonia run does: preprocess once, then feed cached arrays; beside the
    FlexModel train step at the same size and batch."""
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        source, _ = preprocess_files(files, image_size=size, channels=1, resize_mode="stretch",
                                     cache_dir=Path(cache), desc="preprocess")
        once = len(files) / (time.perf_counter() - start)
    chain = [ScaleToUnit(), Standardize(0.5, 0.25)]
    iterator = iter(train_loader(source, batch_size=batch_size, seed=0, transforms=chain))
    next(iterator)
    start = time.perf_counter()
    batches = [next(iterator) for _ in range(steps)]
    feed = steps * batch_size / (time.perf_counter() - start)

    mesh = sharding.make_mesh()
    tx, _ = make_optimizer(ConfigDict({"name": "sgd", "learning_rate": 1e-3}), steps)
    model = build_model({"name": "flex_cnn", "num_classes": 2})
    state = sharding.replicate(create_train_state(model, tx, batches[0]["image"][:1], 0), mesh)
    train_step, _ = compile_steps(make_loss(ConfigDict({"name": "softmax_ce"})), mesh, 2)
    state, out = train_step(state, sharding.shard_batch(batches[0], mesh))
    jax.block_until_ready(out)
    start = time.perf_counter()
    for batch in batches:
        state, out = train_step(state, sharding.shard_batch(batch, mesh))
    jax.block_until_ready(out)
    step = steps * batch_size / (time.perf_counter() - start)
    print(f"{size:4d} px  one-off preprocessing {once:8.1f} img/s; training feed {feed:8.1f} "
          f"img/s vs FlexModel train step {step:8.1f} img/s: feed/step = {feed / step:.1f}x")


def main(argv: list[str]) -> None:
    del argv
    root = shared_data_dir() / "chest_xray_224"
    if not root.is_dir():
        print(f"skipped: {root} not found (set JAXCX_SHARED_DATA to the shared data folder)")
        sys.exit(0)
    full = image_folder_source(root, "train", class_map=KAGGLE_PNEUMONIA_CLASSES, decode=False)
    indices = np.random.default_rng(0).choice(len(full), _NUM_IMAGES.value, replace=False)
    source = IndexedSource(full, indices)
    paths = list(source.paths)
    print(f"{len(paths)} JPEGs (224x224 RGB) from {root}, {os.cpu_count()} CPU cores")
    pil_loop(paths[:50], 64)  # warm the file cache
    for size in map(int, _SIZES.value):
        baseline = pil_loop(paths, size)
        print(f"{size:4d} px  PIL loop          {baseline:8.1f} img/s")
        for workers in map(int, _WORKERS.value):
            overall, steady = pipeline(source, size, workers, _BATCH_SIZE.value)
            print(f"{size:4d} px  grain, {workers} workers  {overall:8.1f} img/s "
                  f"({overall / baseline:.2f}x PIL); after the first batch {steady:8.1f} "
                  f"img/s ({steady / baseline:.2f}x)")
        training_feed([(p, int(full.labels[i])) for p, i in zip(paths, indices)], size)


if __name__ == "__main__":
    app.run(main)
