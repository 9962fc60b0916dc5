"""Seed 001, Table 7.1 with measured numbers: the 8-8 autoencoder's receiver, compressed four ways.

Measured (quick default, ``python benchmarks/compression_table.py``, 2-core CPU shared with
other jobs, one thread): 53 s of work, 56 s wall. BLER at 6 dB over 200,000 blocks (s.e. of the
teacher's 1.6e-4, so |dBLER| < ~4.5e-4 is within 2 s.e. of a difference); time: median of 200
calls on one received word, of 20 calls on 4,096 words; speedups vs the teacher decoder.

=================================  ======  ========  =====  ======  =====  ======  ======
row                                nonzero mem bits  saved  t(1)    x      x(4096) BLER
=================================  ======  ========  =====  ======  =====  ======  ======
teacher decoder (float)            67584   2179072   0 %    19.5us  1.00   1.00    5.13e-3
distillation: student              2048    73728     96.6%  7.0us   2.78   24.1    5.43e-3
  control: student, hard labels    2048    73728     96.6%  7.0us   2.78   30.8    5.08e-3
8-bit quantization (dense float)   67584   557184    74.4%  19.8us  0.99   1.09    5.16e-3
50% prune + retrain (dense float)  33792   1165312   46.5%  19.6us  1.00   1.04    5.57e-3
distill->prune->quantize (dense)   1024    18496     99.2%  7.0us   2.79   28.4    4.69e-2
8-bit, int8 kernel (fbgemm)        67584   557184    74.4%  44.0us  0.44   3.16    5.21e-3
50% pruned, sparse CSR kernel      33792   1165312   46.5%  61.3us  0.32   0.28    5.57e-3
combination, sparse CSR kernel     1024    18496     99.2%  14.5us  1.35   10.3    4.69e-2
=================================  ======  ========  =====  ======  =====  ======  ======

(50 % pruned before retraining: 1.62e-2; the combination before its quantization: 4.67e-2.)

* Memory: distillation 29.6x (the seed's Table 7.1: ~3x, its modrec CNN's ratio; a linear
  receiver suffices here), 8-bit 3.9x (the seed's ~8x would need 4 bits), 50 % pruning only
  1.9x once the bitmask is counted (~10x needs ~90 %+ pruning), the combination 118x.
* Speed: dense float torch runs quantized and pruned weights at the dense cost (~1.0x, as
  expected). Only distillation speeds up in plain torch (2.8x per word, where call overhead
  dominates; ~25-30x on a batch, about the 29.6x size ratio). A real int8 kernel is *slower*
  per word (0.44x: dynamic activation quantization overhead) and 3.2x faster on a batch; CSR
  sparse at 50 % is 3x slower (the seed's point: BLAS is hard to beat); sparse CSR of the
  combination is slower than its dense run. Batch timings vary by ~20 % run to run (the two
  identical students: 24x and 31x) on this shared CPU.
* BLER (s.e. of a difference 2.3e-4): 8-bit +0.5 % (0.1 s.e.), 50 % pruning + retraining
  +8 % (1.9 s.e.), distillation +6 % (1.3 s.e.), and the hard-label student is as good (5.08e-3): with equal-energy
  codewords the ML receiver is linear, so the teacher adds nothing here. The combination is
  9x worse, all from the pruning (4.67e-2 before quantization): half of a linear receiver's 8
  inputs per codeword correlation is lost with the transmitter fixed.
* ``--full`` (3x steps, 1e6 blocks) was not run.

What it does
------------
The model compressed is the **receiver** (decoder) of Table 4.1's 8-bit-8-channel teacher
autoencoder (:func:`hwgen.sw.families.compression.comms.teacher`, per-codeword power, AWGN):
Linear(8, 256) + ReLU + Linear(256, 256), 68,096 parameters, the part a receiving device runs on
every block. The transmitter (the teacher's encoder) stays float and fixed, so every row has the
same codebook and the same channel; only the decoder changes. The teacher is trained with Adam (lr
1e-3 for ``--steps``, then 1e-4 for half as many, batch 256, at 7 dB); every BLER is measured at
``--ebn0`` (6 dB) over ``--blocks`` blocks with the same messages and noise (seed 1).

Rows:

* **distillation** (ch. 4): Table 4.2's student decoder, one Linear(8, 256) (2,304 parameters),
  trained on the teacher's received words y with
  :func:`hwgen.sw.families.compression.compress.distillation_loss` (T = ``--T``,
  alpha = ``--alpha``) against the teacher decoder's logits for ``--distill-steps`` (lr 1e-2, then
  1e-3 for half as many, at 7 dB). A control row trains the same student on hard labels only
  (alpha = 0): it shows how much of the student's BLER the teacher is responsible for (with
  equal-energy codewords the ML receiver is linear, so a linear student can match).
* **8-bit quantization** (ch. 5): :func:`hwgen.sw.families.compression.compress.quantize_model` with
  k = 8 (min/max, layer-wise, biases float), no retraining.
* **50 % pruning + retraining** (ch. 6):
  :func:`hwgen.sw.families.compression.compress.global_magnitude_prune` of the decoder's two weight
  matrices together, then ``--retrain-steps`` at lr 1e-3 and half as many at 1e-4 (decoder only, CE,
  :func:`~hwgen.sw.families.compression.compress.apply_masks` after every step).
* **distill -> prune -> quantize** (§7.5): the distilled student pruned by 50 %, retrained with
  the distillation loss and masks (``--retrain-steps`` at lr 1e-2, half as many at 1e-3),
  then quantized to 8 bits, then the
  masks re-applied (min/max levels need not contain 0 exactly; the pruned positions are stored
  as a bitmask and stay exactly zero).

Columns: nonzero weights; memory by :func:`hwgen.sw.families.compression.compress.memory_bits`
(float32 dense 32 bits per parameter; k-bit weights plus lo/hi; pruned tensors as kept weights plus
an N-bit bitmask) and memory saved relative to the teacher decoder; CPU time of the module actually
run (:func:`hwgen.sw.families.compression.compress.cpu_inference_time`, median, one thread) on one
received word (the seed's per-point latency) and on a batch of ``--batch`` words, and the speedup
over the teacher decoder; BLER and its change. Dense float torch runs quantized (dequantized) and
pruned (zeroed) weights at exactly the dense cost, so those rows show ~1x by construction. Two extra
*execution* rows measure what a different kernel gives: **int8 kernel**: the 8-bit model under
``torch.ao.quantization.quantize_dynamic`` (fbgemm int8 GEMM, dynamic activation quantization;
its own symmetric per-tensor weight scale, re-derived from the min/max-quantized weights, so
its BLER is measured too); **sparse CSR**: the pruned weight matrices as ``torch.sparse_csr``
tensors, ``torch.sparse.mm`` per layer. Where the deprecated quantize_dynamic is unavailable
the row says so.

Writes ``compression_table.png`` (memory saved, speedup, BLER per row) and ``results.json`` into
``--out`` (default ``runs/compression_table``).

Usage: ``python benchmarks/compression_table.py [--full] [--steps N] [--distill-steps N]
[--retrain-steps N] [--blocks N] [--repeats N] [--batch N] [--ebn0 DB] [--T T] [--alpha A]
[--out DIR] [--no-progress]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from hwgen.sw.families.compression import comms as C  # noqa: E402
from hwgen.sw.families.compression import compress as Z  # noqa: E402

QUICK = {"steps": 2000, "distill_steps": 2000, "retrain_steps": 1000, "blocks": 200_000,
         "repeats": 200}
FULL = {"steps": 6000, "distill_steps": 6000, "retrain_steps": 3000, "blocks": 1_000_000,
        "repeats": 1000}
K, N = 8, 8
TRAIN_EBN0 = 7.0


class SparseLinear(nn.Module):
    """y = x W^T + b with W stored as a CSR sparse tensor (only its nonzeros)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.weight = linear.weight.detach().to_sparse_csr()
        self.bias = linear.bias.detach().clone()

    def forward(self, x):
        return torch.sparse.mm(self.weight, x.t()).t() + self.bias


