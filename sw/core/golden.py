# TEMPORARY during the move: replaced by the real module
from hwgen.sw.golden import *  # noqa
from hwgen.sw.golden import run_layer, SAM_CHUNK  # noqa
