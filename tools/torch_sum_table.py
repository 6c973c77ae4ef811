#!/usr/bin/python3
"""torch_sum_table.py - torch's CPU summation order, checked and recorded.

torch.sum of a contiguous float32/float64 vector on CPU runs cascade_sum
(aten/src/ATen/native/cpu/SumKernel.cpp); model/torch_math.c transcribes its
order as fp4m_sum_f32_torch / fp4m_sum_f64_torch (docs/model.md, "torch's
summation order"). This script has a Python model of that same order
(torch_order_sum below, written from the kernel, not from the C) and:

  check   compares the model with the installed torch bit for bit, for every
          length 1..64 and a few long ones, N random vectors each, float32 and
          float64, as a 1-D sum (torch.tensor(x).sum()) and as rows of a 2-D
          sum over the last dim (what transformers' top-k weight sum and
          RMSNorm mean do); each CPU capability given is run in a subprocess
          with ATEN_CPU_CAPABILITY set. Prints counts; exit 1 on any mismatch.
  record  writes the table tests/data/torch-sum.txt: torch's own sums (not the
          model's) for the cases test_model_torchsum regenerates.

Inputs come from Philox4x32-10 (Random123, as tests/testutil.h fp4t_rand4):
element i of case c of length n and dtype d is built from the 128 bits of
philox(counter = {i, c, d << 24 | n, 0}, key = {seed lo, seed hi}):
  words v0..v3; sign = v1 >> 31 (odd cases; even cases are positive);
  exponent e = -1 - v2 % 6 (even cases: weights in [2^-6, 1), like top-k
  router weights) or v2 % 24 - 12 (odd cases: both signs, 2^-12 .. 2^12);
  significand bits: float32 v0 & 0x7FFFFF, float64 (v1 & 0xFFFFF) << 32 | v0.
No floating-point operation is involved in making an input.

Usage (Debian's torch: /usr/bin/python3):
  tools/torch_sum_table.py check [--cases N] [--caps default,avx2,avx512]
  tools/torch_sum_table.py record [--cases N] [--out tests/data/torch-sum.txt]
"""
import argparse
import os
import subprocess
import sys

import numpy as np

SEED = 0x70C5_5E0D
# Lengths: all of 1..64 (top-k weight sums, short rows), then lengths that
# reach each level of multi_row_sum's cascade with 8 float lanes (a level-1
# flush every 16 rows of 4 vectors = 512 floats, level 2 every 8192, level 3
# every 131072) and around the vector/tail boundaries; 7168 and 18432 are
# R1's hidden and intermediate sizes. 140000 runs with one thread (numel >=
# 32768 would be split across threads otherwise, not modelled).
LENGTHS = list(range(1, 65)) + [65, 96, 100, 127, 128, 129, 255, 256, 257, 511, 512, 513,
                               1000, 1024, 2047, 2048, 4095, 4096, 7168, 8191, 8192, 8193,
                               10000, 16384, 18432, 32767, 140000]
DTYPES = {"F32": (0, np.float32, np.uint32), "F64": (1, np.float64, np.uint64)}

# ---------------------------------------------------------------------------
# Philox4x32-10, vectorised over counters (numpy uint32 arrays).
M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF


def philox4x32(c0, c1, c2, c3, seed):
    u = np.uint64
    m32 = u(MASK32)
    shape = np.broadcast(c0, c1, c2, c3).shape
    c = [np.broadcast_to(np.asarray(x, dtype=u), shape) & m32 for x in (c0, c1, c2, c3)]
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for r in range(10):
        if r:
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
        p0 = c[0] * u(M0)
        p1 = c[2] * u(M1)
        hi0, lo0 = p0 >> u(32), p0 & m32
        hi1, lo1 = p1 >> u(32), p1 & m32
        c = [hi1 ^ c[1] ^ u(k0), lo1, hi0 ^ c[3] ^ u(k1), lo0]
    return c


