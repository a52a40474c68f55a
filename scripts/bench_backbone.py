"""What the paper's backbones cost per sampled frame, without downloading weights (not a test).

  .venv/bin/python scripts/bench_backbone.py [--threads 2] [--device cpu|cuda] [--dtype fp32|bf16|fp16]
                                             [--crops 0 1 3 8] [--repeats 3] [--only blip2|clip]

BLIP-2 image-text retrieval (Salesforce/blip2-itm-vit-g: EVA ViT-g/14, 39 layers, width 1408;
Q-Former, 32 queries) and CLIP ViT-B/32 (openai/clip-vit-base-patch32) are built from their
published configurations with random weights: the cost of a forward pass does not depend on the
values. They are wrapped in the node's own Backbone classes and timed on what the node encodes
per sampled frame: the full frame plus N person crops in one batch, and for BLIP-2 checkpoints
trained on text-conditioned holistic features, also the frame's query-conditioned Q-Former pass
(the vision tower's output is reused). Prints a
Markdown table: milliseconds per sampled frame (median of --repeats after one warm-up), the
sample_fps the backbone alone sustains, parameters and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def build(kind: str, device: str, dtype: torch.dtype):
    from transformers import Blip2Config, Blip2ForImageTextRetrieval, CLIPConfig, CLIPModel

    from hopadiff.features.backbone import CLIP_MEAN, CLIP_STD, Blip2Backbone, ClipBackbone
    from hopadiff.features.tiny import make_tokenizer

    tok = make_tokenizer(Path(tempfile.mkdtemp(prefix="bench_tok_")))
    if kind == "blip2":
        # Blip2Config's defaults are the published ViT-g/14 vision tower and BERT-base Q-Former; the
        # retrieval model needs the Q-Former's text input (as blip2-itm-vit-g's config.json sets).
        cfg = Blip2Config(qformer_config={"use_qformer_text_input": True}, num_query_tokens=32,
                          image_text_hidden_size=256)  # fmt: skip
        model = Blip2ForImageTextRetrieval(cfg)
        backbone = Blip2Backbone(model, tok, torch.device(device), dtype, 224, CLIP_MEAN, CLIP_STD, 32)
    else:
        model = CLIPModel(CLIPConfig())  # defaults: ViT-B/32, 224 px, 512-d projection
        backbone = ClipBackbone(model, tok, torch.device(device), dtype, 224, CLIP_MEAN, CLIP_STD, 77)
    params = sum(p.numel() for p in model.parameters())
    return backbone, params


def time_call(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--crops", type=int, nargs="+", default=[0, 1, 3, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["blip2", "clip"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    crop = rng.integers(0, 255, (300, 120, 3), dtype=np.uint8)
    where = f"{args.device} {args.dtype}" + (f", {args.threads} threads" if args.device == "cpu" else "")
    print(f"# backbone cost per sampled frame ({where}, 640x480 frame, 120x300 crops, median of {args.repeats})")
    print()
    columns = ["backbone", "params", "persons (crops)", "ms per sampled frame", "sustains sample_fps",
               "the same with the query-conditioned frame (BLIP-2 holistic_text)"]  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    for kind in [args.only] if args.only else ["clip", "blip2"]:
        t0 = time.perf_counter()
        backbone, params = build(kind, args.device, dtype)
        built = time.perf_counter() - t0
        for n in args.crops:
            images = [frame] + [crop] * n
            ms = time_call(lambda b=backbone, x=images: b.encode_images(x), args.repeats, args.device)
            extra = ""
            if kind == "blip2":
                ms_text = time_call(
                    lambda b=backbone, x=images: b.encode_images(x, condition_first="the man in the red shirt"),
                    args.repeats, args.device,
                )  # fmt: skip
                extra = f"{ms_text:.0f} ms ({1000 / ms_text:.2f} fps)"
            print(f"| {kind} | {params / 1e6:.0f} M | {n} | {ms:.0f} | {1000 / ms:.2f} | {extra or '-'} |", flush=True)
        print(f"<!-- {kind}: built in {built:.0f} s -->")
        backbone = None  # free it before the next one is built
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mem = f"peak process memory {rss:.0f} MiB"
    if args.device.startswith("cuda"):
        mem += f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
    print(f"\n{mem}")


if __name__ == "__main__":
    main()
