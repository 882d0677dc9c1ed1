"""Datasets by name: `build_data(config.data, seed)` gives the splits a run trains on.

A builder turns a `data` config section into a `DataBundle`: train/val/test sources,
the per-record transforms for training and evaluation, and what the model needs to know
(input shape, classes). Register new ones with `@register_dataset('name')`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxcx.data import sampling
from jaxcx.data.errors import BadInputLog
from jaxcx.registry import Registry

Builder = Callable[[ml_collections.ConfigDict, int], "DataBundle"]
# The built-in datasets register themselves when jaxcx.data.builders is imported.
DATASETS: Registry = Registry(
    "data.name", on_first_lookup=lambda: importlib.import_module("jaxcx.data.builders"))
register_dataset = DATASETS.register  # @register_dataset("name") on fn(data_config, seed)
available_datasets = DATASETS.names


@dataclasses.dataclass
class DataBundle:
    """The splits of one dataset and how to feed them to a model."""

    train: Any
    val: Any
    test: Any | None
    train_labels: np.ndarray
    input_shape: tuple[int, ...]
    class_names: Sequence[str]
    train_transforms: Sequence[Any] = ()
    eval_transforms: Sequence[Any] = ()
    multilabel: bool = False
    worker_count: int = 0
    bad_inputs: BadInputLog | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_weights(self) -> np.ndarray:
        """The pneumonia notebook's normalised inverse class frequencies of the training
        split."""
        counts = np.bincount(self.train_labels.astype(np.int64), minlength=self.num_classes)
        return sampling.class_weights(counts)


def build_data(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """The `DataBundle` of the dataset named by `data_cfg.name`."""
    return DATASETS.get(data_cfg.name)(data_cfg, seed)


class DataCache:
    """`build_data` for a config, reusing the last bundle while `config.data` and the
    seed stay the same (one bundle is kept: the previous arrays go before the next load)."""

    def __init__(self):
        self._key: str | None = None
        self._data: DataBundle | None = None

    def __call__(self, config: ml_collections.ConfigDict) -> DataBundle:
        key = json.dumps([config.data.to_dict(), config.seed], sort_keys=True, default=str)
        if key != self._key:
            self._data = None
            self._data, self._key = build_data(config.data, config.seed), key
        return self._data
