#!/usr/bin/env python3
"""Turns the JSON lines written by bench/run.sh (one per bench_graft / bench_torch.py run)
into the markdown tables of docs/PERFORMANCE.md. Standard library only (runs without torch).

Usage: python3 bench/summarize.py results.jsonl
Each figure is the median over the rounds of the per-run medians; "spread" is
(max - min) / median over the rounds, a measure of how noisy the machine was.
"""
import json
import statistics
import sys
from collections import defaultdict

ROWS = [("mlp", "train"), ("mlp", "infer"), ("cnn", "train"), ("cnn", "infer"),
        ("finetune-frozen", "train"), ("finetune-full", "train"), ("lstm", "train"),
        ("gru", "train"), ("lstm-256", "train"), ("gru-256", "train"), ("transformer", "train"),
        ("mbv2-224-b1", "infer"), ("mbv2-224-b32", "infer"), ("mbv2-96-b1", "infer"),
        ("mbv2-96-b32", "infer"), ("mbv2-head", "features"), ("mbv2-head", "train"),
        ("mbv2-full", "train"), ("logmel", "features")]


def med(v):
    return statistics.median(v) if v else None


def spread(v):
    if len(v) < 2 or not med(v):
        return None
    return (max(v) - min(v)) / med(v)


def fmt(x, nd=0):
    if x is not None and nd == 0 and abs(x) < 100:
        nd = 1  # small rates (MobileNetV2 at batch 32) would round to a few units
    return "—" if x is None else f"{x:,.{nd}f}"


def pct(x):
    return "—" if x is None else f"{100 * x:.0f}%"


def ratio(a, b, nd=2):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.{nd}f}"


