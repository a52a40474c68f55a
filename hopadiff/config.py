"""Typed configuration of HopaDIFF: dataclasses whose defaults are the paper's seed values.

Every nn.Module takes one of these. Experiment files are YAML with the same nesting as
:class:`Config`; unknown keys are rejected with their dotted name, so a typo never silently
falls back to a default. ``save_config`` writes a file that ``load_config`` reads back equal.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class EncoderConfig:
    """Per-branch encoder (ASFormer/DiffAct style dilated conv + local attention)."""

    num_layers: int = 10  # DiffAct encoder depth; dilations 1..512 cover 2000-frame videos
    num_f_maps: int = 64  # seed: 64 feature maps
    kernel_size: int = 5  # seed: kernel 5 (also the number of local-attention taps)
    normal_dropout: float = 0.5  # seed: element dropout on the input features
    channel_dropout: float = 0.5  # seed: drops whole feature channels
    temporal_dropout: float = 0.5  # seed: drops whole frames
    # Layers whose outputs condition the decoder (DiffAct's choice); as in DiffAct, -1 adds the
    # input features and -2 the encoder's class probabilities.
    feature_layer_indices: list[int] = field(default_factory=lambda: [5, 7, 9])


@dataclass
class XLSTMConfig:
    """HP-xLSTM: one mLSTM block per branch, input gates exchanged by cross attention."""

    hidden_dim: int = 128  # mLSTM width after the up-projection
    num_heads: int = 4  # memory heads; head dim = hidden_dim / num_heads
    gate_attention_dim: int = 16  # per-head query/key size of the cross-input gate attention
    forget_bias_init: float = 3.0  # forget gate starts open (sigmoid(3) = 0.95), as in xLSTM


@dataclass
class FourierConfig:
    """The Fourier condition.

    ``operator``: "lowpass" (this project): the lowest ``num_coefficients`` coefficients of the
    orthonormal DCT-II, back in time; "dct_add" (the authors' code): the full, unnormalised
    DCT-II (coefficient k added to frame k). With ``model.condition: features+fourier`` the
    low-pass of the xLSTM output is projected to ``condition_dim``; with ``xlstm`` the transform
    of the encoder features is added to them before the xLSTM (dct_add needs ``xlstm``)."""

    num_coefficients: int = 16  # lowpass: lowest K DCT-II coefficients kept per channel
    condition_dim: int = 64  # lowpass: channels of the condition given to the decoder
    operator: str = "lowpass"  # lowpass | dct_add (authors)


@dataclass
class DecoderConfig:
    """Per-branch denoising decoder (DiffAct style)."""

    num_layers: int = 8  # DiffAct decoder depth
    num_f_maps: int = 24  # seed: 24 feature maps
    kernel_size: int = 5  # seed: kernel 5
    time_emb_dim: int = 512  # seed: sinusoidal time embedding 512
    dropout: float = 0.1  # seed: 0.1
    # How the condition (branch features + Fourier condition) enters each layer:
    # "qk" (DiffAct, the paper): attention queries/keys only; "qk+residual": also added to the
    # layer's residual stream (a per-layer projection, computed once per window).
    condition_injection: str = "qk"
    # "per_layer" (this project): sinusoid (/half) -> MLP -> a learned shift per layer;
    # "diffact": DiffAct's sinusoid (/(half-1)) -> MLP -> time_proj(swish(.)) added once before the layers.
    time_embedding: str = "per_layer"


@dataclass
class DiffusionConfig:
    num_train_timesteps: int = 1000  # seed: 1000 steps, cosine schedule
    schedule: str = "cosine"  # cosine | linear
    sampling_steps: int = 25  # seed: 25 DDIM steps
    timestep_spacing: str = "linspace"  # linspace (T-1 .. 0) | diffact (DiffAct's T-1 .. T/S-1)
    eta: float = 0.0  # 0: deterministic (no flicker between windows); DiffAct and the authors use 1.0
    scale: float = 1.0  # actions are diffused in [-scale, scale]
    # Random training conditions (masks over the decoder's condition) and their probabilities.
    # DiffAct's: "full", "zero", "boundary05-"/"boundary03-" (frames whose smoothed boundary
    # target, loss.boundary_smooth, is below 0.5/0.3 kept), "segment=1"/"segment=2" (all frames of
    # one/two ground-truth classes, drawn among those present, blanked). This project's:
    # "boundary" (+-W//32 frames around every change blanked), "spans" (two random spans of
    # W/16..W/4 frames blanked). A type may repeat (the authors list segment=2 twice).
    condition_types: list[str] = field(default_factory=lambda: ["full", "zero", "boundary", "spans"])
    condition_probs: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25, 0.25])
    # What the decoder reads of x_t: "raw" (this project) or "clamp01" (DiffAct: clamped to
    # +-scale and mapped to [0, 1], in training and sampling alike).
    decoder_input: str = "raw"


@dataclass
class LossConfig:
    """DiffAct's loss terms and weights (its configs: CE 0.5 / 0.5, MSE 0.1 / 0.1, boundary 0.1)."""

    encoder_weight: float = 0.5  # DiffAct: encoder classification loss 0.5
    decoder_weight: float = 0.5  # DiffAct: decoder classification loss on x0 0.5
    boundary_weight: float = 0.1  # DiffAct: decoder boundary loss 0.1 (1 - similarity vs smoothed boundaries)
    boundary_smooth: float = 1.0  # DiffAct's boundary_smooth: Gaussian sigma (frames) of the boundary targets
    smooth_weight: float = 0.1  # DiffAct: clamped-MSE smoothing 0.1, on the encoder and the decoder output
    class_weights: list[float] | None = None  # optional per-class weights (long tail); len C


@dataclass
class AblationConfig:
    """Switches for the paper's ablations; the defaults are the full model."""

    use_xlstm: bool = True
    use_cross_gate: bool = True
    use_fourier: bool = True
    branches: str = "both"  # both | holistic | partial
    shared_decoder: bool = False  # the authors' code shares one decoder; the paper has two


@dataclass
class ModelConfig:
    feature_dim: int = 768  # D: BLIP-2 Q-Former width (CLIP: 512)
    num_classes: int = 137  # C: RHAS133
    multi_label: bool = True  # RHAS133 is multi-label: sigmoid/BCE; False: softmax/CE
    # How the two branches' final probabilities are combined: "mean" (paper), "partial" (the
    # target-crop branch only), "confidence" (per frame and class, weighted by each branch's
    # certainty), "learned" (per-class weights trained on the branches' detached outputs).
    fusion: str = "mean"
    # What conditions the decoder: "features+fourier" (this project: the encoder features beside
    # the Fourier condition of the xLSTM output) or "xlstm" (the authors: the xLSTM output alone).
    condition: str = "features+fourier"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    xlstm: XLSTMConfig = field(default_factory=XLSTMConfig)
    fourier: FourierConfig = field(default_factory=FourierConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)


@dataclass
class DataConfig:
    root: str = ""  # folder holding {split}.json manifests (hopadiff-extract / hopadiff-convert output)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    window: int = 256  # W: training crop length = the node's window
    hop: int = 64  # evaluation/node stride between windows
    # Offline evaluation's (validation, hopadiff-eval) window: None = ``window``; 0 = each
    # sequence whole, as DiffAct and the authors evaluate.
    eval_window: int | None = None
    sample_fps: float = 5.0  # frame rate of the features
    speed_augment: list[float] = field(default_factory=lambda: [0.8, 1.25])  # temporal resampling range
    labels_file: str = ""  # class names, one per line (relative to the config file)
    # Set by training from the train manifest: the holistic features were conditioned on the
    # referring text (BLIP-2 ITM path, hopadiff-extract's default); the node then encodes frames
    # with the active query the same way.
    holistic_text: bool = False
    # Set by training from the train manifest (hopadiff-extract records it): the backbone the
    # features came from, so the node refuses another one before loading anything heavy.
    backbone: str = ""


@dataclass
class TrainConfig:
    epochs: int = 1000  # seed value
    batch_size: int = 8  # windows per step
    windows_per_epoch: int = 0  # 0: one random window per training sample per epoch
    # "windows": random crops of data.window frames, batch_size per step; "videos" (DiffAct):
    # every sample whole, one per forward, grad_accumulation of them per optimiser step.
    sampling: str = "windows"
    grad_accumulation: int = 1
    lr: float = 1e-4  # seed: Adam, no weight decay
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    warmup_steps: int = 0
    eval_every: int = 10  # epochs between validations
    checkpoint_every: int = 1  # epochs between last.pt writes
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast on CUDA)
    num_workers: int = 0
    out_dir: str = "runs/hopadiff"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class ConfigError(ValueError):
    """A configuration file or override names an unknown key or holds a wrong type."""


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping for {cls.__name__}, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        names = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise ConfigError(f"unknown config key(s): {names} (allowed here: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported config type {tp}")  # a bug in this module, not user input


