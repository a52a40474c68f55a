"""Benchmark HopaDIFF (not a test): prints a Markdown table.

  .venv/bin/python scripts/bench_model.py [--config config/hopadiff/rhas133_blip2.yaml] [--quick] [--profile]
  .venv/bin/python scripts/bench_model.py --vs-diffact [--repeats 7]
  .venv/bin/python scripts/bench_model.py --engines [--repeats 5]

Rows: two-branch window inference latency (median of N runs, ms) for W x DDIM steps x
torch threads; one training step (batch 8, W=256); peak memory (RSS high-water mark, or
CUDA max allocated on a GPU); parameter counts of the seed configs. --vs-diffact: one window
(25 DDIM steps) of HopaDIFF against DiffAct's single-branch model (scripts/diffact_reference.py,
DiffAct's seed sizes) at W = 64 / 256 / 1024, runs interleaved in one process, median of N,
each model eager and with its denoising step compiled (inference_engine compile; a first run
compiles for a minute or two on 2 CPU cores). --engines: every inference engine side by side with
DiffAct (eager and compiled) at W = 64 / 256 / 1024 and batch 1 / 8, the time each engine adds
to a configure (first, and again with its cache), and the compute floor: the FLOPs of one window
(counted by torch.utils.flop_counter over a real predict call) over this machine's sustained
GFLOP/s (a 2048 x 2048 fp32 matmul), so each time reads as a multiple of the floor.
"""

from __future__ import annotations

import argparse
import copy
import platform
import resource
import statistics
import time

import torch

import hopadiff
from hopadiff.runtime import prepare_for_inference, resolve_device


