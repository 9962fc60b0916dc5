# TEMPORARY during the move: replaced by the real module
from hwgen.sw.ir import *  # noqa
from hwgen.sw.ir import IR_VERSION, register_kind, is_pow2_weight, _integer_input, _MatrixLayer  # noqa
