"""The ``hwgen`` command line.

``hwgen build model.onnx --target ice40`` compiles, generates, verifies and synthesizes a model
into ``model_hw/``; ``hwgen demo`` trains the embedded default (a binary MLP on scikit-learn's
digits) and builds it. Errors in the user's input end with one line on stderr and exit code 2;
Ctrl-C ends with ``hwgen: interrupted`` and exit code 130 (SIGTERM and SIGHUP with ``hwgen:
terminated`` and 143 or 129), leaving nothing behind.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from hwgen.boards.targets import TARGETS
from hwgen.sw.families import DEMO_FAMILIES

__all__ = ["main"]


EXAMPLES = """\
examples:
  hwgen build model.onnx                   build into model_hw/ (compile, verify, synthesize)
  hwgen build model.onnx --out fpga/       the same, into fpga/
  hwgen build model.onnx --no-synth --random-vectors 1000
                                           compile and verify on 1000 random vectors only
  hwgen build model.onnx --vectors test.npy
                                           verify on a test split too
  hwgen demo                               train the binary MLP on digits and build it
  hwgen demo --family mbbn --bits 2 --out demo_mbbn/
"""

BUILD_EXAMPLES = """\
examples:
  hwgen build model.onnx                   into model_hw/ in the current folder
  hwgen build model.onnx --out fpga/ --vectors test.npy --random-vectors 2000
  hwgen build model.onnx --no-synth        stop after RTL verification

--vectors takes a NumPy .npy file (np.save) of one integer array of shape (B, n_in): B input
vectors of the model's n_in input codes, each in the range of the input Quant's type (e.g.
0..255 for 8 unsigned bits), such as a test split. Pickled and .npz files are refused.
"""


def _positive(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {s}")
    return v


def one_line(message: str) -> str:
    """``message`` on one line: a line break or other control character (a node name may hold
    one) is shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong flag is one line on stderr and exit code 2, like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="hwgen", description="Build a multiplier-free quantized network (ONNX) into a "
                "verified,\nsynthesized FPGA design; or train and build the demo.",
                epilog=EXAMPLES, formatter_class=raw)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="compile an ONNX model to a verified, synthesized design",
                       description="Compile an ONNX model (QONNX op vocabulary) to the integer "
                       "layer IR, generate its\nVerilog, verify it against the golden model in "
                       "cocotb/Verilator and synthesize it\nfor the board.",
                       epilog=BUILD_EXAMPLES, formatter_class=raw)
    b.add_argument("model", type=Path, help="the .onnx file (QONNX op vocabulary)")
    b.add_argument("--target", default="ice40", choices=sorted(TARGETS), help="the board")
    b.add_argument("--out", type=Path, default=None,
                   help="output folder (default: <model name>_hw in the current folder, e.g. "
                        "model_hw/ for model.onnx); replaced only if an earlier hwgen build "
                        "wrote it")
    b.add_argument("--vectors", type=Path, metavar="FILE.npy",
                   help="extra input vectors to verify, e.g. a test split: an integer .npy "
                        "array of shape (B, n_in) of input codes in the input type's range")
    b.add_argument("--random-vectors", type=_positive, default=10_000, metavar="N",
                   help="random input vectors to verify the RTL with (default 10000)")
    b.add_argument("--seed", type=_positive, default=0,
                   help="seed of the random vectors and stalls (default 0)")
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
    d.add_argument("--seed", type=_positive, default=0, help="training and split seed")
    d.add_argument("--no-synth", action="store_true", help="stop after RTL verification")
    return p


def default_out(model: Path) -> Path:
    """``--out`` when none is given: ``<model name>_hw`` in the current folder, a name that no
    packaging tool uses (``pip install .`` leaves a ``build/`` there)."""
    return Path(f"{model.stem}_hw")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a closed terminal), handled as Ctrl-C is: raised in the main thread,
    it ends the running tool and the build cleans up on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handled = (signal.SIGTERM, signal.SIGHUP)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _terminate) for s in handled} if main_thread else {}
    try:
        return _run(args)
    except KeyboardInterrupt as e:
        # the build has removed its scratch folder and lock on the way out
        signum = getattr(e, "signum", signal.SIGINT)
        if signum == signal.SIGINT:
            print("hwgen: interrupted", file=sys.stderr)
        else:
            print(f"hwgen: terminated ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(args) -> int:
    # the commands' modules are imported only now, so that --help and a wrong flag answer at
    # once: they bring in onnx, Amaranth, cocotb and (for the demo) PyTorch; a build's input is
    # checked before Amaranth and cocotb are imported (hwgen.checks)
    from hwgen.outdir import UsageError
    from hwgen.sw.compiler import CompileError

    try:
        if args.command == "build":
            from hwgen.checks import checked

            out = args.out if args.out is not None else default_out(args.model)
            with checked(args.model, target=args.target, out=out, vectors=args.vectors,
                         n_random=args.random_vectors, seed=args.seed) as c:
                from hwgen.build import build_checked

                result = build_checked(c, synth=not args.no_synth)
        else:
            from hwgen.demo import demo

            result = demo(out=args.out, target=args.target, family=args.family, bits=args.bits,
                          epochs=args.epochs, hidden=tuple(args.hidden), seed=args.seed,
                          synth=not args.no_synth)
    except (CompileError, UsageError) as e:
        return _error(e, 2)
    except Exception as e:
        # raised where the heavy modules are loaded already
        from hwgen.boards.flow import DoesNotFitError, FlowError
        from hwgen.build import BuildError
        from hwgen.hw.folding import DoesNotFitError as FoldingDoesNotFit

        if isinstance(e, (DoesNotFitError, FoldingDoesNotFit)):
            return _error(e, 2)
        if isinstance(e, (BuildError, FlowError)):
            return _error(e, 1)
        raise
    print(result.summary())
    return 0


def _error(e: Exception, code: int) -> int:
    print(f"hwgen: error: {one_line(str(e))}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