def sparse_copy(decoder: nn.Sequential) -> nn.Sequential:
    """The decoder with every Linear replaced by :class:`SparseLinear`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nn.Sequential(*[SparseLinear(m) if isinstance(m, nn.Linear) else m
                               for m in decoder])


def int8_copy(decoder: nn.Sequential):
    """fbgemm int8 execution (quantize_dynamic), or None where unavailable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(copy.deepcopy(decoder), {nn.Linear},
                                                          dtype=torch.qint8)
    except Exception:                                   # noqa: BLE001 - optional row
        return None


def with_decoder(ae: C.Autoencoder, decoder: nn.Module) -> C.Autoencoder:
    out = copy.copy(ae)                                 # shallow: shares the encoder
    out._modules = dict(ae._modules)
    out._modules["decoder"] = decoder
    return out


def train_decoder(ae, decoder, *, steps, lr, seed, teacher_decoder=None, T=4.0, alpha=0.7,
                  masks=None, batch=256):
    """Train ``decoder`` on received words of ``ae``'s (fixed) encoder: CE or distillation."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    decoder.train()
    for _ in range(steps):
        msg = torch.randint(0, ae.m, (batch,), generator=gen)
        with torch.no_grad():
            y = C.channel(ae.encode(msg), TRAIN_EBN0, ae.rate, ae.channel, gen)
            soft = teacher_decoder(y) if teacher_decoder is not None else None
        logits = decoder(y)
        if soft is None:
            loss = F.cross_entropy(logits, msg)
        else:
            loss = Z.distillation_loss(logits, soft, msg, T, alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if masks is not None:
            Z.apply_masks(decoder, masks)
    decoder.eval()
    return decoder


def nonzero_weights(module: nn.Module) -> int:
    """Nonzero weight entries of the dense Linear layers of ``module``."""
    return sum(int((m.weight != 0).sum()) for m in module.modules() if isinstance(m, nn.Linear))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help=f"{FULL}")
    for key in QUICK:
        ap.add_argument("--" + key.replace("_", "-"), type=int,
                        help=f"default {QUICK[key]} ({FULL[key]} with --full)")
    ap.add_argument("--batch", type=int, default=4096, help="batch of the throughput timing")
    ap.add_argument("--ebn0", type=float, default=6.0, help="evaluation Eb/N0 (dB)")
    ap.add_argument("--T", type=float, default=4.0, help="distillation temperature")
    ap.add_argument("--alpha", type=float, default=0.7, help="weight of the soft term")
    ap.add_argument("--out", default=os.path.join("runs", "compression_table"))
    ap.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    args = ap.parse_args(argv)
    scale = FULL if args.full else QUICK
    cfg = {k: (scale[k] if getattr(args, k) is None else getattr(args, k)) for k in QUICK}
    if min(cfg["steps"], cfg["distill_steps"], cfg["blocks"], cfg["repeats"], args.batch) < 1 \
            or cfg["retrain_steps"] < 0:
        ap.error("step, block, repeat and batch counts must be positive (retraining >= 0)")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    start = time.perf_counter()
    blocks, e = cfg["blocks"], args.ebn0
    bar = tqdm(total=7, desc="rows", unit="row", disable=args.no_progress)

    ae = C.teacher(K, N, seed=0)
    C.train_autoencoder(ae, ebn0_db=TRAIN_EBN0, steps=cfg["steps"], lr=1e-3, seed=0)
    if cfg["steps"] // 2:
        C.train_autoencoder(ae, ebn0_db=TRAIN_EBN0, steps=cfg["steps"] // 2, lr=1e-4, seed=1)
    for p in ae.encoder.parameters():
        p.requires_grad_(False)
    teacher_dec = ae.decoder
    bar.update()

    def distilled(alpha, seed=3):
        dec = C.student(K, N, seed=1).decoder
        kw = {"teacher_decoder": teacher_dec, "T": args.T, "alpha": alpha} if alpha else {}
        train_decoder(ae, dec, steps=cfg["distill_steps"], lr=1e-2, seed=seed, **kw)
        if cfg["distill_steps"] // 2:
            train_decoder(ae, dec, steps=cfg["distill_steps"] // 2, lr=1e-3, seed=seed + 1,
                          **kw)
        return dec

    student_dec = distilled(args.alpha)
    hard_dec = distilled(0.0)
    bar.update()

    quant_dec = copy.deepcopy(teacher_dec)
    Z.quantize_model(quant_dec, 8)
    bar.update()

    pruned_dec = copy.deepcopy(teacher_dec)
    pmasks = Z.global_magnitude_prune(pruned_dec, 0.5)
    bler_pruned_only = C.bler(with_decoder(ae, pruned_dec), e, blocks, seed=1)
    for phase, lr in ((1, 1e-3), (2, 1e-4)):          # retrain_steps, then half as many
        train_decoder(ae, pruned_dec, steps=cfg["retrain_steps"] // phase, lr=lr, seed=4 + phase,
                      masks=pmasks)
    bar.update()

    combo_dec = copy.deepcopy(student_dec)
    cmasks = Z.global_magnitude_prune(combo_dec, 0.5)
    for phase, lr in ((1, 1e-2), (2, 1e-3)):          # the student's rates
        train_decoder(ae, combo_dec, steps=cfg["retrain_steps"] // phase, lr=lr, seed=6 + phase,
                      masks=cmasks, teacher_decoder=teacher_dec, T=args.T, alpha=args.alpha)
    bler_combo_unquantized = C.bler(with_decoder(ae, combo_dec), e, blocks, seed=1)
    Z.quantize_model(combo_dec, 8)
    Z.apply_masks(combo_dec, cmasks)
    bar.update()

    # rows: (name, module run, memory bits, nonzero weights)
    rows = [
        ("teacher decoder (float)", teacher_dec, Z.memory_bits(teacher_dec)),
        ("distillation: student", student_dec, Z.memory_bits(student_dec)),
        ("  control: student, hard labels", hard_dec, Z.memory_bits(hard_dec)),
        ("8-bit quantization (dense float)", quant_dec,
         Z.memory_bits(quant_dec, quantized_bits=8)),
        ("50% prune + retrain (dense float)", pruned_dec,
         Z.memory_bits(pruned_dec, masks=pmasks)),
        ("distill->prune->quantize (dense)", combo_dec,
         Z.memory_bits(combo_dec, masks=cmasks, quantized_bits=8)),
    ]
    rows = [(name, mod, bits, nonzero_weights(mod)) for name, mod, bits in rows]
    i8 = int8_copy(quant_dec)
    if i8 is not None:
        rows.append(("8-bit, int8 kernel (fbgemm)", i8, rows[3][2], rows[3][3]))
    rows.append(("50% pruned, sparse CSR kernel", sparse_copy(pruned_dec), rows[4][2],
                 rows[4][3]))
    rows.append(("combination, sparse CSR kernel", sparse_copy(combo_dec), rows[5][2],
                 rows[5][3]))

    gen = torch.Generator().manual_seed(7)
    y1 = C.channel(ae.encode(torch.tensor([3])), e, ae.rate, generator=gen)
    yb = C.channel(ae.encode(torch.arange(args.batch) % ae.m), e, ae.rate, generator=gen)
    reps_b = max(1, cfg["repeats"] // 10)
    table = []
    for name, module, bits, nz in tqdm(rows, desc="measure", unit="row", leave=False,
                                       disable=args.no_progress):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = C.bler(with_decoder(ae, module), e, blocks, seed=1)
            t1 = Z.cpu_inference_time(module, y1, repeats=cfg["repeats"], warmup=20)
            tb = Z.cpu_inference_time(module, yb, repeats=reps_b, warmup=3)
        table.append({"row": name, "nonzero_weights": nz, "memory_bits": bits, "bler": b,
                      "bler_se": math.sqrt(b * (1 - b) / blocks), "t1_s": t1, "tbatch_s": tb})
    bar.update()
    base = table[0]
    for r in table:
        r["memory_saved"] = 1 - r["memory_bits"] / base["memory_bits"]
        r["memory_ratio"] = base["memory_bits"] / r["memory_bits"]
        r["speedup_1"] = base["t1_s"] / r["t1_s"]
        r["speedup_batch"] = base["tbatch_s"] / r["tbatch_s"]
        r["bler_change"] = r["bler"] - base["bler"]
    bar.update()
    bar.close()
    wall = time.perf_counter() - start

    mode = "--full" if args.full else "quick default"
    print(f"\nTable 7.1 measured ({mode}): receiver of the 8-8 teacher autoencoder, BLER at "
          f"{e:g} dB over {blocks} blocks (s.e. of the teacher's "
          f"{base['bler_se']:.1e}); CPU one thread, median of {cfg['repeats']} calls on 1 word"
          f" / {reps_b} calls on {args.batch} words")
    print(f"{'row':<35}{'nonzero w':>10}{'mem bits':>10}{'saved':>8}{'ratio':>7}"
          f"{'t(1) us':>9}{'x':>8}{'t(B) ms':>9}{'x':>8}{'BLER':>10}{'dBLER':>10}")
    for r in table:
        print(f"{r['row']:<35}{r['nonzero_weights']:>10}{r['memory_bits']:>10}"
              f"{r['memory_saved']:>8.1%}{r['memory_ratio']:>6.1f}x{r['t1_s'] * 1e6:>9.1f}"
              f" {r['speedup_1']:>6.2f}x{r['tbatch_s'] * 1e3:>9.2f} {r['speedup_batch']:>6.2f}x"
              f"{r['bler']:>10.2e}{r['bler_change']:>+10.2e}")
    print(f"50 % pruned teacher decoder before retraining: BLER {bler_pruned_only:.2e}; "
          f"combination before its quantization (distilled, pruned, retrained): BLER "
          f"{bler_combo_unquantized:.2e}")
    if i8 is None:
        print("int8 kernel row skipped: torch.ao.quantization.quantize_dynamic unavailable")
    print(f"wall time {wall:.0f} s; outputs in {args.out}")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    names = [r["row"].strip() for r in table]
    ys = range(len(table))
    axes[0].barh(ys, [100 * r["memory_saved"] for r in table], color="tab:blue")
    axes[0].set_xlabel("memory saved vs teacher decoder (%)")
    axes[1].barh(ys, [r["speedup_1"] for r in table], height=0.4, label="1 word",
                 color="tab:orange")
    axes[1].barh([y + 0.4 for y in ys], [r["speedup_batch"] for r in table], height=0.4,
                 label=f"{args.batch} words", color="tab:green")
    axes[1].axvline(1, color="k", lw=0.8)
    axes[1].set_xlabel("CPU speedup (measured)")
    axes[1].legend(fontsize=8)
    axes[2].barh(ys, [r["bler"] for r in table], xerr=[2 * r["bler_se"] for r in table],
                 color="tab:red")
    axes[2].set_xscale("log")
    axes[2].set_xlabel(f"BLER at {e:g} dB")
    for ax in axes:
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names if ax is axes[0] else [], fontsize=7)
        ax.invert_yaxis()
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"Table 7.1 measured: 8-8 autoencoder receiver ({mode})", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "compression_table.png"), dpi=110)
    plt.close(fig)
    results = {"args": vars(args), "config": cfg, "wall_s": wall, "ebn0_db": e,
               "pruned_before_retraining_bler": bler_pruned_only,
               "combination_before_quantization_bler": bler_combo_unquantized,
               "prune_fraction": 0.5,
               "sparsity": {"pruned": Z.sparsity(pruned_dec), "combination": Z.sparsity(combo_dec)},
               "int8_kernel_available": i8 is not None, "rows": table}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
