"""Popcount generators.

Two combinational implementations of the same function, selected by
``popcount(..., impl=...)``:

``"tree"``
    A behavioural balanced adder tree. Portable; on iCE40 yosys/ABC maps it to LUT-only full
    adders, about two logic cells per input bit.

``"ice40"``
    A compressor tree made of ripple-carry chains of iCE40 logic cells, laid out explicitly so
    that synthesis cannot re-map it. An iCE40 logic cell (LC) is one SB_LUT4, one SB_CARRY
    (``CO = majority(I1, I2, CI)``) and one flip-flop. Each *chain* adds two binary numbers
    plus a carry-in bit taken from the bit heap: every cell of the chain is a full adder whose
    LUT computes ``I1 ^ I2 ^ CI``. Chains are concatenated into long physical carry chains;
    between two chains sits one *boundary* cell whose LUT hands the previous chain's carry-out
    to the fabric and whose carry (``I1 = I2 = x``, so ``CO = x``) injects the next chain's
    carry-in bit ``x``. A chain of k adders therefore costs k + 1 cells and removes k bits from
    the heap, and since every weight-1 bit must pass through a chain start, about N/2 chains
    are needed: N - log2(N) + N/2 cells in all, about 1.5 LC per input bit.

    Inverted inputs (``invert``, the constant xnor weights) cost nothing: a full adder of
    complemented inputs gives complemented outputs, so every chain runs in one polarity and
    every LUT emits its output in the polarity its consumer wants.

    With ``primitives=True`` the cells are SB_LUT4 / SB_CARRY instances; otherwise each cell is
    its exact behavioural model (the LUT_INIT lookup and the majority), so the same netlist
    simulates in ``amaranth.sim``.

and a registered one, :func:`popcount_ebr` / :class:`PopcountEBR`: block-RAM popcount
tables. Each group of at most 10 inputs addresses a ROM (one iCE40 EBR, SB_RAM40_4K in its
1024x4 mode) holding the popcount of its xnor with the constant weights; the reads are
synchronous, so the count comes one cycle after the inputs. The 4-bit table outputs are summed
by the carry-chain compressor tree above, planned over a bit heap of weighted bits
(:func:`plan_ice40` with ``weights``), or by a behavioural adder tree. About 0.5 logic cells
and 0.1 EBR per input bit, where the device has 30 EBRs.
"""

from dataclasses import dataclass, field

from amaranth.hdl import Cat, Const, Elaboratable, Instance, Module, Signal, Value, unsigned
from amaranth.lib.memory import Memory
from amaranth.vendor import SiliconBluePlatform

__all__ = ["adder_tree", "popcount", "Popcount", "plan_ice40", "ICE40Plan", "popcount_ebr",
           "PopcountEBR", "ebr_tables"]

# Longest physical carry chain emitted before starting a new one (an iCE40 UP5K logic column
# holds 30 tiles of 8 cells; nextpnr would otherwise split longer chains itself).
MAX_CHAIN_CELLS = 192


def adder_tree(terms: list[Value]) -> Value:
    """Sum of ``terms`` as a balanced tree of two-input adders (depth ceil(log2 N))."""
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = paired + terms[len(paired) * 2:]
    return terms[0]


def popcount(m: Module, bits: Value, *, impl: str = "tree", invert: int = 0,
             primitives: bool = False) -> Value:
    """Number of ones in ``bits ^ invert`` as an unsigned value of width ceil(log2(N+1)).

    ``impl="tree"`` is a balanced adder tree, summed pairwise level by level (depth
    ceil(log2 N)). ``impl="ice40"`` is the carry-chain compressor tree described in the module
    docstring; ``primitives`` selects iCE40 cell instances instead of their behavioural models.
    ``invert`` is a constant mask (bit i set: count ``~bits[i]``). ``m`` is the module that the
    logic is added to.
    """
    n = len(bits)
    if n == 0:
        raise ValueError("popcount of an empty vector")
    if invert < 0 or invert >> n:
        raise ValueError(f"invert mask {invert:#x} does not fit {n} bits")
    if impl == "tree":
        terms = [(bits[i] ^ ((invert >> i) & 1)).as_unsigned() for i in range(n)]
        return adder_tree(terms)[:n.bit_length()]
    if impl == "ice40":
        return _build_ice40(m, bits, plan_ice40(n, invert), primitives)
    raise ValueError(f"unknown popcount implementation {impl!r}")


