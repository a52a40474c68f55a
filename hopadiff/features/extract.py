"""hopadiff-extract: videos + per-frame person boxes + referring texts -> feature files.

Input: an extract manifest (JSON, written by ``hopadiff-synth --video`` or by you):
  {"format": "hopadiff-extract-manifest", "version": 1, "labels": [class names],
   "videos": [{"name": str, "video": "clip.mp4", "persons": [{"person_id": int, "text": str,
     "boxes": [[x, y, w, h] | null per frame], "labels": [[class ids] per frame]}]}]}
A video may be a ROS 2 bag instead ("bag", "image_topic", "fps", "stamps": the sampled frames),
or the input a bag labels file (format "rhas-bag-labels", hopadiff.features.bag_labels): robot
recordings + what the referred person did when -> a manifest as above (written next to the
features), then extracted.
Output (in --out), the RHAS133 release layout plus a manifest that training reads:
  RHAS_feature_blipv2[_val|_test]/{i}_blip_feat.npy      holistic (T, D), full frames; with BLIP-2 by
                                                         default conditioned on the person's text (--holistic-text)
  RHAS_feature_blipv2_{split}_grounding_dino/{i}_..npy   partial (T, D), person crops (zeros where unseen)
  (CLIP: RHAS_feature_clip_{split}[...]/{i}_clip_feat.npy), and {split}.json, labels/, visible/.
Features are the pooled (T, D) form, which the loaders accept like the release's (T, 32, D).
Each file is written atomically; finished samples are skipped on a rerun (resumable).

Under torchrun (``torchrun --nproc_per_node N -m hopadiff.features.extract ...``, or several
machines with torchrun's rendezvous options) the samples are split across the processes (each
on its own GPU when there are GPUs): each writes its own sample files, and the split manifest is
written once every process has finished. The files equal a one-process run's; a rerun after a
crash redoes only the samples not finished.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..bags import read_bag_frames
from ..data import EXTRACT_FORMAT, RELEASE_DIRS, DataError, frame_lists_to_multihot, write_manifest
from ..frames import crop, read_frames
from .backbone import BACKBONES, load_backbone
from .bag_labels import LABELS_FORMAT, to_extract_manifest

log = logging.getLogger("hopadiff.extract")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def encode_batched(backbone, images: list[np.ndarray], batch: int, text: str | None = None, bar=None) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        out.append(backbone.encode_images(images[i : i + batch], text).features.cpu().numpy())
        if bar is not None:
            bar.update(len(images[i : i + batch]))
    return np.concatenate(out).astype(np.float32)


def _source(manifest: Path, video: dict, person: dict) -> str:
    """What a sample was extracted from: the video file (or bag) and the person in it."""
    return f"{(Path(manifest).parent / (video.get('video') or video['bag'])).resolve()}#person{person['person_id']}"


def _frames(manifest: Path, video: dict) -> list[np.ndarray]:
    """A video's frames: a video file, or a bag's sampled camera frames (checked against the stamps
    the manifest's boxes and labels were made for)."""
    if "bag" not in video:
        return read_frames(Path(manifest).parent / video["video"])
    bag = Path(manifest).parent / video["bag"]
    stamps, frames = read_bag_frames(bag, video.get("image_topic"), float(video.get("fps", 0.0)))
    if "stamps" in video and stamps != video["stamps"]:
        raise DataError(
            f"{manifest}: {video['name']}: the frames of {bag} are not those the boxes were made for "
            f"({len(stamps)} sampled, {len(video['stamps'])} expected): rebuild it from the labels file"
        )
    return frames


class Ranks:
    """This process's share of the work under torchrun (one process: everything)."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @classmethod
    def from_env(cls) -> Ranks:
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        dist.init_process_group(backend="gloo")  # a barrier and two sums: gloo, whatever the devices
        return cls(dist.get_rank(), dist.get_world_size())

    def mine(self, unit: int) -> bool:
        return unit % self.world == self.rank

    def total(self, *counts: int) -> list[int]:
        """Sums over all processes, once every process got here (a barrier)."""
        if self.world == 1:
            return list(counts)
        import torch
        import torch.distributed as dist

        t = torch.tensor(counts, dtype=torch.int64)
        dist.all_reduce(t)
        return t.tolist()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _previous_sources(split_manifest: Path) -> dict[int, str]:
    """Sample index -> source from an earlier extraction's split manifest (empty when none)."""
    if not split_manifest.exists():
        return {}
    try:
        samples = json.loads(split_manifest.read_text()).get("samples", [])
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read the earlier extraction's manifest {split_manifest}: {e}") from e
    return {i: s.get("source", "") for i, s in enumerate(samples)}


def extract(
    manifest: Path,
    out: Path,
    backbone,
    split: str = "train",
    batch: int = 32,
    holistic_text: bool | None = None,
    ranks: Ranks | None = None,
) -> dict:
    """Extract one split. ``holistic_text`` (default: whenever the backbone can, i.e. BLIP-2):
    holistic features are computed per referred person with their referring text. ``ranks``: this
    process's share under torchrun (a sample each in turn; whole videos when the persons of a
    video share its holistic features)."""
    ranks = ranks or Ranks()
    holistic_text = backbone.conditions_on_text if holistic_text is None else holistic_text
    if holistic_text and not backbone.conditions_on_text:
        raise ValueError(f"holistic_text needs a backbone that conditions on text (blip2), not {backbone.kind}")
    doc = json.loads(Path(manifest).read_text())
    if doc.get("format") != EXTRACT_FORMAT:
        raise DataError(f"{manifest} is not an extract manifest (format != {EXTRACT_FORMAT!r})")
    labels = doc["labels"]
    hol_dirs, par_pattern, suffix = RELEASE_DIRS[backbone.kind]
    hol_dir, par_dir = out / hol_dirs[split], out / par_pattern.format(split=split)
    for d in (hol_dir, par_dir, out / "labels", out / "visible"):
        d.mkdir(parents=True, exist_ok=True)
    # Labels and visibility masks are named per split, so several splits extracted into one
    # folder never share a file; a rerun on a changed extract manifest would mix samples, so the
    # files of a previous run are only reused for the sample they were written for.
    previous = _previous_sources(out / f"{split}.json")
    expected = [_source(manifest, v, p) for v in doc["videos"] for p in v["persons"]]
    for i, source in enumerate(expected):
        if i in previous and previous[i] != source:
            raise DataError(
                f"{out} holds {split} sample {i} = {previous[i]} from an earlier extraction; {manifest} "
                f"now puts {source} there. Extract into a new --out folder (nothing was overwritten)."
            )
    entries, done, skipped = [], 0, 0
    index = 0
    # Progress per encoded image batch (a long movie is one video): frames, crops, text-conditioned frames.
    bar = tqdm(desc=f"{split}: encoding" + (f" (rank {ranks.rank})" if ranks.world > 1 else ""), unit="image",
               dynamic_ncols=True, mininterval=1.0, position=ranks.rank)  # fmt: skip
    for v, video in enumerate(doc["videos"]):
        persons = video["persons"]
        todo = [
            index + k
            for k in range(len(persons))
            if ranks.mine(index + k if holistic_text else v)
            and (not (hol_dir / f"{index + k}{suffix}").exists() or not (par_dir / f"{index + k}{suffix}").exists())
        ]
        frames = _frames(manifest, video) if todo else None
        shared = encode_batched(backbone, frames, batch, bar=bar) if todo and not holistic_text else None
        for k, person in enumerate(persons):
            i = index + k
            name = f"{video['name']}_p{person['person_id']}"
            boxes = person["boxes"]
            if i in todo:
                holistic = encode_batched(backbone, frames, batch, person["text"], bar) if holistic_text else shared
                T = len(frames)
                if len(boxes) < T or len(person["labels"]) < T:
                    raise DataError(
                        f"{manifest}: {name} has {len(boxes)} boxes / {len(person['labels'])} label "
                        f"frames for {T} video frames"
                    )
                crops = [crop(f, b) for f, b in zip(frames, boxes, strict=False)]  # as the node crops
                visible = np.array([c is not None for c in crops])
                partial = np.zeros_like(holistic)
                if visible.any():
                    partial[visible] = encode_batched(backbone, [c for c in crops if c is not None], batch, bar=bar)
                y = frame_lists_to_multihot(person["labels"][:T], len(labels), f"{manifest} {name}")
                atomic_save_npy(out / "labels" / f"{split}_{i}.npy", y.astype(np.uint8))
                atomic_save_npy(out / "visible" / f"{split}_{i}.npy", visible)
                atomic_save_npy(par_dir / f"{i}{suffix}", partial)
                atomic_save_npy(hol_dir / f"{i}{suffix}", holistic)  # written last: marks the sample done
                done += 1
            elif ranks.mine(i if holistic_text else v):
                skipped += 1
            entries.append(
                {
                    "name": name,
                    "holistic": f"{hol_dir.name}/{i}{suffix}",
                    "partial": f"{par_dir.name}/{i}{suffix}",
                    "visible": f"visible/{split}_{i}.npy",
                    "labels": f"labels/{split}_{i}.npy",
                    "text": person["text"],
                    "video": video.get("video") or video["bag"],
                    "person_id": person["person_id"],
                    "source": _source(manifest, video, person),
                }
            )
        index += len(persons)
    bar.close()
    done, skipped = ranks.total(done, skipped)  # every process has finished its samples
    fps = float(doc["videos"][0].get("fps", 0.0))
    if ranks.rank == 0:
        missing = [e["name"] for e in entries if not (out / e["holistic"]).exists()]
        if missing:
            raise DataError(f"{out}: samples {missing[:5]} were not written")
        write_manifest(out / f"{split}.json", entries, labels, True, fps, holistic_text, backbone.kind)
    return {
        "samples": len(entries),
        "extracted": done,
        "skipped": skipped,
        "feature_dim": backbone.feature_dim,
        "holistic_text": holistic_text,
        "manifest": str(out / f"{split}.json"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hopadiff-extract", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("manifest", type=Path, help="extract manifest, or bag labels file (JSON)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", default="train", choices=["train", "val", "test"])
    ap.add_argument("--backbone", default="blip2", choices=BACKBONES)
    ap.add_argument("--model", default=None, help="hub name or local folder (default: the paper's model)")
    ap.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--holistic-text",
        choices=["auto", "on", "off"],
        default="auto",
        help="holistic features conditioned on each person's referring text (auto: on for blip2, off for clip)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ranks = Ranks.from_env()
    try:
        manifest = args.manifest
        if _format(manifest) == LABELS_FORMAT:  # robot recordings: the extract manifest is made first
            made = to_extract_manifest(manifest)
            manifest = args.out / f"extract_{args.split}.json"
            if ranks.rank == 0:
                args.out.mkdir(parents=True, exist_ok=True)
                tmp = manifest.with_name(f".{manifest.name}.tmp")
                tmp.write_text(json.dumps(made))
                os.replace(tmp, manifest)
            ranks.total(0)  # the others wait for it
        device = args.device
        if ranks.world > 1 and device in ("auto", "cuda"):
            import torch

            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
        backbone = load_backbone(args.backbone, args.model, device, args.precision, args.local_files_only)
        conditioned = {"auto": None, "on": True, "off": False}[args.holistic_text]
        summary = extract(manifest, args.out, backbone, args.split, args.batch_size, conditioned, ranks)
    except (DataError, ValueError, OSError) as e:
        print(f"hopadiff-extract: error: {e}", file=sys.stderr)
        return 2
    finally:
        ranks.close()
    if ranks.rank == 0:
        print(json.dumps(summary, indent=1))
    return 0


def _format(path: Path) -> str | None:
    try:
        return json.loads(Path(path).read_text()).get("format")
    except (OSError, json.JSONDecodeError, AttributeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
