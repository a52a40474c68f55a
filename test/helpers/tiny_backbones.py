"""Tiny random BLIP-2 (ITM/ITC) and CLIP models built from configs and saved to a folder,
so the real ``from_pretrained`` loading path runs without any download."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import Blip2Config, Blip2ForImageTextRetrieval, CLIPConfig, CLIPModel, PreTrainedTokenizerFast

WORDS = [
    "the",
    "person",
    "man",
    "woman",
    "in",
    "a",
    "an",
    "with",
    "shirt",
    "jacket",
    "tall",
    "short",
    "small",
    "big",
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "orange",
    "purple",
    "elderly",
    "young",
    "left",
    "right",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
VISION = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
}


def _tokenizer(path: Path) -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(SPECIAL + WORDS)}
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


def make_tiny_clip(path: Path) -> Path:
    tok = _tokenizer(path)
    text = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 32,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.cls_token_id,
        "eos_token_id": tok.sep_token_id,
    }
    CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=24)).save_pretrained(path)
    return path


def make_tiny_blip2(path: Path) -> Path:
    tok = _tokenizer(path)
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
    }  # as in blip2-itm-vit-g
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
        vision_config=VISION, qformer_config=qformer, text_config=text, num_query_tokens=8, image_text_hidden_size=16
    )
    Blip2ForImageTextRetrieval(cfg).save_pretrained(path)
    return path
