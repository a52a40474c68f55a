"""Vision-language backbones loaded with transformers ``from_pretrained`` (hub name or folder).

A backbone turns RGB images (full frames or person crops) into
  - features for HopaDIFF: (N, D) — BLIP-2: the Q-Former's 32 query outputs averaged
    (D = 768, as in the RHAS133 release); CLIP: the projected image embedding (D = 512 for
    ViT-B/32);
  - embeddings in the joint image-text space, to ground a referring text to a person:
    BLIP-2 ITC (query-wise, max over the 32 queries), CLIP cosine similarity.
Preprocessing (resize to the vision tower's input size, normalise with the checkpoint's
mean/std) is done in torch on the model's device, batched, without PIL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..runtime import resolve_device, resolve_dtype

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP / BLIP-2 preprocessing constants
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PAPER_MODELS = {"blip2": "Salesforce/blip2-itm-vit-g", "clip": "openai/clip-vit-base-patch32"}


@dataclass
class ImageEncoding:
    features: torch.Tensor  # (N, D) float32: HopaDIFF input features
    joint: torch.Tensor  # (N, E) or (N, Q, E), L2-normalised: image side of image-text similarity
    first_conditioned: torch.Tensor | None = None  # (D,): the first image's features conditioned on a text


def preprocess(images: list[np.ndarray], size: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """RGB uint8 images -> (N, 3, size, size) float32, normalised, on mean's device."""
    batch = []
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"image {i}: expected a non-empty RGB (H, W, 3) array, got shape {img.shape}")
        shrink = min(img.shape[:2]) > size
        batch.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC))
    x = torch.from_numpy(np.stack(batch)).to(mean.device).permute(0, 3, 1, 2).float() / 255.0
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