def once_ms(fn, device) -> float:
    """One call of fn, in ms (CUDA work finished on both ends)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3


def median_ms(fn, repeats: int, device) -> float:
    fn()  # warm-up
    return statistics.median(once_ms(fn, device) for _ in range(repeats))


def peak_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config/hopadiff/rhas133_blip2.yaml")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="W=256 only, fewer repeats")
    ap.add_argument(
        "--profile", action="store_true", help="only: where one W=256, 25-step window spends its time (torch.profiler)"
    )
    ap.add_argument("--vs-diffact", action="store_true", help="only: window time against DiffAct's single branch")
    ap.add_argument("--engines", action="store_true", help="only: every inference engine, DiffAct, the floor")
    ap.add_argument("--windows", type=int, nargs="+", default=[64, 256, 1024], help="--engines: window lengths")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="--engines: batch sizes (persons)")
    args = ap.parse_args()

    cfg = hopadiff.load_config(args.config)
    device = resolve_device(args.device)
    model = prepare_for_inference(hopadiff.HopaDIFF(cfg.model), args.device, args.precision)
    D = cfg.model.feature_dim
    print(f"# HopaDIFF benchmark: {args.config}, device {device}, {args.precision}, torch {torch.__version__}")
    print(f"# machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads default")
    print()
    if args.profile:
        profile_window(model, D, device)
        return
    if args.vs_diffact:
        versus_diffact(model, cfg.model, device, args.repeats)
        return
    if args.engines:
        engines_table(cfg.model, device, args.repeats, args.windows, args.batches, config=args.config)
        return
    print("| W | DDIM steps | threads | median ms / window |")
    print("|---|---|---|---|")
    windows = [256] if args.quick else [64, 128, 256, 512]
    thread_counts = [1, 2] if device.type == "cpu" else [torch.get_num_threads()]
    for W in windows:
        x = torch.randn(1, D, W, device=device)
        for steps in (25, 10, 5):
            for threads in thread_counts:
                torch.set_num_threads(threads)
                ms = median_ms(
                    lambda x=x, steps=steps: model.predict(x, x, steps=steps, generator=None),
                    3 if args.quick else args.repeats,
                    device,
                )
                print(f"| {W} | {steps} | {threads} | {ms:.1f} |")
    torch.set_num_threads(max(thread_counts))

    train_model = hopadiff.HopaDIFF(cfg.model).to(device).train()
    opt = torch.optim.Adam(train_model.parameters(), lr=1e-4)
    B, W, C = 8, 256, cfg.model.num_classes
    h, p = torch.randn(B, D, W, device=device), torch.randn(B, D, W, device=device)
    y = (torch.rand(B, C, W, device=device) < 0.02).float()

    def train_step():
        opt.zero_grad(set_to_none=True)
        train_model.training_losses(h, p, y)["total"].backward()
        opt.step()

    ms = median_ms(train_step, 3, device)
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| training step (B=8, W=256), ms | {ms:.0f} |")
    print(f"| training windows / s | {B / ms * 1e3:.1f} |")
    print(
        f"| peak memory, MiB ({'CUDA allocated' if device.type == 'cuda' else 'process RSS'}) | {peak_mb(device):.0f} |"
    )
    for name in ("rhas133_blip2.yaml", "rhas133_clip.yaml"):
        n = sum(
            q.numel() for q in hopadiff.HopaDIFF(hopadiff.load_config(f"config/hopadiff/{name}").model).parameters()
        )
        print(f"| parameters, {name} | {n / 1e6:.2f} M |")


def versus_diffact(model, mcfg, device, repeats: int) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from diffact_reference import DiffActReference

    ref = DiffActReference(mcfg.feature_dim, mcfg.num_classes).to(device).eval()
    n_ref = sum(p.numel() for p in ref.parameters()) / 1e6
    n_ours = sum(p.numel() for p in model.parameters()) / 1e6
    # Each model also with its denoising step compiled (ours: compile_model; DiffAct's decode the
    # same way, so the compiled ratio is like for like); the compiles are timed apart.
    compiled = copy.deepcopy(model).compile_decoder()
    ref_compiled = copy.deepcopy(ref)
    ref_compiled.decode = torch.compile(ref_compiled.decode, dynamic=True)
    t0 = time.perf_counter()
    compiled.warm_up(64, (1,))
    ref_compiled.predict(torch.randn(1, mcfg.feature_dim, 64, device=device), steps=1)
    compile_s = time.perf_counter() - t0
    print(f"## one window, 25 DDIM steps, {torch.get_num_threads()} threads, interleaved, median of {repeats}")
    print()
    print(f"DiffAct's single branch: {n_ref:.2f} M parameters; HopaDIFF's two branches: {n_ours:.2f} M. compiled: ")
    print(f"the denoising step through torch.compile (dynamic shapes), both models compiled once in {compile_s:.0f} s.")
    print()
    print(
        "| W | DiffAct ms | HopaDIFF ms | ratio | DiffAct compiled ms | HopaDIFF compiled ms "
        "| ratio, ours compiled / DiffAct | ratio, both compiled |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for W in (64, 256, 1024):
        x = torch.randn(1, mcfg.feature_dim, W, device=device)
        runs = {
            "ref": lambda x=x: ref.predict(x, steps=25),
            "ours": lambda x=x: model.predict(x, x, steps=25),
            "ref_compiled": lambda x=x: ref_compiled.predict(x, steps=25),
            "compiled": lambda x=x: compiled.predict(x, x, steps=25),
        }
        times = {k: [] for k in runs}
        for fn in runs.values():
            fn()  # warm-up
        for _ in range(repeats):
            for k, fn in runs.items():
                times[k].append(once_ms(fn, device))
        ms = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"| {W} | {ms['ref']:.0f} | {ms['ours']:.0f} | {ms['ours'] / ms['ref']:.2f} | {ms['ref_compiled']:.0f} "
            f"| {ms['compiled']:.0f} | {ms['compiled'] / ms['ref']:.2f} | {ms['compiled'] / ms['ref_compiled']:.2f} |"
        )


def profile_window(model, D: int, device, W: int = 256, steps: int = 25) -> None:
    """Operator table and per-module totals of one window (after a warm-up), to find where the time
    goes before optimising."""
    from torch.profiler import ProfilerActivity, profile, record_function

    x = torch.randn(1, D, W, device=device)
    model.predict(x, x, steps=steps)
    parts = {name: [module] for name, module in model.named_children() if name != "fusion"}
    # The decoders that run: only the branches the fusion reads (a cached subset) unless all are read.
    run = model.fusion.branches_read(model.num_branches)
    if len(run) < model.num_branches and model.decoder_groups == model.num_branches:
        parts["decoder"] = [model._decoder_subset(run)[0]]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof, record_function("window"):
        model.predict(x, x, steps=steps)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(f"## one window: W={W}, {steps} DDIM steps, {torch.get_num_threads()} threads")
    print()
    print("```")
    print(prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=40))
    print("```")
    # Per module: wall time of each top-level part, measured with hooks (the profiler's own
    # overhead excluded by timing a plain run).
    totals = {label: 0.0 for label in parts}
    starts = {}
    hooks = []
    for label, modules in parts.items():
        for m in modules:

            def enter(*_, lb=label):
                starts[lb] = time.perf_counter()

            def leave(*_, lb=label):
                totals[lb] += time.perf_counter() - starts[lb]

            hooks += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    t0 = time.perf_counter()
    model.predict(x, x, steps=steps)
    total = time.perf_counter() - t0
    for h in hooks:
        h.remove()
    print()
    print("| part | ms | share |\n|---|---|---|")
    for label, sec in totals.items():
        print(f"| {label} | {sec * 1e3:.1f} | {100 * sec / total:.0f} % |")
    print(f"| whole window | {total * 1e3:.1f} | 100 % |")


def sustained_gflops(device, n: int = 2048, seconds: float = 2.0) -> float:
    """This machine's sustained fp32 matmul rate: n x n matmuls repeated for ``seconds``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


