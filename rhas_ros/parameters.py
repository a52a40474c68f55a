"""rhas_node parameters: declared with descriptors (meaning, range), read into one dataclass."""

from __future__ import annotations

from dataclasses import dataclass, fields

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


@dataclass
class Settings:
    checkpoint: str = ""
    backbone: str = "blip2"
    backbone_model: str = ""
    local_files_only: bool = False
    detector: str = "hog"
    detector_model: str = ""
    device: str = "auto"
    precision: str = "fp32"
    torch_threads: int = 0
    sample_fps: float = 0.0
    window: int = 0
    hop: int = 0
    min_window_frames: int = 16
    ddim_steps: int = 0
    eta: float = 0.0
    seed: int = 0
    max_persons: int = 8
    segment_all_persons: bool = False
    threshold: float = 0.5
    at_least_one_action: bool = True
    smooth: int = 5
    grounding_ema: float = 0.3
    grounding_min_score: float = 0.0
    grounding_switch_margin: float = 0.05
    grounding_switch_frames: int = 3
    image_topic: str = "image"
    use_compressed: bool = False
    text_topic: str = "referring_text"
    persons_topic: str = "persons"
    segments_topic: str = "action_segments"
    labels_topic: str = "action_labels"
    tracks_topic: str = "tracked_persons"
    image_qos: str = "sensor_data"
    image_qos_depth: int = 5
    queue_size: int = 2
    max_image_pixels: int = 4096 * 4096
    max_text_chars: int = 512
    max_boxes: int = 64
    autostart: bool = False


DESCRIPTIONS = {
    "checkpoint": "HopaDIFF checkpoint (.pt written by hopadiff-train); required",
    "backbone": "vision-language backbone: blip2 (paper) or clip; must match the checkpoint's feature size",
    "backbone_model": "hub name or local folder for the backbone ('' = the paper's model)",
    "local_files_only": "never contact the model hub (robots without internet)",
    "detector": "person detector: hog | full_frame | grounding_dino | external (persons topic)",
    "detector_model": "hub name or folder for grounding_dino ('' = IDEA-Research/grounding-dino-tiny)",
    "device": "auto | cpu | cuda | cuda:N",
    "precision": "fp32 | bf16 | fp16 (fp16 only on CUDA)",
    "torch_threads": "CPU threads for torch (0 = torch default)",
    "sample_fps": "frames per second kept from the camera, by header stamp (0 = the checkpoint's training rate)",
    "window": "W: sampled frames per HopaDIFF window (0 = the checkpoint's training window)",
    "hop": "run HopaDIFF every hop sampled frames (0 = the checkpoint's)",
    "min_window_frames": "first inference once a person has this many frames",
    "ddim_steps": "DDIM sampling steps (0 = the checkpoint's config)",
    "eta": "DDIM eta; 0 = deterministic output (no flicker between windows)",
    "seed": "seed of the start noise (the same for every window)",
    "max_persons": "persons segmented at most in everyone mode",
    "segment_all_persons": "everyone mode: segment every tracked person instead of the referred one",
    "threshold": "probability at which a (multi-label) action counts as active",
    "at_least_one_action": "multi-label: report the most probable action on every frame (and all above threshold)",
    "smooth": "median filter length along time, in sampled frames (1 = off)",
    "grounding_ema": "weight of the newest text-crop similarity in the accumulated grounding score",
    "grounding_min_score": "accumulated score needed to select a target",
    "grounding_switch_margin": "score margin a new target needs over the current one",
    "grounding_switch_frames": "consecutive sampled frames the margin must hold before switching target",
    "image_topic": "camera image topic (sensor_msgs/Image; /compressed appended when use_compressed)",
    "use_compressed": "subscribe to sensor_msgs/CompressedImage on <image_topic>/compressed",
    "text_topic": "referring text topic (std_msgs/String, reliable + transient local; empty clears)",
    "persons_topic": "person boxes with ids from an upstream detector (rhas_msgs/TrackedPersonArray)",
    "segments_topic": "output: rhas_msgs/ActionSegmentArray",
    "labels_topic": "output (latched): rhas_msgs/ActionLabels",
    "tracks_topic": "output: rhas_msgs/TrackedPersonArray",
    "image_qos": "sensor_data (best effort) or reliable",
    "image_qos_depth": "history depth of the reliable image subscription",
    "queue_size": "frames waiting for the worker; older ones are dropped (latest wins)",
    "max_image_pixels": "images with more pixels are rejected with a warning (bounded memory)",
    "max_text_chars": "referring texts are truncated to this many characters",
    "max_boxes": "person boxes kept per frame, highest scores first (bounded memory; extra boxes are counted)",
    "autostart": "configure and activate at start (without a lifecycle manager)",
}
CHOICES = {
    "backbone": ("blip2", "clip"),
    "detector": ("hog", "full_frame", "grounding_dino", "external"),
    "precision": ("fp32", "bf16", "fp16"),
    "image_qos": ("sensor_data", "reliable"),
}
INT_RANGES = {
    "window": (0, 100000),
    "hop": (0, 100000),
    "min_window_frames": (2, 100000),
    "ddim_steps": (0, 1000),
    "max_persons": (1, 64),
    "smooth": (1, 99),
    "queue_size": (1, 1000),
    "grounding_switch_frames": (1, 1000),
    "torch_threads": (0, 256),
    "image_qos_depth": (1, 1000),
    "max_text_chars": (1, 1_000_000),
    "max_image_pixels": (1, 2**31 - 1),
    "max_boxes": (1, 1000),
}
FLOAT_RANGES = {
    "sample_fps": (0.0, 1000.0),
    "eta": (0.0, 1.0),
    "threshold": (0.0, 1.0),
    "grounding_ema": (0.0, 1.0),
    "grounding_switch_margin": (0.0, 1.0),
    "grounding_min_score": (0.0, 1.0),
}


