"""The ``hwgen`` command line.

``hwgen build model.onnx --target ice40 --out build/`` compiles, generates, verifies and
synthesizes a model; ``hwgen demo`` trains the embedded default (a binary MLP on scikit-learn's
digits) and builds it. Errors in the user's input end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwgen.boards.targets import TARGETS
from hwgen.sw.families import DEMO_FAMILIES

__all__ = ["main"]


def _positive(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {s}")
    return v


class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong flag is one line on stderr and exit code 2, like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hwgen", description="Build a multiplier-free quantized network (ONNX) into a "
                "verified, synthesized FPGA design; or train and build the demo.")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="compile an ONNX model to a verified, synthesized design")
    b.add_argument("model", type=Path, help="the .onnx file (QONNX op vocabulary)")
    b.add_argument("--target", default="ice40", choices=sorted(TARGETS), help="the board")
    b.add_argument("--out", type=Path, default=Path("build"), help="output folder (default build/)")
    b.add_argument("--vectors", type=Path, help=".npy file of extra input vectors (B, n_in) "
                   "to verify, e.g. a test split")
    b.add_argument("--random-vectors", type=_positive, default=10_000,
                   help="random input vectors to verify the RTL with (default 10000)")
    b.add_argument("--seed", type=int, default=0, help="seed of the random vectors and stalls")
    b.add_argument("--no-synth", action="store_true", help="stop after RTL verification")

    d = sub.add_parser("demo", help="train a network on digits, export it and build it")
    d.add_argument("--family", default="binary", choices=DEMO_FAMILIES,
                   help="the network family (default binary): a binary MLP; a multi-branch "
                        "binary MLP (mbbn, seed 003); a power-of-two shift MLP trained with AQE "
                        "(shift, seed 004); a pruned Sum-and-Max network (sam, seed 002)")
    d.add_argument("--bits", type=int, default=None, choices=range(1, 9), metavar="{1..8}",
                   help="activation and weight bits of the mbbn and shift families (default "
                        "2); output-layer weight bits of the sam family (default 8)")
    d.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default demo/)")
    d.add_argument("--target", default="ice40", choices=sorted(TARGETS), help="the board")
    d.add_argument("--epochs", type=_positive, default=60, help="training epochs (default 60)")
    d.add_argument("--hidden", type=int, nargs="+", default=[128, 128],
                   help="hidden layer widths (default 128 128)")
    d.add_argument("--seed", type=int, default=0, help="training and split seed")
    d.add_argument("--no-synth", action="store_true", help="stop after RTL verification")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # the commands' modules are imported only now, so that --help and a wrong flag answer at
    # once: they bring in onnx, Amaranth, cocotb and (for the demo) PyTorch
    from hwgen.boards.flow import DoesNotFitError, FlowError
    from hwgen.build import BuildError, UsageError, build
    from hwgen.hw.folding import DoesNotFitError as FoldingDoesNotFit
    from hwgen.sw.compiler import CompileError

    try:
        if args.command == "build":
            result = build(args.model, target=args.target, out=args.out, vectors=args.vectors,
                           n_random=args.random_vectors, seed=args.seed, synth=not args.no_synth)
        else:
            from hwgen.demo import demo

            result = demo(out=args.out, target=args.target, family=args.family, bits=args.bits,
                          epochs=args.epochs, hidden=tuple(args.hidden), seed=args.seed,
                          synth=not args.no_synth)
    except (CompileError, DoesNotFitError, FoldingDoesNotFit, UsageError) as e:
        print(f"hwgen: error: {e}", file=sys.stderr)
        return 2
    except (BuildError, FlowError) as e:
        print(f"hwgen: error: {e}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
