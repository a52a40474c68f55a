"""Contrastive fine-tuning of a small CLIP (hopadiff.features.tiny) on person crops paired with
texts from an extract manifest, so its embeddings know the data's shirt colours, sizes and poses.

The offline demo and the grounding test build a tiny CLIP from a config (no weights can be
downloaded there) and fine-tune it for a minute with this: pairs like ("crop of person 2 at frame
t", "the tall person in the red shirt is waving"); identical texts in a batch are all positives.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def _pairs(manifest: Path, every: int = 3):
    from hopadiff.frames import crop, read_frames

    doc = json.loads(manifest.read_text())
    labels = doc["labels"]
    crops, texts = [], []
    for video in doc["videos"]:
        frames = read_frames(manifest.parent / video["video"])
        for p in video["persons"]:
            for t in range(0, len(frames), every):
                c = crop(frames[t], p["boxes"][t])
                if c is not None:
                    crops.append(c)
                    texts.append(f"{p['text']} is {labels[p['labels'][t][0]]}")
    return crops, texts


def finetune_clip(model_dir: Path, manifest: Path, steps: int = 400, batch: int = 48, seed: int = 0) -> None:
    """Contrastive fine-tuning of the small CLIP in ``model_dir`` (in place)."""
    from transformers import AutoTokenizer, CLIPModel

    from hopadiff.features.backbone import CLIP_MEAN, CLIP_STD, preprocess

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = CLIPModel.from_pretrained(model_dir, local_files_only=True).train()
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    crops, texts = _pairs(manifest)
    size = model.config.vision_config.image_size
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    pixels = preprocess(crops, size, mean, std)  # all crops once (small)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    for step in range(steps):
        idx = rng.sample(range(len(texts)), min(batch, len(texts)))
        batch_texts = [texts[i] for i in idx]
        enc = tok(batch_texts, padding=True, return_tensors="pt")
        img = F.normalize(model.get_image_features(pixel_values=pixels[idx]).pooler_output, dim=-1)
        txt = F.normalize(model.get_text_features(**enc).pooler_output, dim=-1)
        logits = img @ txt.T * model.logit_scale.exp()
        same = torch.tensor([[a == b for b in batch_texts] for a in batch_texts], dtype=torch.float)
        target = same / same.sum(1, keepdim=True)  # identical texts are all positives
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log.info("backbone fine-tuning step %d/%d: contrastive loss %.3f", step + 1, steps, loss.item())
    model.eval().save_pretrained(model_dir)
