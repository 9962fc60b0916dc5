"""Data sets that ship with their packages (no downloads)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "digits"]


@dataclass
class Split:
    """Integer inputs and labels of one data set, already split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    in_bits: int
    n_classes: int


def digits(*, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 8x8 handwritten digits: 64 pixels of 0..16 (5-bit unsigned), 10 classes.

    The split is stratified and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data.astype(np.int64)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                              stratify=y)
    return Split(x_tr, y_tr, x_te, y_te, in_bits=int(x.max()).bit_length(), n_classes=10)
