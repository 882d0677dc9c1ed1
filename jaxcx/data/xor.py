"""The XOR/MNIST notebook's continuous XOR: unit-square corners plus Gaussian noise,
label = XOR."""

from __future__ import annotations

import numpy as np


def make_xor(n: int, std: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Returns `x` float32 [n, 2] and `y` int32 [n]; deterministic in (n, std, seed).

    Each point is a random corner of {0, 1}^2 labelled 1 when exactly one coordinate is
    1, then moved by N(0, std^2) noise.
    """
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    y = (corners.sum(axis=1) == 1).astype(np.int32)
    x = (corners + std * rng.standard_normal((n, 2))).astype(np.float32)
    return x, y


class XorSource:
    """Random-access XOR points; records `{'image': (2,) float32, 'label': int, 'id', 'path': ''}`."""

    def __init__(self, n: int, std: float = 0.1, seed: int = 0):
        self.x, self.y = make_xor(n, std, seed)
        self.name = f"xor(n={n},std={std},seed={seed})"

    @property
    def labels(self) -> np.ndarray:
        return self.y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.x[index], "label": int(self.y[index]), "id": f"{self.name}/{index}", "path": ""}
