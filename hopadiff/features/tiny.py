"""Small random CLIP / BLIP-2 checkpoints written to a folder, for tests and the offline demo.

No weights can be downloaded on the development machines, so tests build these from configs,
save them, and load them back through the real ``from_pretrained`` path (load_backbone).
The tokenizer is a word-level one over a small vocabulary; unknown words map to [UNK].
"""

from __future__ import annotations

from pathlib import Path

from ..synth.vocab import COLORS, VIDEO_ACTIONS

# The words of the synthetic data's texts ("the tall person in the red shirt is waving"):
# colours and actions come from the generators, so a new colour or action is never [UNK].
WORDS = [
    *["the", "person", "man", "woman", "in", "a", "an", "with", "shirt", "jacket", "tall", "short", "small", "big"],
    *COLORS,
    *["elderly", "young", "left", "right", "is"],
    *VIDEO_ACTIONS,
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def make_tokenizer(path: Path, words=WORDS):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL + list(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        bos_token="[CLS]",
        eos_token="[SEP]",
    )
    fast.save_pretrained(path)
    return fast


def make_tiny_clip(
    path: Path,
    hidden: int = 32,
    image_size: int = 32,
    patch: int = 8,
    projection: int = 24,
    layers: int = 2,
    seed: int = 0,
):
    """Write a random CLIPModel + tokenizer to ``path``; returns (model, tokenizer)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tok = make_tokenizer(path)
    text = {
        "vocab_size": len(tok),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "max_position_embeddings": 32,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.cls_token_id,
        "eos_token_id": tok.sep_token_id,
    }
    vision = {
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "image_size": image_size,
        "patch_size": patch,
    }
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection))
    model.save_pretrained(path)
    return model, tok


def make_tiny_blip2(path: Path, seed: int = 0):
    """Write a random Blip2ForImageTextRetrieval (ITM/ITC, as blip2-itm-vit-g) + tokenizer to ``path``."""
    import torch
    from transformers import Blip2Config, Blip2ForImageTextRetrieval

    torch.manual_seed(seed)
    tok = make_tokenizer(path)
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
    }
    qformer = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "encoder_hidden_size": 32,
        "max_position_embeddings": 32,
        "pad_token_id": tok.pad_token_id,
        "use_qformer_text_input": True,
    }
    text = {
        "model_type": "opt",
        "vocab_size": 50,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "ffn_dim": 16,
        "num_attention_heads": 2,
        "word_embed_proj_dim": 16,
    }
    cfg = Blip2Config(
        vision_config=vision, qformer_config=qformer, text_config=text, num_query_tokens=8, image_text_hidden_size=16
    )
    model = Blip2ForImageTextRetrieval(cfg)
    model.save_pretrained(path)
    return model, tok


def main(argv: list[str] | None = None) -> int:
    """python -m hopadiff.features.tiny {clip,blip2} FOLDER: a tiny random model to try the tools
    offline (its features are noise until fine-tuned; real runs use the paper's models)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hopadiff.features.tiny", description=main.__doc__)
    ap.add_argument("kind", choices=["clip", "blip2"])
    ap.add_argument("folder", type=Path)
    args = ap.parse_args(argv)
    (make_tiny_clip if args.kind == "clip" else make_tiny_blip2)(args.folder)
    print(f"wrote a tiny random {args.kind} model to {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
