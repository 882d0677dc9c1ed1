"""Timing helpers and flags shared by the XOR and MNIST benchmarks (not a benchmark itself)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import jax
import torch
from absl import flags

REPEATS = flags.DEFINE_integer("repeats", 3, "timings per measurement (best is reported)")
TORCH_THREADS = flags.DEFINE_list("torch_threads", ["1"], "torch.set_num_threads values to time")


def best_time(fn, repeats: int) -> float:
    """Fastest of `repeats` wall-clock timings of `fn()`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_speeds(fn, repeats: int) -> dict[int, float]:
    """Best seconds of `fn()` for each torch thread count of --torch_threads."""
    seconds = {}
    for threads in map(int, TORCH_THREADS.value):
        torch.set_num_threads(threads)
        seconds[threads] = best_time(fn, repeats)
    return seconds


def machine() -> str:
    """CPU model, core count and library versions, for the benchmark log."""
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return (f"{model}, {os.cpu_count()} cores, jax {jax.__version__} "
            f"({jax.default_backend()}), torch {torch.__version__}")