class Popcount(Elaboratable):
    """``o = popcount(i ^ invert)``, combinational.

    With ``impl="ice40"``, iCE40 cell instances are used when elaborated for an iCE40
    (SiliconBlue) platform or when ``primitives`` is true; behavioural cell models otherwise.
    """

    def __init__(self, width: int, *, invert: int = 0, impl: str = "ice40",
                 primitives: bool = False):
        self.width = width
        self.invert = invert
        self.impl = impl
        self.primitives = primitives
        self.i = Signal(width)
        self.o = Signal(width.bit_length())

    def elaborate(self, platform):
        m = Module()
        prims = self.primitives or isinstance(platform, SiliconBluePlatform)
        m.d.comb += self.o.eq(popcount(m, self.i, impl=self.impl, invert=self.invert,
                                       primitives=prims))
        return m


# --- block-RAM popcount tables ---------------------------------------------------------------

def ebr_tables(n: int, table_bits: int = 10) -> list[int]:
    """Input bits per table when ``n`` bits are split into ceil(n / table_bits) near-equal tables.

    Parameters
    ----------
    n : int
        Number of input bits.
    table_bits : int
        Most address bits per table: 10 fills an iCE40 EBR in its 1024x4 mode (a 9-bit table
        uses the 512x8 mode, half of its data bits unused).

    Returns
    -------
    list of int
        Table sizes, largest first, summing to ``n``.
    """
    if n < 1 or table_bits < 1:
        raise ValueError("need at least one input bit and one address bit per table")
    k = -(-n // table_bits)
    return [n // k + (t < n % k) for t in range(k)]


def popcount_ebr(m: Module, bits: Value, *, invert: int = 0, table_bits: int = 10,
                 adder: str = "ice40", primitives: bool = False, domain: str = "sync") -> Value:
    """Number of ones in ``bits ^ invert``, one ``domain`` clock cycle later, by ROM tables.

    The inputs are split into near-equal groups of at most ``table_bits`` bits
    (:func:`ebr_tables`); each group addresses a ROM holding the popcount of the address
    xor its slice of ``invert``, read synchronously (the read is the pipeline register). The
    ROMs are Amaranth memories with ``rom_style = "block"``, which yosys maps to one iCE40
    SB_RAM40_4K each; in ``amaranth.sim`` they simulate as they are. The small multi-bit
    table outputs are then summed combinationally.

    Parameters
    ----------
    m : Module
        Module that the tables and the adder are added to.
    bits : Value
        Input bits (N of them).
    invert : int
        Constant mask; bit i set: count ``~bits[i]`` (the xnor weights).
    table_bits : int
        Most address bits per table (10: an EBR's 1024x4 mode).
    adder : str
        ``"ice40"``: the carry-chain compressor tree (:func:`plan_ice40` over the bit heap of
        the table outputs); ``"tree"``: a behavioural adder tree of the table outputs.
    primitives : bool
        With ``adder="ice40"``, SB_LUT4 / SB_CARRY instances instead of their models.
    domain : str
        Clock domain of the table reads.

    Returns
    -------
    Value
        The count, unsigned, ceil(log2(N+1)) bits wide, valid one cycle after ``bits``.
    """
    n = len(bits)
    if n == 0:
        raise ValueError("popcount of an empty vector")
    if invert < 0 or invert >> n:
        raise ValueError(f"invert mask {invert:#x} does not fit {n} bits")
    if adder not in ("ice40", "tree"):
        raise ValueError(f"unknown popcount adder {adder!r}")
    outs = []
    lo = 0
    for size in ebr_tables(n, table_bits):
        inv = (invert >> lo) & ((1 << size) - 1)
        mem = Memory(shape=unsigned(size.bit_length()), depth=1 << size,
                     init=[bin(a ^ inv).count("1") for a in range(1 << size)],
                     attrs={"rom_style": "block"})
        m.submodules += mem
        port = mem.read_port(domain=domain)
        m.d.comb += port.addr.eq(bits[lo:lo + size])
        outs.append(port.data)
        lo += size
    if len(outs) == 1:
        return outs[0]
    if adder == "tree":
        return adder_tree(outs)[:n.bit_length()]
    heap = [o[j] for o in outs for j in range(len(o))]
    weights = [j for o in outs for j in range(len(o))]
    plan = plan_ice40(len(heap), weights=weights, max_value=n)
    return _build_ice40(m, Cat(*heap), plan, primitives)


class PopcountEBR(Elaboratable):
    """``o = popcount(i ^ invert)`` of the previous ``sync`` cycle, by block-RAM tables.

    See :func:`popcount_ebr`. With ``adder="ice40"``, iCE40 cell instances are used when
    elaborated for an iCE40 (SiliconBlue) platform or when ``primitives`` is true.

    Parameters
    ----------
    width : int
        Number of input bits.
    invert : int
        Constant mask of inputs counted complemented.
    table_bits : int
        Most address bits per table.
    adder : str
        ``"ice40"`` or ``"tree"``, the adder of the table outputs.
    primitives : bool
        Force iCE40 cell instances for the adder.
    """

    latency = 1

    def __init__(self, width: int, *, invert: int = 0, table_bits: int = 10,
                 adder: str = "ice40", primitives: bool = False):
        self.width = width
        self.invert = invert
        self.table_bits = table_bits
        self.adder = adder
        self.primitives = primitives
        self.i = Signal(width)
        self.o = Signal(width.bit_length())

    def elaborate(self, platform):
        m = Module()
        prims = self.primitives or isinstance(platform, SiliconBluePlatform)
        m.d.comb += self.o.eq(popcount_ebr(m, self.i, invert=self.invert,
                                           table_bits=self.table_bits, adder=self.adder,
                                           primitives=prims))
        return m


# --- the chain plan -------------------------------------------------------------------------
#
# Bits of the heap are ("x", i) for input i, or ("s", c, k) for the sum of position k of chain c,
# or ("c", c) for the carry-out of chain c. Input bits have a fixed physical polarity (the
# invert mask); every other bit is a LUT output and takes the polarity of the chain that
# consumes it.

@dataclass
class Chain:
    weight: int                      # log2 weight of the first position
    cin: tuple | None                # carry-in bit (weight `weight`), or None for 0
    pairs: list = field(default_factory=list)  # [(bit, bit-or-None)] per position
    polarity: int = 0                # 1: the chain computes on complemented values
    new_segment: bool = False        # starts a new physical carry chain


@dataclass
class ICE40Plan:
    n: int
    invert: int
    chains: list
    outputs: list                    # bit per result weight, LSB first (None: constant 0)
    buffers: list                    # inputs passed through a LUT to free their polarity

    @property
    def cells(self) -> int:
        """Logic cells: one per position, one boundary per chain, one feed-out per segment."""
        segments = sum(c.new_segment for c in self.chains)
        last_dropped = bool(self.chains) and ("c", len(self.chains) - 1) not in self.outputs
        return (sum(len(c.pairs) + 1 for c in self.chains) + segments + len(self.buffers)
                + sum(p != 0 for p in self.output_inversions) - last_dropped)

    @property
    def output_inversions(self) -> list:
        """Per output bit: 1 where it is an inverted input bit that needs an inverter LUT."""
        return [int(b is not None and b[0] == "x" and (self.invert >> b[1]) & 1)
                for b in self.outputs]


def plan_ice40(n: int, invert: int = 0, *, weights=None, max_value: int | None = None
               ) -> ICE40Plan:
    """Schedule the chains of the carry-chain compressor tree for ``n`` input bits.

    Parameters
    ----------
    n : int
        Number of input bits of the bit heap.
    invert : int
        Constant mask; bit i set: input i enters complemented.
    weights : sequence of int, optional
        log2 weight of each input bit (default: all 0, a popcount). With weights the plan sums
        ``sum_i (x_i ^ invert_i) << weights[i]``, e.g. several multi-bit numbers.
    max_value : int, optional
        Largest value the sum can take (default: the sum of all bit weights). It sets the
        width of the result; bits that the tree would produce at or above that width are
        provably zero and are dropped.

    Returns
    -------
    ICE40Plan
        The chains, their physical segments and the result bit of each weight.
    """
    weights = [0] * n if weights is None else [int(w) for w in weights]
    if len(weights) != n or any(w < 0 for w in weights):
        raise ValueError("weights must give one non-negative log2 weight per input bit")
    if max_value is None:
        max_value = sum(1 << w for w in weights)
    width = max_value.bit_length()
    cols: dict[int, list] = {}
    for i, w in enumerate(weights):
        if w < width:
            cols.setdefault(w, []).append(("x", i))
    inv = [(invert >> i) & 1 for i in range(n)]
    chains: list[Chain] = []
    buffers: list[int] = []

    def pol(bit):
        return inv[bit[1]] if bit[0] == "x" else None

    def take(col, count, want):
        """Pop up to `count` bits from column `col` compatible with polarity `want`."""
        got = []
        for bit in list(cols.get(col, [])):
            if len(got) == count:
                break
            p = pol(bit)
            if p is None or want is None or p == want:
                if p is not None:
                    want = p
                got.append(bit)
                cols[col].remove(bit)
        return got, want

    def size(col):
        return len(cols.get(col, []))

    while any(len(v) > 1 for v in cols.values()):
        s = min(k for k, v in cols.items() if len(v) > 1)
        want = pol(cols[s][0])
        final = all(len(v) <= 2 for v in cols.values())
        start, want = take(s, 3 if size(s) >= 3 else 2, want)
        if len(start) < 2:                       # a lone input bit of the other polarity:
            cols[s].extend(start)                # re-time it through a LUT (flexible polarity)
            raw = next(b for b in cols[s] if b[0] == "x")
            cols[s][cols[s].index(raw)] = ("b", raw[1])
            buffers.append(raw[1])
            continue
        if len(start) == 3 and start[2] == ("c", len(chains) - 1):
            start = [start[2], start[1], start[0]]   # the boundary must not inject its own output
        chain = Chain(weight=s, cin=start[2] if len(start) == 3 else None)
        chain.pairs.append((start[0], start[1]))
        k = s + 1
        while size(k) >= 2 or (final and size(k) == 1):
            got, want = take(k, 2, want)
            if len(got) < 2 and size(k) >= 2:    # only input bits of the wrong polarity left
                cols[k].extend(got)
                break
            chain.pairs.append((got[0], got[1] if len(got) > 1 else None))
            k += 1
        chain.polarity = want or 0
        c = len(chains)
        chains.append(chain)
        for j in range(len(chain.pairs)):
            cols.setdefault(s + j, []).append(("s", c, j))
        if k < width:
            cols.setdefault(k, []).append(("c", c))

    # physical segments
    used = 0
    for ch in chains:
        cost = len(ch.pairs) + 1
        if used == 0 or used + cost + 1 > MAX_CHAIN_CELLS:
            ch.new_segment = True
            used = 0
        used += cost
    outputs = []
    for k in range(width):
        v = cols.get(k, [])
        outputs.append(v[0] if v else None)
    # bits at weights >= 2**width are provably 0 (the count is at most n): they are dropped
    return ICE40Plan(n=n, invert=invert, chains=chains, outputs=outputs, buffers=buffers)


# --- netlist --------------------------------------------------------------------------------

def _lut_init(fn) -> int:
    """LUT_INIT of a 4-input function fn(i0, i1, i2, i3)."""
    return sum(fn((a >> 0) & 1, (a >> 1) & 1, (a >> 2) & 1, (a >> 3) & 1) << a
               for a in range(16))


class _Cells:
    def __init__(self, m: Module, primitives: bool):
        self.m = m
        self.primitives = primitives
        self.count = 0

    def lut(self, init: int, i0, i1, i2, i3) -> Signal:
        o = Signal(name=f"pc_lut{self.count}")
        self.count += 1
        if self.primitives:
            self.m.submodules += Instance(
                "SB_LUT4", p_LUT_INIT=Const(init, 16),
                i_I0=i0, i_I1=i1, i_I2=i2, i_I3=i3, o_O=o)
        else:
            self.m.d.comb += o.eq(Const(init, 16).bit_select(Cat(i0, i1, i2, i3), 1))
        return o

    def carry(self, i0, i1, ci) -> Signal:
        co = Signal(name=f"pc_co{self.count}")
        self.count += 1
        if self.primitives:
            self.m.submodules += Instance(
                "SB_CARRY", i_I0=i0, i_I1=i1, i_CI=ci, o_CO=co)
        else:
            self.m.d.comb += co.eq((i0 & i1) | (ci & (i0 | i1)))
        return co


def _consumer_polarity(plan: ICE40Plan) -> dict:
    want = {}
    for ch in plan.chains:
        for bit in ([ch.cin] if ch.cin else []) + [b for p in ch.pairs for b in p if b]:
            want[bit] = ch.polarity
    return want


def _build_ice40(m: Module, bits: Value, plan: ICE40Plan, primitives: bool) -> Value:
    cells = _Cells(m, primitives)
    want = _consumer_polarity(plan)
    net = {}                          # bit -> (signal, physical polarity)
    for i in range(plan.n):
        net[("x", i)] = (bits[i], (plan.invert >> i) & 1)
    for i in plan.buffers:
        flip = ((plan.invert >> i) & 1) ^ want[("b", i)]
        zero = Const(0, 1)
        net[("b", i)] = (cells.lut(_lut_init(lambda i0, i1, i2, i3: i0 ^ flip),
                                   bits[i], zero, zero, zero), want[("b", i)])

    def phys(bit, polarity):
        if bit is None:
            return Const(polarity, 1)
        sig, p = net[bit]
        assert p == polarity, "polarity mismatch in the popcount plan"
        return sig

    def emit_polarity(bit):
        return want.get(bit, 0)

    co = None
    prev = None
    for c, ch in enumerate(plan.chains):
        p = ch.polarity
        cin = phys(ch.cin, p)
        if ch.new_segment and co is not None:
            _feed_out(cells, co, plan.chains[prev], prev, net, emit_polarity)
            co = None
        if co is None:
            co = cells.carry(cin, cin, Const(0, 1))
        else:
            prev_pol = plan.chains[prev].polarity
            flip = prev_pol ^ emit_polarity(("c", prev))
            out = cells.lut(_lut_init(lambda i0, i1, i2, i3: i3 ^ flip), Const(0, 1), cin, cin, co)
            net[("c", prev)] = (out, prev_pol ^ flip)
            co = cells.carry(cin, cin, co)
        for j, (a, b) in enumerate(ch.pairs):
            sa, sb = phys(a, p), phys(b, p)
            flip = p ^ emit_polarity(("s", c, j))
            out = cells.lut(_lut_init(lambda i0, i1, i2, i3: i1 ^ i2 ^ i3 ^ flip),
                            Const(0, 1), sa, sb, co)
            net[("s", c, j)] = (out, p ^ flip)
            co = cells.carry(sa, sb, co)
        prev = c
    if prev is not None and ("c", prev) in plan.outputs:
        _feed_out(cells, co, plan.chains[prev], prev, net, emit_polarity)
    result = []
    for bit in plan.outputs:
        if bit is None:
            result.append(Const(0, 1))
            continue
        sig, p = net[bit]
        if p:
            zero = Const(0, 1)
            sig = cells.lut(_lut_init(lambda i0, i1, i2, i3: 1 ^ i0), sig, zero, zero, zero)
        result.append(sig)
    return Cat(*result)


def _feed_out(cells, co, chain, c, net, emit_polarity):
    flip = chain.polarity ^ emit_polarity(("c", c))
    zero = Const(0, 1)
    out = cells.lut(_lut_init(lambda i0, i1, i2, i3: i3 ^ flip), zero, zero, zero, co)
    cells.carry(zero, zero, co)
    net[("c", c)] = (out, chain.polarity ^ flip)
