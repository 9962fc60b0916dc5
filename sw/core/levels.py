"""Exact level arithmetic of the quantizers, without PyTorch: what the front ends quantize to
and what the compiler turns into integer thresholds.

* :class:`Staircase`: a symmetric staircase ``h(a) = sign(a) * magnitudes[k]``, ``k`` the
  number of thresholds below ``|a|`` (a value on a threshold takes the lower magnitude, the
  ``<=`` of eq. 21-22 of seed 004), and its three instances: :func:`sign_levels` (eq. 4),
  :func:`ternary_levels` (eq. 21) and :func:`power_of_two_levels` (eq. 22).
* Power-of-two steps: :func:`check_power_of_two` and :func:`power_of_two_step`, the grids on
  which the integer lowerings of seeds 000, 001 and 002 keep every value exact in float32.

Eq. 22's thresholds (garbled in the seed) are the midpoints between adjacent levels, i.e. ``h``
rounds to the *nearest* level: for levels ``{0, +-2^-(q-1), ..., +-2^-1, +-1}``,
``Delta_q = 2^-q`` (between 0 and ``2^-(q-1)``) and ``Delta_p = 3 * 2^-(p+1)`` (between ``2^-p``
and ``2^-(p-1)``) for ``p = q-1 .. 1``. Midpoints are dyadic, so the integer thresholds derived
from them stay exact (a log-domain rule would put them at irrational ``sqrt(2) * 2^-p``). For
``n = 2`` this is ternary with ``Delta = 1/2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Staircase", "sign_levels", "ternary_levels", "power_of_two_levels",
           "check_power_of_two", "power_of_two_step"]


@dataclass(frozen=True)
class Staircase:
    """A symmetric staircase ``h(a) = sign(a) * magnitudes[k]``, ``k`` = thresholds below ``|a|``.

    Parameters
    ----------
    magnitudes : tuple of float
        Non-negative level magnitudes, ascending; one more than ``thresholds``.
    thresholds : tuple of float
        Ascending; ``|a| <= thresholds[0]`` gives ``magnitudes[0]``, and a value on a threshold
        takes the lower magnitude (the ``<=`` of eq. 21-22).
    bits : int
        Width of one quantized value.

    Members
    -------
    levels : tuple of float
        Every value ``h`` can output, ascending.
    """

    magnitudes: tuple[float, ...]
    thresholds: tuple[float, ...]
    bits: int

    def __post_init__(self):
        if len(self.magnitudes) != len(self.thresholds) + 1:
            raise ValueError(f"need one magnitude more than thresholds, not {self.magnitudes!r} "
                             f"for {self.thresholds!r}")
        ascending = list(self.thresholds) == sorted(set(self.thresholds))
        if not ascending or any(t <= 0 for t in self.thresholds):
            raise ValueError("thresholds must be positive and strictly ascending, "
                             f"not {self.thresholds!r}")
        if list(self.magnitudes) != sorted(set(self.magnitudes)) or self.magnitudes[0] < 0:
            raise ValueError("magnitudes must be non-negative and strictly ascending, "
                             f"not {self.magnitudes!r}")

    @property
    def levels(self) -> tuple[float, ...]:
        return tuple(sorted({-m for m in self.magnitudes if m > 0} | set(self.magnitudes)))


def sign_levels() -> Staircase:
    """Eq. 4: ``{-1, +1}``, with ``sign(0) = +1``."""
    return Staircase((1.0,), (), bits=1)


def ternary_levels(delta: float = 0.5) -> Staircase:
    """Eq. 21: 0 where ``|a| <= delta``, ``sign(a)`` elsewhere.

    The default ``delta = 1/2`` is the midpoint of 0 and 1, the rule of
    :func:`power_of_two_levels`.
    """
    if not delta > 0:
        raise ValueError(f"the ternary threshold must be positive (eq. 21), not {delta!r}")
    return Staircase((0.0, 1.0), (float(delta),), bits=2)


def power_of_two_levels(n_bits: int) -> Staircase:
    """Eq. 22: levels ``{0, +-2^-p}`` for ``p = q-1 .. 0``, ``q = 2^(n_bits-1) - 1``.

    Thresholds are the midpoints of adjacent levels (see the module docs), so ``h`` rounds
    ``|a|`` to the nearest level, a tie going to the smaller one.
    """
    if not (isinstance(n_bits, int) and n_bits >= 2):
        raise ValueError("power-of-two levels need n_bits >= 2 (1 bit is sign, eq. 4), "
                         f"not {n_bits!r}")
    q = 2 ** (n_bits - 1) - 1
    magnitudes = (0.0,) + tuple(2.0 ** -p for p in range(q - 1, -1, -1))
    thresholds = tuple((lo + hi) / 2 for lo, hi in zip(magnitudes, magnitudes[1:]))
    return Staircase(magnitudes, thresholds, bits=n_bits)


def check_power_of_two(step: float, what: str) -> float:
    """``step`` as a float, or ValueError naming ``what`` unless it is a positive power of two."""
    step = float(step)
    if not step > 0 or 2.0 ** round(math.log2(step)) != step:
        raise ValueError(f"{what} must be a positive power of two, not {step!r}")
    return step


def power_of_two_step(largest: float, bits: int) -> float:
    """The power-of-two step at or above ``largest / (2^(bits-1) - 1)``: symmetric ``bits``-bit
    codes of values up to ``largest``."""
    if not largest > 0:
        raise ValueError("the weights are all zero")
    return 2.0 ** math.ceil(math.log2(largest / ((1 << (bits - 1)) - 1)))