def inputs(dname, n, ncases, seed=SEED):
    """[ncases, n] array of inputs (see the module docstring)."""
    dtag, ftype, utype = DTYPES[dname]
    i = np.tile(np.arange(n, dtype=np.uint64), ncases)
    cs = np.repeat(np.arange(ncases, dtype=np.uint64), n)
    v0, v1, v2, _ = philox4x32(i, cs, (dtag << 24) | n, 0, seed)
    odd = (cs & np.uint64(1)) == 1
    sign = np.where(odd, v1 >> np.uint64(31), np.uint64(0))
    e = np.where(odd, (v2 % np.uint64(24)).astype(np.int64) - 12,
                 -1 - (v2 % np.uint64(6)).astype(np.int64))
    if dname == "F32":
        bits = (sign << np.uint64(31)) | (np.uint64(127) + e.astype(np.uint64)) << np.uint64(23) \
            | (v0 & np.uint64(0x7FFFFF))
        x = bits.astype(np.uint32).view(np.float32)
    else:
        bits = (sign << np.uint64(63)) | (np.uint64(1023) + e.astype(np.uint64)) << np.uint64(52) \
            | ((v1 & np.uint64(0xFFFFF)) << np.uint64(32)) | v0
        x = bits.view(np.float64)
    return x.reshape(ncases, n)


# ---------------------------------------------------------------------------
# The order of SumKernel.cpp's cascade_sum for one contiguous row, AVX2 build
# (Vectorized<float> = 8 lanes, Vectorized<double> = 4; the DEFAULT build has
# the same widths, 32-byte vectors). Vectorised over cases: a "scalar" is a
# column [ncases], a "vector" is [ncases, lanes]; numpy rounds each add in the
# array's dtype, as the kernel does.


def ceil_log2(x):  # utils::CeilLog2: 1 for x <= 2
    return 1 if x <= 2 else int(x - 1).bit_length()


