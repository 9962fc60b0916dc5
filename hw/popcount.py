"""Popcount generators (combinational)."""

from amaranth.hdl import Module, Value

__all__ = ["popcount"]


def popcount(m: Module, bits: Value) -> Value:
    """Number of ones in ``bits`` as an unsigned value of width ceil(log2(N+1)).

    A balanced adder tree, summed pairwise level by level (depth ceil(log2 N)). ``m`` is the
    module that any helper logic is added to.
    """
    if len(bits) == 0:
        raise ValueError("popcount of an empty vector")
    terms = [bits[i].as_unsigned() for i in range(len(bits))]
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0][:len(bits).bit_length()]
