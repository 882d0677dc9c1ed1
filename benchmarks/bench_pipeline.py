"""Images/s of the grain pipeline (decode, grayscale, resize, scale) beside a plain PIL loop.

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

from jaxcx.data.folder import KAGGLE_PNEUMONIA_CLASSES, image_folder_source
from jaxcx.data.pipeline import eval_loader
from jaxcx.data.sampling import IndexedSource
from jaxcx.data.transforms import standard_transforms

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


if __name__ == "__main__":
    app.run(main)
