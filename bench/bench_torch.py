#!/usr/bin/python3
"""PyTorch side of graft's benchmark: the same workloads as bench/bench_graft.c (see its
header for their definitions), printing the same one-line JSON. The text workloads (lstm,
gru, lstm-256, gru-256) draw their synthetic ids with torch's generator: the same
distribution as bench_graft's, not the same ids. The MobileNetV2 workloads (mbv2-*) run
torchvision's mobilenet_v2 with the weights of the TensorFlow.js file bench_graft loads
(mb_model); their images are drawn with torch's generator.

Run with Debian's python3-torch:  /usr/bin/python3 bench/bench_torch.py --workload cnn --threads 2
--threads N calls torch.set_num_threads(N); --threads 0 keeps PyTorch's default setting (the
"default" run). OpenBLAS (used by this torch build for its BLAS calls) reads
OPENBLAS_NUM_THREADS at import, so that variable is set by the caller (bench/run.sh sets it to
1, PyTorch's best 2-core setting); the JSON records it.

Data: the Fashion-MNIST training images read from the gzip IDX files into one uint8 tensor,
converted to float per batch (x / 255) in a fixed seeded order, like bench_graft. --data
synthetic (or missing files) uses random uint8 images instead.
"""
import argparse
import gzip
import json
import os
import re
import resource
import statistics
import struct
import sys
import time


def since_process_start():
    """Seconds since the kernel started this process (/proc/self/stat field 22)."""
    try:
        with open("/proc/self/stat") as f:
            s = f.read()
    except OSError:
        return -1.0
    fields = s[s.rindex(")") + 2:].split()
    start = int(fields[22 - 3]) / os.sysconf("SC_CLK_TCK")
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start


START_TO_MAIN = since_process_start()  # interpreter start-up, before importing torch

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

IMG, PIX, N_CLASSES, SYNTH_N = 28, 28 * 28, 10, 8192