def multi_row_sum(load, size, nrows, zero):
    """multi_row_sum<nrows>: rows 0..size-1 of nrows values; 4 cascade levels."""
    levels = 4
    lp = max(4, ceil_log2(size) // levels)
    step, mask = 1 << lp, (1 << lp) - 1
    acc = [[zero() for _ in range(nrows)] for _ in range(levels)]
    i = 0
    while i + step <= size:
        for _ in range(step):
            for k in range(nrows):
                acc[0][k] = acc[0][k] + load(i, k)
            i += 1
        for j in range(1, levels):
            for k in range(nrows):
                acc[j][k] = acc[j][k] + acc[j - 1][k]
                acc[j - 1][k] = zero()
            if i & (mask << (j * lp)):
                break
    while i < size:
        for k in range(nrows):
            acc[0][k] = acc[0][k] + load(i, k)
        i += 1
    for j in range(1, levels):
        for k in range(nrows):
            acc[0][k] = acc[0][k] + acc[j][k]
    return acc[0]


def row_sum(load, size, zero):
    """row_sum: a (size/4, 4) array summed column-wise, tail to column 0."""
    ilp = 4
    size_ilp = size // ilp
    part = multi_row_sum(lambda i, k: load(i * ilp + k), size_ilp, ilp, zero)
    for i in range(size_ilp * ilp, size):
        part[0] = part[0] + load(i)
    for k in range(1, ilp):
        part[0] = part[0] + part[k]
    return part[0]


def torch_order_sum(x):
    """torch.sum(x, -1) for x [ncases, n] (float32 or float64), serial."""
    ncases, n = x.shape
    dt = x.dtype
    lanes = 32 // dt.itemsize
    zs = lambda: np.zeros(ncases, dtype=dt)
    if n >= lanes:  # vectorized_inner_sum
        nvec = n // lanes
        zv = lambda: np.zeros((ncases, lanes), dtype=dt)
        vacc = row_sum(lambda i: x[:, i * lanes:(i + 1) * lanes], nvec, zv)
        s = zs()
        for k in range(nvec * lanes, n):  # the scalar tail first
            s = s + x[:, k]
        for lane in range(lanes):  # then the lanes in order
            s = s + vacc[:, lane]
    else:  # scalar row_sum (scalar_inner_sum / scalar_outer_sum)
        s = row_sum(lambda i: x[:, i], n, zs)
    return zs() + s  # the output is filled with 0 and accumulated into


def seq_sum(x):
    s = np.zeros(x.shape[0], dtype=x.dtype)
    for k in range(x.shape[1]):
        s = s + x[:, k]
    return s


def bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


# ---------------------------------------------------------------------------
# torch side (imported only in the worker, after ATEN_CPU_CAPABILITY is set).


def torch_sums(dname, n, ncases, one_d):
    import torch
    x = inputs(dname, n, ncases)
    if one_d:
        out = np.empty(ncases, dtype=x.dtype)
        for c in range(ncases):
            out[c] = torch.tensor(x[c]).sum().item()
        return out
    return torch.from_numpy(x).sum(dim=-1).numpy()


def worker(args):
    import torch
    torch.set_num_threads(1)
    cap = os.environ.get("ATEN_CPU_CAPABILITY", "(unset)")
    conf = [l.strip(" -") for l in torch.__config__.show().splitlines() if "CPU capability" in l]
    print(f"torch {torch.__version__}, ATEN_CPU_CAPABILITY={cap}: {conf[0] if conf else '?'}")
    bad_total = 0
    for dname in DTYPES:
        for one_d in (True, False):
            tested = bad = seq_differs = 0
            worst = []
            for n in LENGTHS:
                nc = args.cases if n <= 64 else max(1, min(args.cases, 2_000_000 // n))
                if one_d and n > 64:
                    nc = max(1, nc // 10)
                x = inputs(dname, n, nc)
                t = torch_sums(dname, n, nc, one_d)
                m = torch_order_sum(x)
                d = int(np.count_nonzero(bits(t) != bits(m)))
                tested += nc
                bad += d
                if d:
                    worst.append((n, d, nc))
                if n <= 64:
                    seq_differs += int(np.count_nonzero(bits(t) != bits(seq_sum(x))))
            form = "1-D x.sum()" if one_d else "2-D x.sum(-1)"
            print(f"  {dname} {form}: {tested} sums, {bad} differ from the model"
                  f"{' ' + str(worst[:8]) if worst else ''}; a sequential sum differs on"
                  f" {seq_differs} of the n <= 64 ones")
            bad_total += bad
    return 1 if bad_total else 0


def check(args):
    rc = 0
    for cap in args.caps.split(","):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
        p = subprocess.run([sys.executable, __file__, "_worker", "--cases", str(args.cases)],
                           env=env, capture_output=True, text=True)
        sys.stdout.write(p.stdout)
        if p.returncode:
            tail = p.stderr.strip().splitlines()[-1:] if p.stderr.strip() else []
            print(f"  capability {cap}: worker exit {p.returncode} {tail}")
            rc = 1
    return rc


def record(args):
    import torch
    torch.set_num_threads(1)
    conf = [l.strip(" -") for l in torch.__config__.show().splitlines() if "CPU capability" in l]
    lines = [
        "# torch.sum of contiguous float32 / float64 vectors on CPU: torch's own results, recorded",
        f"# with torch {torch.__version__} (Debian python3-torch), {conf[0] if conf else '?'},"
        " one thread.",
        "# Made with: /usr/bin/python3 tools/torch_sum_table.py record"
        f" --cases {args.cases}",
        f"# Inputs: Philox4x32-10, seed 0x{SEED:X}, as described in tools/torch_sum_table.py",
        "# (element i of case c: counter {i, c, dtype << 24 | n, 0}; dtype 0 = F32, 1 = F64).",
        "# The sum is torch.tensor(x).sum() for n <= 64 and torch.from_numpy(x).sum(-1) rows",
        "# above (the same kernel order; the script checks both forms).",
        "# dtype n case sum_bits",
    ]
    for dname in DTYPES:
        for n in LENGTHS:
            nc = args.cases if n <= 64 else max(2, min(args.cases, 200_000 // n))
            t = torch_sums(dname, n, nc, one_d=n <= 64)
            width = 8 if dname == "F32" else 16
            for c, b in enumerate(bits(t)):
                lines.append(f"{dname} {n} {c} {int(b):0{width}X}")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} lines to {args.out}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["check", "record", "_worker", "inputs"])
    ap.add_argument("--cases", type=int, default=None)
    ap.add_argument("--caps", default="default,avx2,avx512")
    ap.add_argument("--out", default="tests/data/torch-sum.txt")
    args = ap.parse_args()
    if args.mode == "record":
        args.cases = args.cases or 16
        return record(args)
    if args.mode == "inputs":  # a few input bits, to check the C generator
        for d in DTYPES:
            print(d, " ".join(f"{int(b):X}" for b in bits(inputs(d, 3, 2).ravel())))
        return 0
    args.cases = args.cases or 10000
    return worker(args) if args.mode == "_worker" else check(args)


if __name__ == "__main__":
    sys.exit(main())
