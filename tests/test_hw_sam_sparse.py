"""The sparse folded SAM engine in Amaranth simulation: serial streams, entries from block RAM,
bit-exact against the golden model (ties, empty rows, stalls), and no multiplier."""

import numpy as np
import pytest
from amaranth.back import rtlil, verilog

from hwgen.hw.folding import DoesNotFitError, choose_folding
from hwgen.hw.sam import SparseSAMEngine, sam_entries
from hwgen.hw.pipeline import Pipeline
from hwgen.hw.registry import candidates, check_folding, estimate, fold_steps
from hwgen.hw.resources import LOADED, SPARSE, Folding
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir

FORMS = {"eq3": [("max", 1)], "eq4": [("max", 1), ("max", -1)], "eq5": [("max", 1), ("min", 1)]}
S3 = ir.TensorType("signed", 3)
U4 = ir.TensorType("unsigned", 4)


def sam_layer(rng, n, m, form, *, keep=0.3, w=8, empty_rows=(1,), both_empty=None):
    terms = []
    for k, (reduce, sign) in enumerate(FORMS[form]):
        mask = rng.random((m, n)) < keep
        mask[list(empty_rows)] = False if k == 0 else mask[list(empty_rows)]
        if both_empty is not None:
            mask[both_empty] = False
        terms.append(ir.SAMTerm(reduce, sign, rng.integers(-w, w, (m, n)), mask,
                                rng.integers(-6, 7, m)))
    return ir.SAMLayer("sam", n=n, terms=terms)


def run_serial(layer, in_type, x, rng, storage="rom", **kw):
    engine = SparseSAMEngine(layer, in_type=in_type, storage=storage)
    expected = golden.run_layer(layer, x, in_type)
    stream = [[v] for v in engine.preamble.tolist() + np.asarray(x).ravel().tolist()]
    run = simulate_stream(engine, stream, n_outputs=expected.size, rng=rng, **kw)
    bits = engine.out_type.bits
    got = np.array([o[0] for o in run.outputs], dtype=np.int64).reshape(expected.shape)
    got = np.where(got >= 1 << (bits - 1), got - (1 << bits), got)
    return engine, expected, got, run


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("in_type", [S3, U4])
def test_sparse_engine_equals_golden_under_stalls(form, in_type):
    rng = np.random.default_rng(len(form) + in_type.bits)
    layer = sam_layer(rng, 11, 7, form, both_empty=4)
    x = rng.integers(in_type.lo, in_type.hi + 1, (40, 11))
    x[0], x[1] = in_type.lo, in_type.hi
    _, expected, got, _ = run_serial(layer, in_type, x, rng, valid_prob=0.6, ready_prob=0.4)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("form", ["eq4", "eq5"])
@pytest.mark.parametrize("in_type", [S3, U4])
def test_loaded_entries_come_from_the_preamble(form, in_type):
    """storage="loaded": the entries arrive as the first transfers, then vectors as usual."""
    rng = np.random.default_rng(3 + len(form) + in_type.bits)
    layer = sam_layer(rng, 11, 7, form, both_empty=4)
    x = rng.integers(in_type.lo, in_type.hi + 1, (30, 11))
    x[0], x[1] = in_type.lo, in_type.hi
    engine, expected, got, _ = run_serial(layer, in_type, x, rng, storage="loaded",
                                          valid_prob=0.6, ready_prob=0.4)
    assert np.array_equal(got, expected)
    # the preamble: whole entry words in input-sized chunks, every chunk a legal input element
    pre = engine.preamble
    assert len(pre) == engine.n_entries * engine.chunks
    assert engine.chunks * in_type.bits >= engine.word_bits > (engine.chunks - 1) * in_type.bits
    assert pre.min() >= in_type.lo and pre.max() <= in_type.hi
    assert len(SparseSAMEngine(layer, in_type=in_type).preamble) == 0


def test_loaded_entries_are_a_ram_marked_for_spram():
    rng = np.random.default_rng(2)
    layer = sam_layer(rng, 9, 4, "eq5")
    text = verilog.convert(SparseSAMEngine(layer, in_type=S3, storage="loaded"), name="top")
    assert 'ram_style = "huge"' in text and "rom_style" not in text
    with pytest.raises(ValueError, match="storage must be one of"):
        SparseSAMEngine(layer, in_type=S3, storage="flash")