def main():
    runs = defaultdict(list)  # (impl, setting, workload, mode, threads) -> [json]
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        setting = "default" if r.get("setting") == "default" else "set"
        key = (r["impl"], setting, r["workload"], r.get("mode", ""),
               r.get("req_threads", r["threads"]))
        runs[key].append(r)

    def get(impl, workload, mode, threads, field, setting="set"):
        return [r[field] for r in runs.get((impl, setting, workload, mode, threads), []) if field in r]

    have_torch = any(k[0] == "torch" for k in runs)
    threads = sorted({k[4] for k in runs if k[0] == "graft" and k[2] != "sgemm"})
    rounds = max((len(v) for v in runs.values()), default=0)
    out = []
    if have_torch:
        out.append(f"Medians over {rounds} rounds, graft and torch runs alternating. "
                   "ratio = graft / torch (throughput: > 1 means graft is faster; "
                   "RSS: < 1 means graft uses less). spread = (max - min) / median over the "
                   "rounds.\n")
        out.append("| workload | threads | graft samples/s | torch samples/s | ratio | "
                   "graft peak RSS MiB | torch peak RSS MiB | RSS ratio | "
                   "spread graft / torch |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    else:
        out.append(f"graft only (PyTorch not found). Medians over {rounds} rounds; spread = "
                   "(max - min) / median over the rounds.\n")
        out.append("| workload | threads | graft samples/s | graft peak RSS MiB | spread |")
        out.append("|---|---|---:|---:|---:|")
    for w, m in ROWS:
        for t in threads:
            gs = get("graft", w, m, t, "samples_per_s")
            if not gs:
                continue
            gr = get("graft", w, m, t, "peak_rss_mib")
            if not have_torch:
                out.append(f"| {w} {m} | {t} | {fmt(med(gs))} | {fmt(med(gr), 1)} | "
                           f"{pct(spread(gs))} |")
                continue
            ts = get("torch", w, m, t, "samples_per_s")
            tr = get("torch", w, m, t, "peak_rss_mib")
            out.append(f"| {w} {m} | {t} | {fmt(med(gs))} | {fmt(med(ts))} | "
                       f"{ratio(med(gs), med(ts))} | {fmt(med(gr), 1)} | {fmt(med(tr), 1)} | "
                       f"{ratio(med(gr), med(tr))} | {pct(spread(gs))} / {pct(spread(ts))} |")

    cpu_rows = [(w, m, t) for w, m in ROWS for t in threads
                if get("graft", w, m, t, "samples_per_cpu_s") and get("torch", w, m, t, "samples_per_cpu_s")]
    if cpu_rows:
        out.append("\nThroughput per second of process CPU time (all of a process's threads; on a "
                   "loaded machine closer to what an idle core gives than the wall-clock rates "
                   "above; medians over the rounds):\n")
        out.append("| workload | threads | graft samples/CPU-s | torch samples/CPU-s | ratio |")
        out.append("|---|---|---:|---:|---:|")
        for w, m, t in cpu_rows:
            g = med(get("graft", w, m, t, "samples_per_cpu_s"))
            tt = med(get("torch", w, m, t, "samples_per_cpu_s"))
            out.append(f"| {w} {m} | {t} | {fmt(g, 1)} | {fmt(tt, 1)} | {ratio(g, tt)} |")

    out.append("\nTime from process start (s, medians, 1 thread) to the first training step's start "
               "(the dataset read, the model and optimizer built"
               + (", and for torch `import torch`" if have_torch else "") + ") and to its end:\n")
    out.append("| workload | graft to start | graft to end |"
               + (" torch to start | torch to end |" if have_torch else ""))
    out.append("|---|---:|---:|" + ("---:|---:|" if have_torch else ""))
    t1 = threads[0] if threads else 1
    for w, m in ROWS:
        g = get("graft", w, m, t1, "time_to_first_step_s")
        if g:
            gs = get("graft", w, m, t1, "time_to_step_start_s")
            row = f"| {w} {m} | {fmt(med(gs), 3) if gs else '-'} | {fmt(med(g), 3)} |"
            if have_torch:
                t = get("torch", w, m, t1, "time_to_first_step_s")
                ts = get("torch", w, m, t1, "time_to_step_start_s")
                row += f" {fmt(med(ts), 3) if ts else '-'} | {fmt(med(t), 3) if t else '-'} |"
            out.append(row)

    if have_torch:
        out.append("\nPyTorch with its default settings (no set_num_threads, "
                   "OPENBLAS_NUM_THREADS unset; one run, in the first round), for reference:\n")
        out.append("| workload | torch threads (default) | torch default samples/s | "
                   "torch best of set_num_threads runs | graft best |")
        out.append("|---|---:|---:|---:|---:|")
        for w, m in ROWS:
            d = runs.get(("torch", "default", w, m, 0), [])
            if not d:
                continue
            best_t = max((med(get("torch", w, m, t, "samples_per_s")) or 0) for t in threads)
            best_g = max((med(get("graft", w, m, t, "samples_per_s")) or 0) for t in threads)
            out.append(f"| {w} {m} | {d[0]['threads']} | "
                       f"{fmt(med([r['samples_per_s'] for r in d]))} | {fmt(best_t)} | "
                       f"{fmt(best_g)} |")

    cli = [(w, t) for w in ("mlp", "cnn") for t in threads if get("graft", w, "cli-train", t, "samples_per_s")]
    if cli:
        out.append("\nThe command line: a whole `graft train --epochs 1` process (start, data read, one "
                   "epoch at batch 64, test-set evaluation, weights written) and the same job as a "
                   "PyTorch program (bench/torch_train.py), each timed from outside; samples/s = "
                   "training examples / process seconds; in-loop = the run's own training-loop "
                   "rate. The last ratio sets graft's process against PyTorch's in-loop rate of "
                   "the tables above (batch 128 for the MLP, 64 for the CNN).\n")
        out.append("| workload | threads | graft process samples/s | torch process samples/s | "
                   "process ratio | graft in-loop | torch in-loop | in-loop ratio | "
                   "graft process / torch bench in-loop | peak RSS MiB graft / torch |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w, t in cli:
            gp = med(get("graft", w, "cli-train", t, "samples_per_s"))
            gl = med(get("graft", w, "cli-train", t, "in_loop_samples_per_s"))
            tp = med(get("torch", w, "cli-train", t, "samples_per_s"))
            tl = med(get("torch", w, "cli-train", t, "in_loop_samples_per_s"))
            tb = med(get("torch", w, "train", t, "samples_per_s"))
            grss = med(get("graft", w, "cli-train", t, "peak_rss_mib"))
            trss = med(get("torch", w, "cli-train", t, "peak_rss_mib"))
            out.append(f"| {w} train | {t} | {fmt(gp)} | {fmt(tp) if tp else '-'} | "
                       f"{ratio(gp, tp) if tp else '-'} | {fmt(gl)} | {fmt(tl) if tl else '-'} | "
                       f"{ratio(gl, tl) if tl else '-'} | {ratio(gp, tb) if tb else '-'} | "
                       f"{fmt(grss, 1)} / {fmt(trss, 1) if trss else '-'} |")

    sg = {t: [r["gflops"] for r in runs.get(("graft", "set", "sgemm", "", t), [])]
          for t in threads}
    if any(sg.values()):
        shapes = list(next(v for v in sg.values() if v)[0].keys())
        out.append("\nsgemm GFLOP/s (C = A B, m x k x n; graft through gf_matmul -> OpenBLAS "
                   "(OpenMP build)" +
                   (", torch through torch.mm with OPENBLAS_NUM_THREADS=1, so its BLAS stays "
                    "on one thread whatever set_num_threads says" if have_torch else "") +
                   "):\n")
        out.append("| shape | " + " | ".join(
            f"graft {t}T" + (f" | torch {t}T" if have_torch else "") for t in threads) +
            (f" | graft {threads[-1]}T/{threads[0]}T scaling |" if len(threads) > 1 else " |"))
        ncols = len(threads) * (2 if have_torch else 1) + (1 if len(threads) > 1 else 0)
        out.append("|---|" + "---:|" * ncols)
        for s in shapes:
            cells, g = [], {}
            for t in threads:
                g[t] = med([x[s] for x in sg[t]])
                cells.append(fmt(g[t], 1))
                if have_torch:
                    tv = [r["gflops"][s] for r in runs.get(("torch", "set", "sgemm", "", t), [])]
                    cells.append(fmt(med(tv), 1))
            if len(threads) > 1:
                cells.append(ratio(g[threads[-1]], g[threads[0]]))
            out.append(f"| {s} | " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
