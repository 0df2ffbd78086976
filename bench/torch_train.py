#!/usr/bin/env python3
"""The PyTorch program that does what `graft train --model mlp|cnn-small --data fashion-mnist
--epochs 1 --limit N --batch 64` does, as a whole process: read Fashion-MNIST from the IDX
files, keep N random training examples, pixels / 255, one epoch of Adam (lr 1e-3) over shuffled
batches of 64, cross entropy, evaluate the whole test set (accuracy and confusion matrix), save
the weights (state_dict, written to a temporary file and renamed). bench/run.sh times it from
outside exactly as it times `graft train`, so the two process rates compare the same work.

  /usr/bin/python3 bench/torch_train.py --model mlp --limit 12000 --threads 1 --out W.pt

Prints one JSON line: training examples, the in-loop seconds and the test accuracy.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import load_data, make_cnn, make_mlp, read_idx  # noqa: E402


def test_set():
    root = os.environ.get("GRAFT_DATA_DIR", "/usr/share/datasets")
    d = os.path.join(root, "fashion-mnist")
    d = d if os.path.isdir(d) else root
    x = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mlp", help="mlp | cnn-small")
    p.add_argument("--limit", type=int, default=12000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.model not in ("mlp", "cnn-small") or a.limit < 1 or a.threads < 1 or a.batch < 1:
        sys.exit("torch_train: --model mlp|cnn-small, --limit, --threads, --batch >= 1")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    mlp = a.model == "mlp"
    shape = (-1, 28 * 28) if mlp else (-1, 1, 28, 28)
    images, labels, real = load_data("fashion-mnist", a.seed)
    if not real:
        sys.exit("torch_train: Fashion-MNIST not found (set GRAFT_DATA_DIR)")
    g = torch.Generator().manual_seed(a.seed)
    keep = torch.randperm(images.shape[0], generator=g)[:a.limit]
    x = images[keep].to(torch.float32).div_(255.0).view(shape)
    y = labels[keep]
    model = make_mlp() if mlp else make_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    model.train()
    order = torch.randperm(x.shape[0], generator=g)
    for s in range(0, x.shape[0], a.batch):
        idx = order[s:s + a.batch]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    loop_s = time.perf_counter() - t0
    tx, ty = test_set()
    tx = tx.to(torch.float32).div_(255.0).view(shape)
    model.eval()
    confusion = torch.zeros(10, 10, dtype=torch.int64)
    with torch.no_grad():
        for s in range(0, tx.shape[0], 256):
            pred = model(tx[s:s + 256]).argmax(1)
            confusion.index_put_((ty[s:s + 256], pred), torch.ones_like(pred), accumulate=True)
    acc = confusion.diag().sum().item() / tx.shape[0]
    tmp = a.out + ".tmp"
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, a.out)
    print(json.dumps({"train": int(x.shape[0]), "in_loop_seconds": round(loop_s, 4),
                      "test_accuracy": round(acc, 4)}))


if __name__ == "__main__":
    main()
