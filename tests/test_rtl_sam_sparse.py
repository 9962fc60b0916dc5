"""The sparse SAM engine's RTL in Verilator: a serial-input pipeline (sparse SAM -> deserializer
-> add-subtract layer -> argmax) equals the golden model on 10,000 vectors, ties and fully
pruned outputs included."""

import numpy as np
import pytest

from hwgen.hw.folding import SPARSE, Folding
from hwgen.sw import ir
from rtl_check import check_rtl

pytestmark = pytest.mark.rtl


def test_sparse_sam_pipeline_rtl_equals_golden(tmp_path):
    rng = np.random.default_rng(21)
    n, m, classes = 12, 10, 4
    s3 = ir.TensorType("signed", 3)
    terms = []
    for k, reduce in enumerate(("max", "min")):
        keep = rng.random((m, n)) < 0.25
        keep[2 + k] = False                         # one term of outputs 2 and 3 is empty
        keep[7] = False                             # output 7: both terms empty, a constant
        terms.append(ir.SAMTerm(reduce, 1, rng.integers(-3, 3, (m, n)), keep,
                                rng.integers(-4, 5, m)))
    sam = ir.SAMLayer("sam", n=n, terms=terms)
    fc = ir.DenseIntBinW("fc", weights=rng.integers(0, 2, (classes, m)))
    model = ir.Model(s3, n, [sam, fc, ir.ArgMax("argmax", n=classes)]).check()
    folding = {"sam": Folding(1, 1, SPARSE), "fc": Folding(1, 5), "argmax": Folding(1, 1)}
    x = rng.integers(s3.lo, s3.hi + 1, (10_000, n))
    x[0], x[1] = s3.lo, s3.hi
    # small inputs and weights: most max and min terms tie between several entries
    sums = x[:, None, :] + np.where(terms[0].keep, terms[0].weights, -99)[None]
    assert ((sums == sums.max(axis=2, keepdims=True)).sum(axis=2) > 1).mean() > 0.2
    check_rtl(model, folding, x, tmp_path, seed=3)