def test_ties_and_a_dense_layer():
    """3-bit inputs and weights in -2..1: many entries tie for the max and the min."""
    rng = np.random.default_rng(7)
    terms = [ir.SAMTerm(r, 1, rng.integers(-2, 2, (5, 6)), np.ones((5, 6), bool), np.zeros(5))
             for r in ("max", "min")]
    layer = ir.SAMLayer("sam", n=6, terms=terms)
    x = rng.integers(-4, 4, (60, 6))
    sums = x[:, None, :] + terms[0].weights[None]
    ties = (sums == sums.max(axis=2, keepdims=True)).sum(axis=2)
    assert (ties > 1).mean() > 0.2
    engine, expected, got, _ = run_serial(layer, S3, x, rng, ready_prob=0.7)
    assert np.array_equal(got, expected)
    assert engine.n_entries == 2 * 5 * 6


def test_entries_list_kept_pairs_and_one_fill_entry_per_empty_group():
    w = np.array([[3, -1, 2], [5, 5, 5]])
    keep = np.array([[True, False, True], [False, False, False]])
    layer = ir.SAMLayer("sam", n=3, terms=[ir.SAMTerm("max", 1, w, keep, [0, -7]),
                                          ir.SAMTerm("min", 1, w, np.ones((2, 3), bool), [0, 0])])
    index, value, last, fill = sam_entries(layer)
    # output 0: max over inputs 0, 2; min over all three; output 1: fill -7, then min of three
    assert index.tolist() == [0, 2, 0, 1, 2, 0, 0, 1, 2]
    assert value.tolist() == [3, 2, 3, -1, 2, -7, 5, 5, 5]
    assert last.tolist() == [0, 1, 0, 0, 1, 1, 0, 0, 1]
    assert fill.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0]


def test_interval_at_full_rate():
    rng = np.random.default_rng(3)
    layer = sam_layer(rng, 16, 8, "eq5", keep=0.2)
    x = rng.integers(-4, 4, (6, 16))
    engine, expected, got, run = run_serial(layer, S3, x, rng)
    assert np.array_equal(got, expected)
    # steady state: one vector per interval; the last output of vector k comes `interval` later
    last_outputs = np.array(run.out_cycles)[layer.n_out - 1::layer.n_out]
    assert (np.diff(last_outputs) <= engine.interval).all()
    assert engine.interval == 16 + engine.n_entries + 4


def test_verilog_has_no_multiplier_and_keeps_entries_in_block_ram():
    rng = np.random.default_rng(4)
    layer = sam_layer(rng, 32, 16, "eq5", keep=0.1)
    assert "$mul" not in rtlil.convert(SparseSAMEngine(layer, in_type=S3), name="top",
                                       emit_src=False)
    text = verilog.convert(SparseSAMEngine(layer, in_type=S3), name="top", emit_src=False)
    assert 'rom_style = "block"' in text


def test_bad_input_type_is_refused():
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match="integer inputs"):
        SparseSAMEngine(sam_layer(rng, 4, 2, "eq3"), in_type=ir.TensorType("bipolar", 1))


def _sparse_model(rng, n=24, m=12, classes=4, in_type=S3, keep=0.15):
    layer = sam_layer(rng, n, m, "eq5", keep=keep, both_empty=5)
    fc = ir.DenseIntBinW("fc", weights=rng.integers(0, 2, (classes, m)))
    model = ir.Model(in_type, n, [layer, fc, ir.ArgMax("argmax", n=classes)]).check()
    folding = {"sam": Folding(1, 1, SPARSE), "fc": Folding(1, 4), "argmax": Folding(1, 1)}
    return model, folding


def test_pipeline_joins_a_serial_engine_to_vector_engines():
    rng = np.random.default_rng(11)
    model, folding = _sparse_model(rng)
    pipeline = Pipeline(model, folding)
    assert pipeline.serial_in and not pipeline.serial_out
    assert [type(a).__name__ for _, a in pipeline.adapters] == ["Deserializer"]
    x = rng.integers(S3.lo, S3.hi + 1, (30, 24))
    run = simulate_stream(pipeline, [[v] for v in x.ravel()], n_outputs=len(x), rng=rng,
                          valid_prob=0.7, ready_prob=0.6)
    assert [o[0] for o in run.outputs] == golden.run(model, x)[:, 0].tolist()
    assert pipeline.interval == max(e.interval for e in pipeline.engines)


