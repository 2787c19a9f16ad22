"""Shared harness of the PyTorch reference benchmarks (bench/reference/<variant>.py).

Each reference builds the same networks as Gantry (same layer sizes, paddings and norms; NCHW instead of
NHWC) and mirrors Gantry's training step for its variant, so the ratio compares the compute, not the
algorithm. Run by `pnpm bench` as

    python3 bench/reference/<variant>.py --row '<json>' --threads N --json-out FILE [--steps N] [--peak N]

Timing: `warmup` untimed steps, then timed steps until the row's time budget is spent (at least minSteps, at
most maxSteps), exactly as bench/gantry-step.mjs does. A timed step ends with the losses read back (.item()).
"""

import argparse
import json
import os
import resource
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--row", help="row JSON (bench/configs.mjs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json-out")
    p.add_argument("--steps", type=int)
    p.add_argument("--alternate-threads", action="store_true",
                   help="timed steps alternate --threads and 1 thread (N, 1, 1, N, ...)")
    p.add_argument("--peak", type=int, help="measure matmul GFLOP/s at this size instead")
    p.add_argument("--device", default=os.environ.get("GANTRY_TORCH_DEVICE", "cpu"),
                   help="cpu (default) or cuda: where tensors and networks are made (torch >= 2.0 for cuda)")
    args = p.parse_args()
    os.environ["GANTRY_TORCH_DEVICE"] = args.device
    return args


def setup_threads(threads):
    # Before torch is imported, so its OpenMP/BLAS pools start at this size.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    if os.environ.get("GANTRY_TORCH_DEVICE", "cpu") != "cpu":
        # Every tensor and parameter the reference makes lands there; each step's .item() waits for the device.
        torch.set_default_device(os.environ["GANTRY_TORCH_DEVICE"])
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return torch


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def rss_mib():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def write_result(args, result):
    text = json.dumps(result, indent=2) + "\n"
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def forward_macs_per_sample(torch, model, inputs, batch):
    """Multiply-adds of one forward pass per sample: conv, transposed conv and linear layers, via hooks."""
    nn = torch.nn
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            total[0] += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.ConvTranspose2d):
            total[0] += inp[0].numel() * (mod.out_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total[0] += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(*inputs)
    model.train(was_training)
    for h in handles:
        h.remove()
    return total[0] // batch


def set_requires_grad(nets, flag):
    for n in nets:
        for p in n.parameters():
            p.requires_grad_(flag)


def adam(torch, params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def measure_peak(torch, n):
    """Best-of-N GFLOP/s of an n×n·n×n product at the configured thread count, three ways: torch.matmul (the
    BLAS torch was built with; Debian's is the generic reference BLAS unless an optimised libblas.so.3 is
    installed), a 3×3 convolution of similar size (oneDNN, what torch's convolutions use) and numpy."""
    out = {"kind": "matmul", "n": n, "blas": blas_info(torch)}
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    # A 3×3 convolution large enough to be compute-bound: torch runs it with oneDNN (1×1 kernels at batch 1
    # and one thread would go to the BLAS instead). ch→ch channels on side×side: 9·ch²·side² multiply-adds.
    ch = max(64, n // 4)
    side = 32
    img = torch.randn(1, ch, side, side)
    w = torch.randn(ch, ch, 3, 3)
    conv_flops = 2 * 9 * ch * ch * side * side
    for name, fn in (("torch", lambda: torch.matmul(a, b)), ("torch-conv3x3", lambda: torch.nn.functional.conv2d(img, w, padding=1)), ("numpy", None)):
        if name == "numpy":
            try:
                import numpy as np
            except ImportError:
                continue
            an, bn = a.numpy(), b.numpy()
            fn = lambda: np.matmul(an, bn)  # noqa: E731
        fn()
        times, cpu = [], []
        start = time.perf_counter()
        while len(times) < 3 or (len(times) < 20 and time.perf_counter() - start < 3):
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        best, best_cpu = min(times), max(min(cpu), 1e-3)
        flops = conv_flops if name == "torch-conv3x3" else 2 * n**3
        out[name] = {"bestMs": best, "bestCpuMs": best_cpu, "gflops": flops / (best * 1e6), "gflopsCpu": flops / (best_cpu * 1e6), "samples": len(times)}
    return out


def blas_info(torch):
    """Which BLAS torch's matmul resolves to (Debian: the libblas.so.3 alternative)."""
    try:
        cfg = torch.__config__.show()
        info = [part.strip() for part in cfg.split(",") if "BLAS_INFO" in part]
        libs = set()
        with open("/proc/self/maps") as f:
            for line in f:
                if "blas" in line.lower():
                    libs.add(os.path.realpath(line.split()[-1]))
        return {"build": info[0] if info else "?", "loaded": sorted(libs)}
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}


def run(build):
    """`build(torch, row)` returns (step, nets, macs_inputs): step(i) runs one full training step and returns
    the losses as floats; nets = {"G": module, "D": module}; macs_inputs = {"G": (inputs...), "D": (...)}
    for counting forward multiply-adds at the row's batch size."""
    args = parse_args()
    torch = setup_threads(args.threads)
    if args.peak:
        write_result(args, {"version": torch.__version__, "threads": torch.get_num_threads(), **measure_peak(torch, args.peak)})
        return
    row = json.loads(args.row)
    torch.manual_seed(1)
    step, nets, macs_inputs = build(torch, row)
    fwd = {k: forward_macs_per_sample(torch, nets[k], macs_inputs[k], row["batch"]) for k in nets}

    rss_before = rss_mib()
    warmup = []
    i = 0
    for _ in range(row["warmup"]):
        t0 = time.perf_counter()
        step(i)
        i += 1
        warmup.append((time.perf_counter() - t0) * 1000)
        print(f"  [torch] warm-up step {len(warmup)}: {warmup[-1]:.0f} ms", file=sys.stderr, flush=True)
    # --alternate-threads: both thread counts measured over the same minutes, as gantry-step.mjs does.
    alternate = args.alternate_threads and args.threads > 1
    times_one = []
    if alternate:
        torch.set_num_threads(1)
        for _ in range(row["warmup"]):
            step(i)
            i += 1
        torch.set_num_threads(args.threads)
    rss_warm = rss_mib()
    times = []
    started = time.perf_counter()

    def more():
        if args.steps is not None:
            return len(times) < args.steps
        if len(times) < row["minSteps"]:
            return True
        return len(times) < row["maxSteps"] and time.perf_counter() - started < row["budgetS"]

    cpu = []  # process CPU time per step (all threads): less disturbed by other load than wall-clock time
    def time_one():
        nonlocal i
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        step(i)
        i += 1
        times_one.append((time.perf_counter() - t0) * 1000)
        torch.set_num_threads(args.threads)

    while more():
        one_first = alternate and len(times) % 2 == 1
        if one_first:
            time_one()
        c0 = time.process_time()
        t0 = time.perf_counter()
        losses = step(i)
        i += 1
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        if alternate and not one_first:
            time_one()
        for v in losses:
            if v != v or v in (float("inf"), float("-inf")):
                raise SystemExit(f"step {i}: a loss is {v}")
        print(f"  [torch] step {len(times)}: {times[-1]:.0f} ms (CPU {cpu[-1]:.0f} ms)", file=sys.stderr, flush=True)

    write_result(
        args,
        {
            "mode": "bench",
            "impl": "PyTorch reference",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "forwardMacsPerSample": fwd,
            "warmupMs": warmup,
            "stepMs": times,
            "cpuMs": cpu,
            **({"stepMsOneThread": times_one} if alternate else {}),
            "rssBeforeMiB": rss_before,
            "rssAfterWarmupMiB": rss_warm,
            "rssAfterMiB": rss_mib(),
            "peakRssMiB": peak_rss_mib(),
        },
    )


def bce_d(F, real, fake):
    # Non-saturating BCE on logits, as Gantry's 'bce': softplus(-r) + softplus(f).
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_g(F, fake):
    return F.softplus(-fake).mean()


def lsgan_d(real, fake):
    return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())


def lsgan_g(fake):
    return ((fake - 1) ** 2).mean()