# Applied at once while the node is configured; every other parameter is read at configure
# and refused while configured (cleanup, set it, configure again).
DYNAMIC = frozenset(
    {
        "sample_fps", "ddim_steps", "eta", "seed", "threshold", "at_least_one_action", "smooth",
        "grounding_ema", "grounding_min_score", "grounding_switch_margin", "grounding_switch_frames",
        "queue_size", "max_image_pixels", "max_text_chars", "max_boxes", "autostart",
    }
)  # fmt: skip


def validate(name: str, value) -> str | None:
    """The reason a value is not allowed for parameter ``name``, or None."""
    if name in CHOICES and value not in CHOICES[name]:
        return f"{name}={value!r} not allowed; use one of {', '.join(CHOICES[name])}"
    lo_hi = INT_RANGES.get(name) or FLOAT_RANGES.get(name)
    if lo_hi is not None and isinstance(value, int | float) and not lo_hi[0] <= value <= lo_hi[1]:
        return f"{name}={value} outside {lo_hi[0]}..{lo_hi[1]}"
    return None


def declare_parameters(node) -> None:
    for f in fields(Settings):
        desc = ParameterDescriptor(description=DESCRIPTIONS[f.name])
        if f.name in CHOICES:
            desc.additional_constraints = "one of: " + ", ".join(CHOICES[f.name])
        if f.name in INT_RANGES:
            lo, hi = INT_RANGES[f.name]
            desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=1)]
        if f.name in FLOAT_RANGES:
            lo, hi = FLOAT_RANGES[f.name]
            desc.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
        node.declare_parameter(f.name, f.default, desc)


def read_settings(node) -> Settings:
    """Current parameter values, validated; ValueError names the bad parameter."""
    s = Settings(**{f.name: node.get_parameter(f.name).value for f in fields(Settings)})
    for f in fields(Settings):
        reason = validate(f.name, getattr(s, f.name))
        if reason:
            raise ValueError(f"parameter {reason}")
    if not s.checkpoint:
        raise ValueError("parameter checkpoint is empty: name a HopaDIFF checkpoint file")
    if s.window == 1:
        raise ValueError("parameter window=1: a window needs at least 2 frames (0 = the checkpoint's)")
    if s.hop and s.window and s.hop > s.window:
        raise ValueError(f"parameter hop={s.hop} is larger than window={s.window}")
    return s