def test_sparse_folding_is_checked_priced_and_chosen_when_vectors_do_not_fit():
    rng = np.random.default_rng(12)
    model, _ = _sparse_model(rng, n=64, m=32, keep=0.05)
    layer = model.layers[0]
    with pytest.raises(ValueError, match="sparse weights are for sam layers"):
        check_folding(model.layers[1], Folding(1, 1, SPARSE))
    with pytest.raises(ValueError, match="pe = simd = 1"):
        check_folding(layer, Folding(2, 1, SPARSE))
    assert Folding(1, 1, SPARSE) in candidates(layer)
    assert fold_steps(layer, Folding(1, 1, SPARSE)) == 64 + len(sam_entries(layer)[0])
    cost = estimate(layer, S3, Folding(1, 1, SPARSE))
    assert cost.ebr == 2 and 0 < cost.lcs < 400        # entry ROM and input RAM
    # a 3000-cell input register leaves no room for any vector folding: the sparse one wins
    chosen = choose_folding(model, lc_budget=3500, ebr_budget=30, input_register_lcs=3000)
    assert chosen["sam"] == Folding(1, 1, SPARSE)


def test_loaded_folding_takes_spram_when_the_entries_do_not_fit_block_ram():
    """The entries leave block RAM for SPRAM only when they must, and only in the first layer."""
    rng = np.random.default_rng(13)
    model, _ = _sparse_model(rng, n=64, m=32, keep=0.05)
    layer = model.layers[0]
    with pytest.raises(ValueError, match="loaded weights are for sam layers"):
        check_folding(model.layers[1], Folding(1, 1, LOADED))
    assert fold_steps(layer, Folding(1, 1, LOADED)) == fold_steps(layer, Folding(1, 1, SPARSE))
    rom, loaded = (estimate(layer, S3, Folding(1, 1, w)) for w in (SPARSE, LOADED))
    assert (rom.ebr, rom.spram) == (2, 0) and (loaded.ebr, loaded.spram) == (1, 1)
    assert loaded.lcs > rom.lcs                          # the loader
    budget = dict(lc_budget=3500, input_register_lcs=3000)
    # room for the entry ROM: no preamble needed, the ROM is taken
    assert choose_folding(model, ebr_budget=30, spram_budget=4, **budget)["sam"].weights == SPARSE
    # one EBR (the input RAM's) and no more: the entries go to SPRAM, if there is any
    assert choose_folding(model, ebr_budget=1, spram_budget=1, **budget)["sam"] == \
        Folding(1, 1, LOADED)
    with pytest.raises(DoesNotFitError, match="layer sam alone needs about 2 EBRs"):
        choose_folding(model, ebr_budget=1, spram_budget=0, **budget)
    # not for a later layer: its input is not the model's, so no preamble reaches it
    front = sam_layer(rng, 64, 64, "eq5", keep=0.02)
    front = ir.SAMLayer("front", n=64, terms=front.terms)
    two = ir.Model(S3, 64, [front] + model.layers).check()
    chosen = choose_folding(two, ebr_budget=30, spram_budget=4, **budget)
    assert chosen["sam"].weights != LOADED


@pytest.mark.parametrize("in_type", [S3, U4])
def test_sparse_mac_engine_walks_only_nonzero_weights(in_type):
    from hwgen.hw.dense_mac import SparseMACEngine, mac_entries

    rng = np.random.default_rng(in_type.bits)
    w = np.where(rng.random((8, 13)) < 0.2, rng.integers(-128, 128, (8, 13)), 0)
    w[3] = 0                                            # a row with no weight: its bias only
    bias = rng.integers(-300, 300, 8)
    bias[5] = 0
    layer = ir.DenseMAC("fc", weights=w, bias=bias)
    index, value, last, fill = mac_entries(layer)
    assert len(index) == np.count_nonzero(w) + np.count_nonzero(bias) + (bias[3] == 0)
    assert last.sum() == 8 and set(value[fill == 0]) <= set(w[w != 0].tolist())
    engine = SparseMACEngine(layer, in_type=in_type)
    x = rng.integers(in_type.lo, in_type.hi + 1, (30, 13))
    expected = golden.run_layer(layer, x, in_type)
    run = simulate_stream(engine, [[v] for v in x.ravel()], n_outputs=expected.size, rng=rng,
                          valid_prob=0.7, ready_prob=0.5)
    bits = engine.out_type.bits
    got = np.array([o[0] for o in run.outputs], dtype=np.int64).reshape(expected.shape)
    got = np.where(got >= 1 << (bits - 1), got - (1 << bits), got)
    assert np.array_equal(got, expected)
    assert "$mul" in rtlil.convert(engine, name="top", emit_src=False)


def test_a_model_over_the_ram_budget_is_refused_naming_the_layer_and_the_ram():
    from hwgen.hw.folding import DoesNotFitError

    rng = np.random.default_rng(13)
    model, _ = _sparse_model(rng, n=64, m=64, keep=0.9)
    with pytest.raises(DoesNotFitError, match=r"layer sam alone needs about \d+ EBRs"):
        choose_folding(model, lc_budget=100_000, ebr_budget=1, input_register_lcs=10**6)