class Backbone:
    """Base class; subclasses wrap one transformers model and its tokenizer.

    ``encode_images(images, text=None)``: with a ``text``, backbones that can
    (``conditions_on_text``) compute text-conditioned image features: the holistic features
    of a referred person."""

    kind = ""
    conditions_on_text = False

    def __init__(
        self,
        model,
        tokenizer,
        device: torch.device,
        dtype: torch.dtype,
        image_size: int,
        mean,
        std,
        max_text_tokens: int,
    ):
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.device, self.dtype, self.image_size = device, dtype, image_size
        self.mean = torch.tensor(mean, device=device)
        self.std = torch.tensor(std, device=device)
        self.max_text_tokens = max_text_tokens

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    def pixel_values(self, images: list[np.ndarray]) -> torch.Tensor:
        """RGB uint8 (H, W, 3) images of any size -> (N, 3, S, S) normalised tensor on the device."""
        return preprocess(images, self.image_size, self.mean, self.std).to(self.dtype)

    def tokens(self, texts: list[str]) -> dict:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
        )
        return {k: v.to(self.device) for k, v in enc.items()}

    def encode_images(
        self, images: list[np.ndarray], text: str | None = None, condition_first: str | None = None
    ) -> ImageEncoding:
        """Features of every image (conditioned on ``text`` when given); ``condition_first``: also
        the first image's features conditioned on that text (``first_conditioned``), from the same
        vision pass — the node's frame-and-crops batch plus the referred person's holistic feature."""
        raise NotImplementedError

    def _refuse_text(self, text: str | None) -> None:
        if text is not None and not self.conditions_on_text:
            raise ValueError(f"the {self.kind} backbone cannot condition image features on a text")

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def similarity(joint: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(N, E) or (N, Q, E) image embeddings, (E,) text embedding -> (N,) cosine in [-1, 1]."""
        sim = joint.float() @ text.float()
        return sim.amax(dim=-1) if sim.ndim == 2 else sim


class ClipBackbone(Backbone):
    kind = "clip"

    @property
    def feature_dim(self) -> int:
        return self.model.config.projection_dim

    @torch.inference_mode()
    def encode_images(self, images, text=None, condition_first=None):
        self._refuse_text(text or condition_first)  # CLIP's towers meet only in the final dot product
        out = self.model.get_image_features(pixel_values=self.pixel_values(images))
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        emb = emb.float()
        return ImageEncoding(features=emb, joint=F.normalize(emb, dim=-1))

    @torch.inference_mode()
    def encode_texts(self, texts):
        out = self.model.get_text_features(**self.tokens(texts))
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        return F.normalize(emb.float(), dim=-1)


class Blip2Backbone(Backbone):
    """BLIP-2 image-text retrieval model. Image features: the mean of the 32 Q-Former query
    outputs (D = 768). With a text, the queries run through the Q-Former together with the
    text tokens, as in BLIP-2's image-text-matching (ITM) head: queries and text attend to each
    other, so the query outputs describe the frame as seen for that text (the referred person)."""

    kind = "blip2"
    conditions_on_text = True

    @property
    def feature_dim(self) -> int:
        return self.model.config.qformer_config.hidden_size

    @torch.inference_mode()
    def encode_images(self, images, text=None, condition_first=None):
        m = self.model
        image_embeds = m.vision_model(pixel_values=self.pixel_values(images)).last_hidden_state
        mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
        N = image_embeds.shape[0]
        queries = m.query_tokens.expand(N, -1, -1)
        q = m.qformer(query_embeds=queries, encoder_hidden_states=image_embeds, encoder_attention_mask=mask)
        q = q.last_hidden_state  # (N, 32, 768)
        joint = F.normalize(m.vision_projection(q).float(), dim=-1)  # (N, 32, E)
        features = q if text is None else self._conditioned(image_embeds, mask, text)
        first = None
        if condition_first is not None:  # the vision tower (most of the cost) is not run again
            first = self._conditioned(image_embeds[:1], mask[:1], condition_first).float().mean(dim=1)[0]
        return ImageEncoding(features=features.float().mean(dim=1), joint=joint, first_conditioned=first)

    def _conditioned(self, image_embeds, mask, text: str) -> torch.Tensor:
        """The query outputs with ``text`` in the Q-Former (BLIP-2's ITM path): (N, 32, 768)."""
        m = self.model
        N = image_embeds.shape[0]
        queries = m.query_tokens.expand(N, -1, -1)
        tok = self.tokens([text])
        Q = queries.shape[1]
        attention = torch.cat(
            [torch.ones(N, Q, dtype=torch.long, device=self.device), tok["attention_mask"].expand(N, -1)], dim=1
        )
        embeds = m.embeddings(input_ids=tok["input_ids"].expand(N, -1), query_embeds=queries)
        out = m.qformer(
            query_embeds=embeds,
            query_length=Q,
            attention_mask=attention,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=mask,
        )
        return out.last_hidden_state[:, :Q]

    @torch.inference_mode()
    def encode_texts(self, texts):
        m = self.model
        tok = self.tokens(texts)
        out = m.qformer(
            query_embeds=m.embeddings(input_ids=tok["input_ids"]), query_length=0, attention_mask=tok["attention_mask"]
        )
        return F.normalize(m.text_projection(out.last_hidden_state[:, 0, :]).float(), dim=-1)


def _preprocessor_stats(name_or_path: str, local_files_only: bool):
    """mean/std from the checkpoint's preprocessor_config.json when it has one."""
    from transformers.utils import cached_file

    path = cached_file(
        name_or_path,
        "preprocessor_config.json",
        local_files_only=local_files_only,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    if not path:
        return CLIP_MEAN, CLIP_STD
    cfg = json.loads(open(path).read())  # noqa: SIM115 - tiny file
    return tuple(cfg.get("image_mean", CLIP_MEAN)), tuple(cfg.get("image_std", CLIP_STD))


BACKBONES = ("blip2", "clip")


def _probe_hub(kind: str, name: str, local_files_only: bool) -> None:
    """One lookup of the model's config.json (hub or cache) before transformers' own: offline and
    not cached, transformers looked it up twice with five retries each (48 s, every warning
    printed twice); this fails after one round, naming what to do."""
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(name, "config.json", local_files_only=local_files_only)
    except Exception as e:  # connection, not-found and offline errors of huggingface_hub
        where = "the hub was not asked (local_files_only)" if local_files_only else "the hub could not be reached"
        raise ValueError(
            f"cannot load {kind} backbone {name!r}: it is not a local folder, not in the hub cache, and {where} "
            f"({type(e).__name__}); download it once with access (or save_pretrained it to a folder) and set "
            "backbone_model to the folder"
        ) from e


def load_backbone(
    kind: str,
    name_or_path: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    local_files_only: bool = False,
) -> Backbone:
    """Load a backbone with ``from_pretrained`` (hub name or local folder; default: the paper's)."""
    from transformers import AutoTokenizer  # the model classes below: only the one used is imported (seconds)

    if kind not in BACKBONES:
        raise ValueError(f"unknown backbone {kind!r}; allowed: {', '.join(BACKBONES)}")
    name = name_or_path or PAPER_MODELS[kind]
    dev = resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    if not Path(name).is_dir():
        _probe_hub(kind, name, local_files_only)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
        if kind == "clip":
            from transformers import CLIPModel

            model = CLIPModel.from_pretrained(name, local_files_only=local_files_only)
            size, max_tokens, cls = (
                model.config.vision_config.image_size,
                model.config.text_config.max_position_embeddings,
                ClipBackbone,
            )
        else:
            from transformers import Blip2ForImageTextRetrieval

            model = Blip2ForImageTextRetrieval.from_pretrained(name, local_files_only=local_files_only)
            size, max_tokens, cls = (
                model.config.vision_config.image_size,
                model.config.qformer_config.max_position_embeddings,
                Blip2Backbone,
            )
    except OSError as e:
        raise ValueError(f"cannot load {kind} backbone from {name!r}: {e}") from e
    mean, std = _preprocessor_stats(name, local_files_only)
    return cls(model, tokenizer, dev, dtype, size, mean, std, max_tokens)
