"""Amaranth hardware generators.

Each IR layer kind has its hardware (engines, cost model, folding rules, calibration notes) in
one module named by its kind string (``hw/<kind>.py``), which registers it in
:mod:`hwgen.hw.registry` when imported. Every kind is imported here, so any use of
:mod:`hwgen.hw` sees them all; their order does not matter. What engines share is the kit:
:mod:`~hwgen.hw.kit` (controller, ROMs, packing, thresholds, adder terms),
:mod:`~hwgen.hw.popcount`, :mod:`~hwgen.hw.ranged` (max/min trees), :mod:`~hwgen.hw.sparse`
(the sparse entry walker), :mod:`~hwgen.hw.serial` (stream adapters) and
:mod:`~hwgen.hw.resources` (foldings and shared cost formulas).
"""

from . import (argmax, dense_binary, dense_int_binw, dense_mac, dense_mbbn,  # noqa: F401
               dense_shift, multithreshold, qam_slicer, sam)