def read_idx(path):
    """uint8 IDX file (plain or gzip) -> numpy array, read straight into its final buffer."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path}: not a uint8 IDX file")
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        out = np.empty(dims, dtype=np.uint8)
        if f.readinto(memoryview(out).cast("B")) != out.size:
            raise ValueError(f"{path}: truncated")
    return out


def load_data(name, seed):
    """(images uint8 [n, 28, 28], labels int64 [n], real?)"""
    if name != "synthetic":
        root = os.environ.get("GRAFT_DATA_DIR", "/usr/share/datasets")
        d = os.path.join(root, name) if os.path.isdir(os.path.join(root, name)) else root
        try:
            x = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))
            y = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))
            return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), True
        except (OSError, ValueError) as e:
            print(f"bench_torch: {e}; using synthetic data", file=sys.stderr)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randint(0, 256, (SYNTH_N, IMG, IMG), dtype=torch.uint8, generator=g)
    y = torch.randint(0, N_CLASSES, (SYNTH_N,), dtype=torch.int64, generator=g)
    return x, y, False


def make_mlp():
    return nn.Sequential(nn.Linear(PIX, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, N_CLASSES))


CNN_TRUNK = 6  # children 0..5: conv, relu, pool, conv, relu, pool


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, N_CLASSES))


TX_VOCAB, TX_LEN, TX_CLASSES, TX_D = 1000, 64, 10, 128


def tx_batch(b, n):
    """Batch b of the synthetic token data (the same formula as bench_graft.c's tx_batch)."""
    x = torch.zeros(n, TX_LEN, dtype=torch.int64)
    for i in range(n):
        length = 16 + (37 * i + 11 * b) % 49
        for j in range(length):
            x[i, j] = 1 + (131 * i + 17 * j + 7 * b) % (TX_VOCAB - 1)
    y = torch.tensor([(i + b) % TX_CLASSES for i in range(n)], dtype=torch.int64)
    return x, y


class PositionalEncoding(nn.Module):
    """The PyTorch tutorial's, batch-first: x + pe[:T], then dropout."""

    def __init__(self, d, dropout, max_len):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2) * (-np.log(10000.0) / d))
        pe = torch.zeros(max_len, 1, d)
        pe[:, 0, 0::2] = torch.sin(position * div)
        pe[:, 0, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return self.dropout(x + self.pe[:x.size(1)].transpose(0, 1))


class TextTransformer(nn.Module):
    """graft's zoo `transformer`: embedding, positions, 2 encoder layers, masked mean, fc."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(TX_VOCAB, TX_D, padding_idx=0)
        self.pos = PositionalEncoding(TX_D, 0.1, TX_LEN)
        layer = nn.TransformerEncoderLayer(TX_D, 4, 256, 0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(TX_D, TX_CLASSES)

    def forward(self, ids):
        pad = ids == 0
        h = self.encoder(self.pos(self.embedding(ids)), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        h = (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return self.fc(h)


def timed(a, step, batch, model):
    """Runs step() once, a.warmup - 1 more times, then timed windows of a.steps steps (until
    a.windows windows or a.time_limit seconds); step returns the batch's loss or None. The
    timing, memory and size fields of a result."""
    step_start = since_process_start()  # data, model and optimizer ready
    first_loss = last_loss = step()
    first_step = since_process_start()
    for _ in range(1, a.warmup):
        last_loss = step()
    wins, t_timed, cpu0 = [], time.perf_counter(), time.process_time()
    while len(wins) < a.windows and (not wins or a.time_limit <= 0 or
                                     time.perf_counter() - t_timed < a.time_limit):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            last_loss = step()
        wins.append(a.steps * batch / (time.perf_counter() - t0))
    cpu = time.process_time() - cpu0  # all threads: see bench_graft's samples_per_cpu_s
    out = dict(samples_per_s=round(statistics.median(wins), 1),
               samples_per_cpu_s=round(len(wins) * a.steps * batch / cpu, 1),
               windows=[round(w, 1) for w in wins], steps_per_window=a.steps,
               peak_rss_mib=round(peak_rss_mib(), 1),
               time_to_step_start_s=round(step_start, 3),
               time_to_first_step_s=round(first_step, 3),
               process_start_to_main_s=round(START_TO_MAIN, 3),
               params=sum(p.numel() for p in model.parameters()),
               trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad))
    if last_loss is not None:
        out.update(first_loss=round(first_loss, 4), last_loss=round(last_loss, 4))
    return out


def run_transformer(a):
    torch.manual_seed(a.seed)
    batch = a.batch or 32
    data = [tx_batch(b, batch) for b in range(16)]
    model = TextTransformer()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    k = 0

    def step():
        nonlocal k
        x, y = data[k % 16]
        k += 1
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return dict(common(a), workload="transformer", mode="train", batch=batch, data="synthetic",
                **timed(a, step, batch, model))


MEL_CLIPS, MEL_SAMPLES = 256, 16000


def mel_clips():
    """The clips of bench_graft.c's mel_clip: a rising tone and a hash noise."""
    t = np.arange(MEL_SAMPLES, dtype=np.int64)
    s = t / 16000.0
    out = np.empty((MEL_CLIPS, MEL_SAMPLES), dtype=np.float32)
    for i in range(MEL_CLIPS):
        f = 200.0 + 50.0 * (i % 16)
        h = (t * 2654435761 + i * 40503) & 0xFFFFFFFF
        out[i] = 0.5 * np.sin(2 * np.pi * f * s * (1 + s)) + 0.05 * ((h >> 8) / 16777216.0 - 0.5)
    return torch.from_numpy(out)


def mel_fbanks(n_freqs, n_mels, sr):
    """torchaudio.functional.melscale_fbanks(n_freqs, 0, sr / 2, n_mels, sr), htk, no norm."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)
    m = np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2)
    f_pts = 700.0 * (10 ** (m / 2595.0) - 1.0)
    all_freqs = np.linspace(0, sr // 2, n_freqs)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.from_numpy(np.maximum(0.0, np.minimum(down, up))).float()


def run_logmel(a):
    """torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=40) as
    torchaudio computes it (torch.stft, power 2, a filterbank product), then log(x + 1e-6)."""
    batch = a.batch or 64
    clips = mel_clips()
    window = torch.hann_window(400)
    fb = mel_fbanks(201, 40, 16000)
    k = 0

    def step():
        nonlocal k
        idx = [(k + i) % MEL_CLIPS for i in range(batch)]
        k = (k + batch) % MEL_CLIPS
        with torch.no_grad():
            spec = torch.stft(clips[idx], 400, hop_length=160, win_length=400, window=window,
                              center=True, pad_mode="reflect", return_complex=True)
            power = spec.abs().pow(2.0)  # [B, 201, frames]
            mel = torch.matmul(power.transpose(1, 2), fb).transpose(1, 2)
            feats = torch.log(mel + 1e-6)
        return float(feats[0, 20, 50])

    model = nn.Linear(1, 1)  # no parameters to speak of: timed() reports a model's size
    return dict(common(a), workload="logmel", mode="features", batch=batch, data="synthetic",
                **timed(a, step, batch, model))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run_model(a):
    mlp = a.workload == "mlp"
    frozen = a.workload == "finetune-frozen"
    finetune = frozen or a.workload == "finetune-full"
    if not (mlp or finetune or a.workload == "cnn"):
        sys.exit(f"bench_torch: unknown workload '{a.workload}'")
    mode = "train" if finetune else a.mode
    if mode not in ("train", "infer"):
        sys.exit(f"bench_torch: unknown mode '{mode}'")
    train = mode == "train"
    torch.manual_seed(a.seed)
    batch = a.batch or (128 if mlp else 64)
    images, labels, real = load_data(a.data, a.seed)
    n = images.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed))
    model = make_mlp() if mlp else make_cnn()
    if frozen:
        for m in list(model.children())[:CNN_TRUNK]:
            m.requires_grad_(False)
    # every parameter goes to Adam; frozen ones never get a .grad, so Adam skips them
    opt = torch.optim.Adam(model.parameters(), lr=1e-3) if train else None
    if not train:
        model.eval()
    shape = (-1, PIX) if mlp else (-1, 1, IMG, IMG)
    pos = 0

    def step():
        nonlocal pos
        if pos + batch > n:
            pos = 0
        idx = perm[pos:pos + batch]
        pos += batch
        x = images[idx].to(torch.float32).div_(255.0).view(shape)
        y = labels[idx]
        if train:
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad()  # 1.13 default: set_to_none=False, like graft's
            loss.backward()
            opt.step()
            return loss.item()
        with torch.no_grad():
            model(x)
        return None

    return dict(common(a), workload=a.workload, mode=mode, batch=batch,
                data="fashion-mnist" if real else "synthetic", **timed(a, step, batch, model))


TXT_T, TXT_VOCAB, TXT_EMB, TXT_N, TXT_BATCH = 64, 1000, 64, 4096, 32


class TextClassifier(nn.Module):
    """Embedding(1000, 64, padding_idx=0) -> LSTM / GRU (batch_first, packed by the lengths,
    the count of non-zero ids) -> the final state (each example's last real step) -> Linear."""

    def __init__(self, lstm, hidden):
        super().__init__()
        self.embedding = nn.Embedding(TXT_VOCAB, TXT_EMB, padding_idx=0)
        self.rnn = (nn.LSTM if lstm else nn.GRU)(TXT_EMB, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 2)

    def forward(self, ids):
        lengths = (ids != 0).sum(1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state
        return self.fc(h[-1])


def text_data(seed):
    """TXT_N rows of ids 1..999 then 0 padding (lengths 32..64), label: first id < 500."""
    g = torch.Generator().manual_seed(seed + 1)
    lengths = torch.randint(TXT_T // 2, TXT_T + 1, (TXT_N,), generator=g)
    ids = torch.randint(1, TXT_VOCAB, (TXT_N, TXT_T), generator=g)
    ids[torch.arange(TXT_T)[None, :] >= lengths[:, None]] = 0
    return ids, (ids[:, 0] < TXT_VOCAB // 2).to(torch.int64)


def run_text(a):
    torch.manual_seed(a.seed)
    model = TextClassifier(a.workload.startswith("lstm"), 256 if a.workload.endswith("-256") else 128)
    ids, labels = text_data(a.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    pos = 0

    def step():
        nonlocal pos
        if pos + TXT_BATCH > TXT_N:
            pos = 0
        x, y = ids[pos:pos + TXT_BATCH], labels[pos:pos + TXT_BATCH]
        pos += TXT_BATCH
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return dict(common(a), workload=a.workload, mode="train", batch=TXT_BATCH, data="synthetic",
                **timed(a, step, TXT_BATCH, model))


# ---- MobileNetV2: torchvision's architecture with the weights of graft's TensorFlow.js file ----

MB_CLASSES, MB_FEAT_N = 10, 64


def mb_spec(workload):
    """(size, batch, kind) of mbv2-<size>-b<batch> (infer), mbv2-head, mbv2-full."""
    if workload == "mbv2-head":
        return 224, 32, "head"
    if workload == "mbv2-full":
        return 96, 32, "full"
    m = re.fullmatch(r"mbv2-(\d+)-b(\d+)", workload)
    if not m:
        sys.exit(f"bench_torch: unknown workload '{workload}'")
    return int(m.group(1)), int(m.group(2)), "infer"


def mb_model_path():
    """The model.json of scripts/fetch-mobilenet.sh (the same search as bench_graft)."""
    d, x = os.environ.get("GRAFT_DATA_DIR"), os.environ.get("XDG_CACHE_HOME")
    if d:
        return os.path.join(d, "mobilenet-v2", "model.json")
    base = x or os.path.join(os.environ.get("HOME", "."), ".cache")
    return os.path.join(base, "graft", "mobilenet-v2", "model.json")


def tfjs_weights(path):
    """{name: numpy float32 array} of a TensorFlow.js weights manifest (float32, or uint8 /
    uint16 quantised with min and scale: value = min + scale q; float16)."""
    with open(path) as f:
        manifest = json.load(f)["weightsManifest"]
    out = {}
    folder = os.path.dirname(path)
    for group in manifest:
        buf = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            dt = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}[q["dtype"]] \
                if q else np.float32
            a = np.frombuffer(buf, dtype=dt, count=n, offset=off)
            off += n * np.dtype(dt).itemsize
            a = a.astype(np.float32)
            if q and q["dtype"] != "float16":
                a = np.float32(q["min"]) + np.float32(q["scale"]) * a
            out[w["name"]] = a.reshape(w["shape"])
    return out


def mb_layer_names():
    """(Keras layer, torchvision module path) for every convolution and batch norm: the stem,
    the 17 inverted-residual blocks (the first without expansion) and the last 1x1 conv."""
    pairs = [("Conv1", "features.0.0"), ("bn_Conv1", "features.0.1"),
             ("expanded_conv_depthwise", "features.1.conv.0.0"),
             ("expanded_conv_depthwise_BN", "features.1.conv.0.1"),
             ("expanded_conv_project", "features.1.conv.1"),
             ("expanded_conv_project_BN", "features.1.conv.2")]
    for b in range(1, 17):
        f = f"features.{b + 1}.conv"
        pairs += [(f"block_{b}_expand", f + ".0.0"), (f"block_{b}_expand_BN", f + ".0.1"),
                  (f"block_{b}_depthwise", f + ".1.0"), (f"block_{b}_depthwise_BN", f + ".1.1"),
                  (f"block_{b}_project", f + ".2"), (f"block_{b}_project_BN", f + ".3")]
    return pairs + [("Conv_1", "features.18.0"), ("Conv_1_bn", "features.18.1")]


def mb_model():
    """torchvision's mobilenet_v2 (10 classes, its dropout removed as graft's head has none)
    with the trunk's weights from the TensorFlow.js file: HWIO kernels -> OIHW, depthwise
    [kh, kw, C, 1] -> [C, 1, kh, kw], BatchNorm eps 1e-3 as Keras's. Keras pads its stride-2
    convs asymmetrically (ZeroPadding2D (0, 1)), torchvision symmetrically (padding 1), so the
    outputs differ slightly from graft's; the work is the same."""
    import torchvision
    model = torchvision.models.mobilenet_v2(num_classes=MB_CLASSES)
    model.classifier[0] = nn.Identity()
    w = tfjs_weights(mb_model_path())
    mods = dict(model.named_modules())
    for keras, tv in mb_layer_names():
        m = mods[tv]
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
            for src, dst in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                             ("moving_variance", "running_var")):
                getattr(m, dst).data.copy_(torch.from_numpy(w[f"{keras}/{src}"]))
        elif "depthwise" in keras:
            m.weight.data.copy_(torch.from_numpy(w[f"{keras}/depthwise_kernel"]).permute(2, 3, 0, 1))
        else:
            m.weight.data.copy_(torch.from_numpy(w[f"{keras}/kernel"]).permute(3, 2, 0, 1))
    return model


def run_mbv2(a):
    size, batch, kind = mb_spec(a.workload)
    batch = a.batch or batch
    torch.manual_seed(a.seed)
    model = mb_model()
    x = torch.rand(batch, 3, size, size) * 2 - 1
    y = torch.randint(0, MB_CLASSES, (batch,))
    base = dict(common(a), workload=a.workload, batch=batch, data="synthetic")
    if kind == "head":
        return run_mbv2_head(a, model, x, base)
    if kind == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
            return None

        return dict(base, mode="infer", **timed(a, step, batch, model))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return dict(base, mode="train", **timed(a, train_step, batch, model))


def run_mbv2_head(a, model, x, base):
    """Features of MB_FEAT_N images from the frozen trunk (pooled; one untimed batch first),
    printed as a "features" line, then the Linear head trained on them."""
    model.eval()
    batch = x.shape[0]
    feats = torch.empty(MB_FEAT_N, 1280)
    with torch.no_grad():
        for i in range(-batch, MB_FEAT_N, batch):
            if i == 0:
                t0, cpu0 = time.perf_counter(), time.process_time()
            f = torch.flatten(nn.functional.adaptive_avg_pool2d(model.features(x), 1), 1)
            if i >= 0:
                feats[i:i + batch] = f
    rate = MB_FEAT_N / (time.perf_counter() - t0)
    cpu_rate = MB_FEAT_N / (time.process_time() - cpu0)
    print(json.dumps(dict(base, mode="features", images=MB_FEAT_N, samples_per_s=round(rate, 1),
                          samples_per_cpu_s=round(cpu_rate, 1),
                          peak_rss_mib=round(peak_rss_mib(), 1)), separators=(",", ":")))
    head = model.classifier[1]
    labels = torch.arange(MB_FEAT_N) % MB_CLASSES
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    pos = 0

    def step():
        nonlocal pos
        if pos + batch > MB_FEAT_N:
            pos = 0
        f, yb = feats[pos:pos + batch], labels[pos:pos + batch]
        pos += batch
        loss = nn.functional.cross_entropy(head(f), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return dict(base, mode="train", **timed(a, step, batch, head))


def run_sgemm(a):
    shapes = {"n256": (256, 256, 256), "n512": (512, 512, 512), "n1024": (1024, 1024, 1024),
              "mlp_fc1_128x784x256": (128, 784, 256)}
    res = {}
    for name, (m, k, n) in shapes.items():
        x, w = torch.rand(m, k) - 0.5, torch.rand(k, n) - 0.5
        for _ in range(3):
            torch.mm(x, w)
        wins = []
        for _ in range(a.windows):
            t0, reps = time.perf_counter(), 0
            while True:
                torch.mm(x, w)
                reps += 1
                t = time.perf_counter() - t0
                if t >= 0.2:
                    break
            wins.append(2.0 * m * n * k * reps / t * 1e-9)
        res[name] = round(statistics.median(wins), 1)
    return dict(common(a), workload="sgemm", gflops=res, peak_rss_mib=round(peak_rss_mib(), 1))


def common(a):
    return dict(impl="torch", threads=torch.get_num_threads(), req_threads=a.threads,
                setting="default" if a.threads == 0 else "set_num_threads",
                torch=torch.__version__,
                openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                omp_num_threads=os.environ.get("OMP_NUM_THREADS"))


def describe():
    """One line: torch's version and the BLAS it runs on (with OpenBLAS's kernel when found)."""
    import ctypes
    import re
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    kernel = "kernel unknown"
    for name in ("libopenblas.so.0", "libblas.so.3"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            kernel = lib.openblas_get_corename().decode() + " kernel"
            break
        except (OSError, AttributeError):
            continue
    return f"PyTorch {torch.__version__}, BLAS {blas.group(1) if blas else 'unknown'}, {kernel}"


def main():
    if sys.argv[1:] == ["--describe"]:
        print(describe())
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="mlp",
                   help="mlp | cnn | finetune-frozen | finetune-full | sgemm | lstm | gru | "
                        "lstm-256 | gru-256 | transformer | mbv2-<size>-b<batch> | mbv2-head | "
                        "mbv2-full | logmel")
    p.add_argument("--mode", default="train", help="train | infer")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads(N); 0 keeps PyTorch's default")
    p.add_argument("--steps", type=int, default=20, help="steps per timed window")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=0, help="0: the workload's default")
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist | synthetic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=0.0,
                   help="start no new window after this many seconds of timing (0: none)")
    a = p.parse_args()
    if a.threads < 0 or a.steps < 1 or a.windows < 1 or a.warmup < 1 or a.batch < 0:
        sys.exit("bench_torch: threads >= 0; steps, windows, warmup >= 1; batch >= 0")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.workload == "sgemm":
        out = run_sgemm(a)
    elif a.workload in ("lstm", "gru", "lstm-256", "gru-256"):
        out = run_text(a)
    elif a.workload == "transformer":
        out = run_transformer(a)
    elif a.workload.startswith("mbv2-"):
        out = run_mbv2(a)
    elif a.workload == "logmel":
        out = run_logmel(a)
    else:
        out = run_model(a)
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
