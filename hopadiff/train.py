"""hopadiff-train: train HopaDIFF from a YAML config (defaults = the paper's seed values).

  hopadiff-train --config config/hopadiff/rhas133_blip2.yaml train.batch_size=16 data.root=...
  hopadiff-train --config ... --resume            # continue from {out_dir}/last.pt exactly
  torchrun --nproc_per_node 4 -m hopadiff.train --config ...   # DistributedDataParallel

Writes {out_dir}/last.pt (atomically, every train.checkpoint_every epochs), best.pt (best
VALIDATION score; the test split is never looked at), config.yaml and TensorBoard logs in
{out_dir}/tb. A NaN/inf loss stops the run with an error; the last good checkpoint stays.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from .config import Config, ConfigError, load_config, read_label_names, save_config
from .data import DataError, WindowSampler, load_split, whole_sample
from .evaluate import evaluate_samples
from .model import HopaDIFF
from .runtime import PRECISIONS, autocast, resolve_device

log = logging.getLogger("hopadiff.train")


class TrainingError(RuntimeError):
    """Training cannot continue (non-finite loss, inconsistent data/config)."""


def score_of(scores: dict) -> float:
    """One number to select the best checkpoint: mean of accuracy, Edit and the three F1s."""
    return float(np.mean([scores["acc"], scores["edit"], scores["f1@10"], scores["f1@25"], scores["f1@50"]]))


class Trainer:
    def __init__(self, cfg: Config, resume: Path | None = None):
        self.cfg = cfg
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            use_cuda = cfg.train.device != "cpu" and torch.cuda.is_available()
            if use_cuda:
                torch.cuda.set_device(local)
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
            self.device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
        else:
            self.rank, self.world = 0, 1
            self.device = resolve_device(cfg.train.device)
        if cfg.train.sampling not in ("windows", "videos") or cfg.train.grad_accumulation < 1:
            raise ConfigError(
                f"train.sampling must be windows or videos (got {cfg.train.sampling!r}) and "
                f"train.grad_accumulation >= 1 (got {cfg.train.grad_accumulation})"
            )
        if cfg.train.precision not in PRECISIONS:
            raise ConfigError(f"train.precision {cfg.train.precision!r} unknown; allowed: {', '.join(PRECISIONS)}")
        self.out = Path(cfg.train.out_dir)
        self.main_process = self.rank == 0

        d = cfg.data
        self.train_samples, meta = load_split(d.root, d.train_split)
        self.labels = meta["labels"]
        if d.labels_file and read_label_names(d.labels_file) != self.labels:
            raise DataError(f"{d.root}/{d.train_split}.json labels differ from data.labels_file {d.labels_file}")
        if len(self.labels) != cfg.model.num_classes or meta["multi_label"] != cfg.model.multi_label:
            raise ConfigError(
                f"data has {len(self.labels)} classes (multi_label={meta['multi_label']}), config model has "
                f"{cfg.model.num_classes} (multi_label={cfg.model.multi_label})"
            )
        if cfg.data.holistic_text != meta["holistic_text"] and self.main_process:
            log.info("data.holistic_text = %s (from %s/%s.json)", meta["holistic_text"], d.root, d.train_split)
        cfg.data.holistic_text = meta["holistic_text"]  # stored in the checkpoint for the node
        cfg.data.backbone = meta["backbone"] or cfg.data.backbone
        D = self.train_samples[0].holistic.shape[1]
        if cfg.model.feature_dim != D:
            raise ConfigError(f"features are {D}-dim, model.feature_dim is {cfg.model.feature_dim}")
        val_path = Path(d.root) / f"{d.val_split}.json"
        self.val_samples = load_split(d.root, d.val_split)[0] if val_path.exists() else []
        if not self.val_samples and self.main_process:
            log.warning("no validation split %s: best.pt will not be written", val_path)

        torch.manual_seed(cfg.train.seed)  # same initial weights on every rank
        self.model = HopaDIFF(cfg.model).to(self.device)
        self.ddp = DistributedDataParallel(self.model) if self.distributed else None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        warmup = max(cfg.train.warmup_steps, 0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and cfg.train.precision == "fp16")
        self.sampler = WindowSampler(self.train_samples, d.window, tuple(d.speed_augment), cfg.model.multi_label)
        self.data_gen = torch.Generator().manual_seed(cfg.train.seed * 1000 + self.rank)
        self.noise_gen = torch.Generator(self.device).manual_seed(cfg.train.seed * 1000 + 500 + self.rank)
        torch.manual_seed(cfg.train.seed * 1000 + 7 + self.rank)  # dropout stream, per rank
        self.epoch, self.step, self.best = 0, 0, -math.inf
        if resume is not None:
            self._resume(resume)

    # ------------------------------------------------------------------ state
    def _rng_state(self) -> dict:
        state = {"torch": torch.get_rng_state(), "data": self.data_gen.get_state(), "noise": self.noise_gen.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _save(self, name: str, **extra) -> Path:
        path = self.out / name
        save_checkpoint(
            path, self.model, self.cfg, self.labels,
            optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(), epoch=self.epoch, step=self.step, best=self.best,
            rng=self._rng_state(), world_size=self.world, **extra,
        )  # fmt: skip
        return path

    def _resume(self, path: Path) -> None:
        ckpt = read_checkpoint(path, map_location="cpu")
        extra = ckpt.get("extra", {})
        if "optimizer" not in extra:
            raise CheckpointError(f"{path} holds weights only (no optimizer/RNG state); it cannot be resumed")
        if extra.get("world_size", 1) != self.world:
            log.warning(
                "%s was written with %d processes, resuming with %d: the data order will differ",
                path,
                extra.get("world_size", 1),
                self.world,
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        self.scaler.load_state_dict(extra["scaler"])
        self.epoch, self.step, self.best = extra["epoch"], extra["step"], extra["best"]
        rng = extra["rng"]
        torch.set_rng_state(rng["torch"])
        self.data_gen.set_state(rng["data"])
        if rng["noise"].numel() == self.noise_gen.get_state().numel():
            self.noise_gen.set_state(rng["noise"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        if self.main_process:
            log.info("resumed from %s at epoch %d (step %d)", path, self.epoch, self.step)

    # ------------------------------------------------------------------ loop
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch; each takes ``grad_accumulation`` forward passes."""
        tc = self.cfg.train
        if tc.sampling == "videos":
            return max(1, math.ceil(self.videos_per_rank() / tc.grad_accumulation))
        windows = tc.windows_per_epoch or len(self.train_samples)
        return max(1, math.ceil(windows / (tc.batch_size * self.world * tc.grad_accumulation)))

    def videos_per_rank(self) -> int:
        return max(1, len(self.train_samples) // self.world)  # equal on every rank (DDP steps together)

    def micro_batches(self):
        """The epoch's forward passes: random windows (``sampling: windows``), or every training
        sample whole, once, in a random order shared by the ranks (``videos``, DiffAct)."""
        tc = self.cfg.train
        if tc.sampling == "videos":
            order = torch.randperm(len(self.train_samples), generator=self.data_gen).tolist()
            mine = (order * self.world)[self.rank :: self.world][: self.videos_per_rank()]
            for i in mine:
                yield whole_sample(self.train_samples[i], self.cfg.model.multi_label)
            return
        for _ in range(self.steps_per_epoch() * tc.grad_accumulation):
            yield self.sampler.batch(tc.batch_size, self.data_gen)

    def train_epoch(self, writer) -> dict:
        tc = self.cfg.train
        self.model.train()
        net = self.ddp or self.model
        totals, n, t0 = {}, 0, time.perf_counter()
        bar = tqdm(
            range(self.steps_per_epoch()),
            desc=f"epoch {self.epoch + 1}/{tc.epochs}",
            disable=not self.main_process,
            leave=False,
            dynamic_ncols=True,
            mininterval=1.0,
        )
        accumulate = tc.grad_accumulation
        batches = self.micro_batches()
        for _ in bar:
            self.optimizer.zero_grad(set_to_none=True)
            step_losses = {}
            for batch in itertools.islice(batches, accumulate):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                with autocast(self.device, tc.precision):
                    losses = net(batch["holistic"], batch["partial"], batch["labels"], batch["visible"], self.noise_gen)
                loss = losses["total"]
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.step}; stopping. The last good "
                        f"checkpoint ({self.out / 'last.pt'}) is untouched. Lower train.lr or check the data."
                    )
                self.scaler.scale(loss / accumulate).backward()
                for k, v in losses.items():
                    step_losses[k] = step_losses.get(k, 0.0) + v.item() / accumulate
            if tc.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step += 1
            n += 1
            for k, v in step_losses.items():
                totals[k] = totals.get(k, 0.0) + v
            bar.set_postfix(loss=f"{step_losses['total']:.4f}")
        seconds = time.perf_counter() - t0
        means = {k: v / n for k, v in totals.items()}
        per_pass = 1 if tc.sampling == "videos" else tc.batch_size
        means["windows_per_s"] = n * accumulate * per_pass * self.world / seconds
        if writer is not None:
            for k, v in means.items():
                writer.add_scalar(f"train/{k}", v, self.epoch + 1)
            writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.epoch + 1)
        return means

    def validate(self, writer) -> dict:
        d = self.cfg.data
        window = d.window if d.eval_window is None else d.eval_window
        scores, _, _ = evaluate_samples(
            self.model, self.val_samples, window, d.hop, self.cfg.model.multi_label, desc="validation"
        )
        if writer is not None:
            for k, v in scores.items():
                writer.add_scalar(f"val/{k}", v, self.epoch)
        return scores

    def fit(self) -> dict:
        tc = self.cfg.train
        writer = None
        if self.main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.out / "config.yaml")
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out / "tb"))
        history = {}
        try:
            while self.epoch < tc.epochs:
                history = self.train_epoch(writer)
                self.epoch += 1
                msg = f"epoch {self.epoch}/{tc.epochs} loss {history['total']:.4f}"
                msg += f" ({history['windows_per_s']:.1f} windows/s)"
                if self.val_samples and (self.epoch % tc.eval_every == 0 or self.epoch == tc.epochs):
                    if self.main_process:
                        scores = self.validate(writer)
                        history.update({f"val_{k}": v for k, v in scores.items()})
                        msg += " | val " + " ".join(f"{k} {v:.1f}" for k, v in scores.items())
                        if score_of(scores) > self.best:
                            self.best = score_of(scores)
                            self._save("best.pt", val_scores=scores)
                            msg += " *best*"
                    if self.distributed:
                        dist.barrier()
                if self.main_process and (self.epoch % tc.checkpoint_every == 0 or self.epoch == tc.epochs):
                    self._save("last.pt")
                if self.main_process:
                    tqdm.write(msg)
        finally:
            if writer is not None:
                writer.close()
            if self.distributed:
                dist.destroy_process_group()
        return history


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hopadiff-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. train.lr=3e-4")
    ap.add_argument("--resume", action="store_true", help="continue exactly from {train.out_dir}/last.pt")
    ap.add_argument(
        "--resume-from", type=Path, default=None, metavar="CHECKPOINT", help="continue from this checkpoint"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
        resume = args.resume_from or (Path(cfg.train.out_dir) / "last.pt" if args.resume else None)
        trainer = Trainer(cfg, resume)
        trainer.fit()
    except (ConfigError, DataError, CheckpointError, TrainingError) as e:
        print(f"hopadiff-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hopadiff-train: interrupted; the last checkpoint written is intact", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
