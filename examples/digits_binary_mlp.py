"""Train a binary MLP on scikit-learn's digits and take it to hardware through the Python API.

    python examples/digits_binary_mlp.py [--hidden 64 64] [--out runs/digits]

The same steps as ``hwgen demo``, spelled out: train, export to ONNX, compile to the integer IR,
check the golden model against PyTorch, then verify the RTL and synthesize with ``build``.
"""

import argparse
from pathlib import Path

import numpy as np

from hwgen.sw.core import golden
from hwgen.build import build
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.families.binary.layers import BinaryMLP
from hwgen.sw.families.data import digits
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.train import predict, train


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--out", type=Path, default=Path("runs/digits"))
    args = p.parse_args()

    split = digits()
    net = BinaryMLP(64, tuple(args.hidden), 10, in_bits=split.in_bits)
    train(net, split.x_train, split.y_train, epochs=args.epochs)
    print(f"test accuracy: {(predict(net, split.x_test) == split.y_test).mean():.4f}")

    args.out.mkdir(parents=True, exist_ok=True)
    export_onnx(net, args.out / "model.onnx")
    model = compile_onnx(args.out / "model.onnx")
    agree = golden.run(model, split.x_test)[:, 0] == predict(net, split.x_test)
    print(f"golden == PyTorch on {agree.sum()}/{agree.size} test images")

    np.save(args.out / "test.npy", split.x_test)
    result = build(args.out / "model.onnx", target="ice40", out=args.out / "build",
                   vectors=args.out / "test.npy", n_random=1000)
    print(result.summary())


if __name__ == "__main__":
    main()