def config_from_dict(values: dict, cls: type = Config) -> Any:
    """Build ``cls`` from nested plain data, rejecting unknown keys and wrong types."""
    return _build(cls, values, "")


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict (YAML/JSON/checkpoint safe: only str, int, float, bool, list, None)."""
    return dataclasses.asdict(cfg)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML experiment config; ``overrides`` are ``dotted.key=value`` strings (YAML values)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path} is not valid YAML: {e}") from e
    for item in overrides or []:
        apply_override(values, item)
    try:
        cfg = config_from_dict(values)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    # A labels file named relative to the config file is resolved against it.
    if cfg.data.labels_file and not Path(cfg.data.labels_file).is_absolute():
        cfg.data.labels_file = str((path.parent / cfg.data.labels_file).resolve())
    return cfg


def apply_override(values: dict, item: str) -> None:
    """Apply one ``a.b.c=value`` override to nested plain data in place."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    dotted, raw = item.split("=", 1)
    keys = dotted.strip().split(".")
    node = values
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {k} is not a section")
    if raw.strip() == "":
        node[keys[-1]] = ""  # `key=` means an empty value (e.g. data.labels_file=), not YAML null
        return
    try:
        node[keys[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: the value is not valid YAML ({e.problem})") from e


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def read_label_names(path: str | Path) -> list[str]:
    """Class names, one per line; blank lines and '#' comments ignored."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    names = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: duplicate class names")
    return names
