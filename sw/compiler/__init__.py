"""ONNX (QONNX op vocabulary) -> hwgen layer IR.

The graph must be a chain from one quantized input to one output. The compiler walks it once,
tracking every float tensor exactly as an affine map of integers. Exactly means in real
numbers: every float constant is the binary fraction it is, maps compose as rationals, and a
batch norm's ``1 / sqrt(var + eps)`` is kept as a surd (:mod:`~hwgen.sw.compiler.exact`), so
each threshold is the integer at which the real-valued graph crosses its quantizer's boundary,
an input exactly on a boundary going where the rounding mode sends it. (A float evaluation of
the same graph, PyTorch's included, can decide such a tie the other way.)

* ``Quant`` on the graph input (zero point 0) gives the input's integer type; its scale is the
  float value of one input step (1 for integer samples).
* A quantized tensor's float value is tracked as ``alpha * v + beta`` per element, ``v`` the
  IR value of its codes (the integer, or the odd state of bipolar/odd codes, see
  :mod:`hwgen.sw.core.ir`); ``Mul``, ``Div``, ``Add``, ``Sub`` by constants update the map.
* ``MatMul`` / ``Gemm`` whose weight is a scaled matrix of odd integers (``BipolarQuant`` of an
  initializer, or an initializer exactly equal to ``s * c`` with ``c`` odd, ``|c| <= 2^K - 1``,
  ``s`` the greatest common divisor of the magnitudes, so no state need be +-1) opens a
  dense layer: ``dense_int_binw`` on integer inputs (K = 1), ``dense_binary`` (xnor-popcount)
  on bipolar inputs (K = 1), and ``dense_mbbn`` (multi-branch, seed 003 eq. 8) on odd inputs
  or K > 1. A weight equal to ``s * c`` with every ``c`` 0 or ``+-2^e`` (and some ``c`` even or
  0; an all-zero matrix is zeros at scale 1), or any weight on power-of-two inputs, opens a
  ``dense_shift`` layer (seed 004): a
  shift-accumulate of the input values. A weight that is a QONNX ``Quant`` (zero point 0) of
  an initializer opens a ``dense_mac`` layer (integer multiply-accumulate) on integer inputs,
  its codes being the Quant's rounded, clamped integers; after an activation ``Quant`` it
  multiplies that activation's codes read as unsigned integers (the previous multi-threshold
  then emits ``unsigned`` codes). The output is tracked as a per-channel affine map
  ``a * acc + b`` of the layer's integer accumulator; ``BatchNormalization``, the constant ops
  and a Gemm bias update it.
* ``BipolarQuant`` closes the layer with a threshold (sign(0) = +1); ``Quant`` of n bits
  closes it with a multi-threshold of ``2^n - 1`` levels whose codes are the next layer's
  n-digit odd states (the QONNX rounding modes FLOOR, CEIL, ROUND (half to even), HALF_UP and
  HALF_DOWN are each turned into exact integer levels); ``PowerOfTwoQuant`` of n bits (domain
  ``hwgen.custom_op``, see :mod:`hwgen.sw.families.shift.export`) closes it with the
  ``2^n - 2`` levels between eq. 22's power-of-two values, whose codes are ``pow2`` elements.
  On an integer tensor without a layer, any of them becomes an element-wise ``multithreshold``
  layer.
* ``SumAndMax`` (domain ``hwgen.custom_op``, see :mod:`hwgen.sw.families.sam.export`) on an
  integer tensor of scale ``s`` (offset 0) is a ``sam`` layer (seed 002): its finite weights and
  the fills of
  its empty rows, divided by ``s``, must be integers, and its output is an integer tensor of
  the same scale. A +inf in a max term (or -inf in a min term) would always win and is refused.
* ``QAMSlicer`` (domain ``hwgen.custom_op``, see :mod:`hwgen.sw.families.constellation.export`)
  is a ``qam_slicer`` layer (seed 000): on an integer tensor of one scale ``s`` (offset 0), or
  after a ``dense_mac`` layer, which then emits its accumulator (its offset an integer bias, as
  at the graph output) to the slicer. The boundaries are the exact ``ceil(b_i / s)`` of
  :meth:`hwgen.sw.core.ir.QAMSlicer.for_grid`; the output is the level value, an odd tensor of
  scale ``delta / (M - 1)``.
* At the graph output, a layer with a bias (``dense_mac``) takes the per-class offset as its
  integer bias (offset / scale must be integers). For the other kinds, an affine map that is the
  same positive scale and offset for every channel cannot change the argmax, so the layer emits
  its accumulator and an ``argmax`` layer is appended (for one class too: its class is always
  0); any other map is refused, since no integer layer could represent it exactly.

Every refusal is a :class:`CompileError` whose message names the offending node.

The compiler imports no PyTorch. Its modules: :mod:`~hwgen.sw.compiler.graph` (reading the
file and the graph), :mod:`~hwgen.sw.compiler.quantized` (affine maps and activation levels),
:mod:`~hwgen.sw.compiler.dense` (the dense kinds, chosen by each IR kind's ``lowers``),
:mod:`~hwgen.sw.compiler.custom_ops` (this project's ops) and
:mod:`~hwgen.sw.compiler.chain` (the walk, one handler per op in ``OPS``).
"""

from .chain import compile_onnx
from .graph import CompileError, load_onnx

__all__ = ["CompileError", "compile_onnx", "load_onnx"]
