"""The PyTorch front ends of hwgen: one sub-package per network family, each holding its layers,
its integer lowering (``lower``), its ONNX graph (``export``, registered with
:func:`hwgen.sw.families.export.exporter`) and its research extras.

* :mod:`~hwgen.sw.families.binary`: binary (sign) MLPs, seed 004.
* :mod:`~hwgen.sw.families.mbbn`: multi-branch binary networks, seed 003.
* :mod:`~hwgen.sw.families.shift`: MINW-Net's power-of-two quantizers and AQE, seed 004.
* :mod:`~hwgen.sw.families.sam`: Sum-and-Max networks, seed 002.
* :mod:`~hwgen.sw.families.constellation`: QAM activations and over-the-air layers, seed 000.
* :mod:`~hwgen.sw.families.compression`: compression of communication networks, seed 001.

Shared by all: :mod:`~hwgen.sw.families.data` (data sets as integer samples),
:mod:`~hwgen.sw.families.train` (the training loop), :mod:`~hwgen.sw.families.ste` (the sign's
straight-through estimator and clipped weights) and :mod:`~hwgen.sw.families.export` (the
ONNX graph builder, the exporter registry and :func:`~hwgen.sw.families.export.export_onnx`).
Families with a ``demo`` module are the families of ``hwgen demo`` (:mod:`hwgen.demo`):
:data:`DEMO_FAMILIES`, found without importing them.

Importing any module of a family imports its ``export`` module, so its exporters are
registered. This package itself imports no front end (nor PyTorch).
"""

from pathlib import Path

__all__ = ["DEMO_FAMILIES"]

#: The families of ``hwgen demo``: the sub-packages here that hold a ``demo.py``.
DEMO_FAMILIES = tuple(sorted(p.parent.name for p in Path(__file__).parent.glob("*/demo.py")))