def window_flops(model, D: int, W: int, B: int, device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(B, D, W, device=device)
    with FlopCounterMode(display=False) as counter:
        model.predict(x, x, steps=25)
    return float(counter.get_total_flops())


CONFIGURE = """
import sys, time, torch, hopadiff
from hopadiff.config import load_config
config, engine, cache, device, window = sys.argv[1:6]
torch.manual_seed(0)
model = hopadiff.HopaDIFF(load_config(config).model).to(device).eval()
t0 = time.perf_counter()
model.set_engine(engine, cache_dir=cache, log=lambda line: print("#", line, file=sys.stderr))
model.warm_up(int(window), (1,))
print(time.perf_counter() - t0, model.engine_report)
"""


def configure_seconds(config: str, device, window: int = 256) -> list[tuple[str, str, float, str]]:
    """What each engine adds to a node's configure (``warm_up`` after ``set_engine``, as
    RhasPipeline.from_checkpoint runs it), each in a fresh process as a robot's restart is: the
    first configure of a checkpoint (nothing cached: an empty inductor cache, no export), the next
    one (inductor's on-disk cache and the files beside the checkpoint), and for compile a next
    one on a machine whose inductor cache is empty (only the saved artifacts beside the checkpoint).
    -> (engine, case, seconds, engine report)."""
    import os
    import subprocess
    import sys
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_configure_") as tmp:
        cases = {
            "eager": [("first", "a")],
            "compile": [("first", "a"), ("next", "a"), ("next, inductor cache empty", "b")],
            "onnxruntime": [("first", "a"), ("next", "a")],
        }
        for engine, runs in cases.items():
            cache = os.path.join(tmp, f"{engine}.engines")
            for case, inductor in runs:
                env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=os.path.join(tmp, f"inductor-{engine}-{inductor}"))
                out = subprocess.run(
                    [sys.executable, "-c", CONFIGURE, config, engine, cache, str(device), str(window)],
                    capture_output=True, text=True, env=env, check=True,
                ).stdout.split(maxsplit=1)  # fmt: skip
                rows.append((engine, case, float(out[0]), out[1].strip()))
    return rows


def engines_table(mcfg, device, repeats: int, windows=(64, 256, 1024), batches=(1, 8), config=None) -> None:
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from diffact_reference import DiffActReference

    torch.manual_seed(0)
    base = hopadiff.HopaDIFF(mcfg).to(device).eval()
    cache = Path(tempfile.mkdtemp(prefix="bench_engines_"))
    models = {}
    for engine in ("eager", "compile", "onnxruntime"):
        m = copy.deepcopy(base).set_engine(engine, cache_dir=cache, log=lambda line: print(f"# {line}"))
        m.warm_up(64, (1, 2))
        models[engine] = m
    ref = DiffActReference(mcfg.feature_dim, mcfg.num_classes).to(device).eval()
    ref_compiled = copy.deepcopy(ref)
    ref_compiled.decode = torch.compile(ref_compiled.decode, dynamic=True)
    ref_compiled.predict(torch.randn(1, mcfg.feature_dim, 64, device=device), steps=1)
    gflops = sustained_gflops(device)
    threads = torch.get_num_threads()
    print(f"## one window, 25 DDIM steps, {threads} threads, runs interleaved, median of {repeats}")
    print()
    print(f"Sustained matmul rate here: {gflops:.0f} GFLOP/s (fp32, 2048 x 2048). Engine in use: "
          f"{models['onnxruntime'].engine_report}.")  # fmt: skip
    print()
    print("| W | B | GFLOP / window | floor ms | DiffAct | DiffAct compiled | eager | compile | onnxruntime "
          "| best / DiffAct eager | best / floor |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for W in windows:
        for B in batches:
            x = torch.randn(B, mcfg.feature_dim, W, device=device)
            runs = {
                "DiffAct": lambda x=x: ref.predict(x, steps=25),
                "DiffAct compiled": lambda x=x: ref_compiled.predict(x, steps=25),
                **{e: (lambda x=x, m=m: m.predict(x, x, steps=25)) for e, m in models.items()},
            }
            times = {k: [] for k in runs}
            for fn in runs.values():
                fn()  # warm-up (and, for B=8, the compile of a batch larger than one)
            n = repeats if W * B <= 2048 else max(2, repeats // 2)
            for _ in range(n):
                for k, fn in runs.items():
                    times[k].append(once_ms(fn, device))
            ms = {k: statistics.median(v) for k, v in times.items()}
            flops = window_flops(models["eager"], mcfg.feature_dim, W, B, device)
            floor = flops / (gflops * 1e9) * 1e3
            best = min(ms[e] for e in models)
            cells = " | ".join(f"{ms[k]:.0f}" for k in runs)
            print(f"| {W} | {B} | {flops / 1e9:.2f} | {floor:.1f} | {cells} | {best / ms['DiffAct']:.2f} "
                  f"| {best / floor:.0f}x |")  # fmt: skip
    shutil.rmtree(cache, ignore_errors=True)
    if config is not None:
        print()
        print("What each engine adds to a configure (W=256, one person; a fresh process each):")
        print()
        print("| engine | configure | seconds | engine report |")
        print("|---|---|---|---|")
        for engine, case, sec, report in configure_seconds(config, device):
            print(f"| {engine} | {case} | {sec:.1f} | {report} |")


if __name__ == "__main__":
    main()
