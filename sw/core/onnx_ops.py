"""The ONNX op domains hwgen reads and writes.

* :data:`QONNX_DOMAIN`: QONNX's ``Quant``, ``BipolarQuant`` (and, read by other tools,
  ``Trunc`` and ``MultiThreshold``).
* :data:`HWGEN_DOMAIN`: this project's own ops, where QONNX has none: ``PowerOfTwoQuant``
  (eq. 22 of seed 004's levels), ``SumAndMax`` (seed 002, eq. 5) and ``QAMSlicer`` (seed 000,
  eq. 12-14). Their semantics are written in the family export modules that write them
  (:mod:`hwgen.sw.families.shift.export`, :mod:`hwgen.sw.families.sam.export`,
  :mod:`hwgen.sw.families.constellation.export`) and read by :mod:`hwgen.sw.compiler`.
"""

__all__ = ["QONNX_DOMAIN", "HWGEN_DOMAIN"]

QONNX_DOMAIN = "qonnx.custom_op.general"
HWGEN_DOMAIN = "hwgen.custom_op"
