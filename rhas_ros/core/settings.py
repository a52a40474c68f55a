"""rhas_node's settings, declared once: every ROS parameter is a field here, with its default,
description, allowed range or choices and whether it may change while the node runs.

rhas_ros.parameters declares the ROS parameters (with descriptors) from these fields,
config/rhas.yaml is generated from them (``python -m rhas_ros.core.settings > config/rhas.yaml``;
a test keeps the shipped file equal), and ``check`` holds every rule between them. The values as
set ("0 = the checkpoint's") are resolved against the checkpoint by rhas_ros.core.resolve into
the frozen configuration the pipeline runs. The tracker's and the streaming values take their
defaults from the dataclasses that use them (TrackerParams, hopadiff's StreamConfig): one
definition of each. ROS-free.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from hopadiff.streaming import StreamConfig

from .grounding import GroundingConfig
from .tracking import TrackerParams


def setting(default, description: str, *, range=None, choices=None, dynamic: bool = False, yaml_note: str = "",
            **extra):  # fmt: skip
    """A dataclass field with what a ROS parameter declaration needs: description, allowed range
    or choices, and whether it may change while the node runs (dynamic)."""
    meta = {"description": description, "range": range, "choices": choices, "dynamic": dynamic, "yaml_note": yaml_note}
    return field(default=default, metadata={**meta, **extra})


def part_of(config: type, name: str, description: str, *, range=None, default=MISSING, dynamic: bool = True):
    """A setting that is ``config.<name>`` of one of the frozen configs the pipeline's parts take
    (TrackerParams, GroundingConfig, hopadiff's StreamConfig): its default is read from there
    (unless given: the "0 = the checkpoint's" ones) and ``part`` maps it back. One definition of
    each value."""
    if default is MISSING:
        default = config.__dataclass_fields__[name].default
    return setting(default, description, range=range, dynamic=dynamic, part=(config, name))


def part(config: type, s: Settings, **resolved):
    """``config`` built from the settings that are its fields (``part_of``), ``resolved`` on top."""
    mine = [f for f in fields(Settings) if f.metadata.get("part", (None,))[0] is config]
    return config(**{**{f.metadata["part"][1]: getattr(s, f.name) for f in mine}, **resolved})


@dataclass(frozen=True)
class Settings:
    """The parameters as set (frozen: a change builds a new value, checked by ``check``)."""

    checkpoint: str = setting("", "HopaDIFF checkpoint (.pt written by hopadiff-train)",
                              yaml_note="REQUIRED")  # fmt: skip
    backbone: str = setting("blip2", "vision-language backbone: blip2 (paper) or clip; must match the checkpoint",
                            choices=("blip2", "clip"))  # fmt: skip
    backbone_model: str = setting("", "hub name or local folder for the backbone ('' = the paper's model)")
    local_files_only: bool = setting(False, "never contact the model hub (robots without internet)")
    detector: str = setting("hog", "person detector: hog | full_frame | grounding_dino | external (persons topic)",
                            choices=("hog", "full_frame", "grounding_dino", "external"))  # fmt: skip
    hog_upscale: float = setting(
        1.3, "hog detector: the frame is enlarged by this factor first (its window is 128 px tall: 1.3 finds "
        "people from 98 px; cost grows with the square)", range=(1.0, 4.0),
    )  # fmt: skip
    hog_max_side: int = setting(
        1280, "hog detector: a frame longer than this on its longer side is shrunk to it before detection (the "
        "cost grows with the pixels: a 4096x4096 frame took 8 s); 0 = never", range=(0, 100000),
    )  # fmt: skip
    detector_model: str = setting("", "hub name or folder for grounding_dino ('' = IDEA-Research/grounding-dino-tiny)")
    # The tracker's values (defaults from TrackerParams; ``part`` maps them back).
    track_high_score: float = part_of(
        TrackerParams, "high_score", "tracker: detections scoring at least this are matched first and may start "
        "tracks (ByteTrack's high-score stage)", range=(0.0, 1.0),
    )  # fmt: skip
    track_low_score: float = part_of(
        TrackerParams, "low_score", "tracker: detections below are ignored; between this and track_high_score they "
        "only continue tracks seen a frame ago (partly occluded persons)", range=(0.0, 1.0),
    )  # fmt: skip
    track_match_iou: float = part_of(
        TrackerParams, "match_iou", "tracker: IoU a detection needs with a track's predicted box to be matched to it",
        range=(0.0, 1.0),
    )  # fmt: skip
    track_confirm_frames: int = part_of(
        TrackerParams, "confirm_frames", "tracker: consecutive sampled frames a new track must be matched before it "
        "gets an id (one-frame false detections never do)", range=(1, 100),
    )  # fmt: skip
    track_lost_seconds: float = part_of(
        TrackerParams, "lost_seconds", "tracker: a person not detected is kept this long (buffers continue with the "
        "frames masked) and can come back with the same id by position or appearance", range=(0.0, 600.0),
    )  # fmt: skip
    reid_min_similarity: float = part_of(
        TrackerParams, "reid_min_similarity", "tracker: cosine similarity of appearance descriptors a lost person "
        "needs to be re-identified", range=(-1.0, 1.0),
    )  # fmt: skip
    reid_appearance: str = setting(
        "color", "tracker: appearance descriptor of each person crop, for re-identification and to keep persons "
        "apart: color (HSV histogram of the upper body: no model weights, its gate measured), backbone (the crop "
        "features the backbone computes anyway; set reid_appearance_gate for its weights, README) or none "
        "(motion only)", choices=("color", "backbone", "none"),
    )  # fmt: skip
    reid_appearance_gate: float = part_of(
        TrackerParams, "appearance_gate", "tracker: a track and a detection whose appearance descriptors are less "
        "similar than this never match, however well the boxes agree (keeps two persons apart after they crossed); "
        "-1: off. The default is measured for reid_appearance color; for backbone set it between its same-person "
        "and two-person crop similarities (docs/benchmarks.md, Tracking)", range=(-1.0, 1.0),
    )  # fmt: skip
    external_type: str = setting(
        "tracked_persons", "external detector: what the persons come as: tracked_persons (rhas_msgs/TrackedPersonArray "
        "on persons_topic), detection2d (vision_msgs/Detection2DArray on persons_topic: YOLO, Isaac ROS, ...) or hri "
        "(ROS4HRI bodies: ids on hri_bodies_topic, each body's /humans/bodies/<id>/roi)",
        choices=("tracked_persons", "detection2d", "hri"),
    )  # fmt: skip
    person_classes: tuple = setting(
        ("person", "0"), "external_type detection2d: the hypothesis class_ids that are persons (COCO's name and index)"
    )
    hri_bodies_topic: str = setting(
        "/humans/bodies/tracked", "external_type hri: the tracked body ids (hri_msgs/IdsList)"
    )
    hri_actions: bool = setting(
        True, "external_type hri: publish each body's segments also on /humans/bodies/<body_id>/actions"
    )
    persons_stamp_tolerance: float = setting(
        0.05, "external detector: boxes are taken from the persons message with the frame's stamp, else the "
        "nearest within this many seconds, else the frame is processed without boxes", range=(0.0, 10.0),
        dynamic=True,
    )  # fmt: skip
    device: str = setting("auto", "auto | cpu | cuda | cuda:N")
    precision: str = setting("fp32", "fp32 | bf16 | fp16 (fp16 only on CUDA)", choices=("fp32", "bf16", "fp16"))
    torch_threads: int = setting(0, "CPU threads for torch (0 = torch default)", range=(0, 256))
    inference_engine: str = setting(
        "eager", "what runs the model: eager (PyTorch), compile (the denoising step through torch.compile: 8 persons "
        "159 against 222 ms a window on 2 CPU cores; the first configure of a checkpoint compiles, about 40 s, later "
        "ones about 6 s with the caches kept; needs a C++ compiler) or onnxruntime (the whole window, exported "
        "once and cached beside the checkpoint in CHECKPOINT.engines/; onnxruntime-gpu for CUDA / TensorRT)",
        choices=("eager", "compile", "onnxruntime"),
    )  # fmt: skip
    max_stamp_gap: float = setting(
        5.0, "seconds between two camera stamps that count as a new stream, as a stamp going backwards does: open "
        "segments end FINAL at the last frame before the gap, tracks and windows restart (a camera restart, a bag "
        "with a hole); 0 = never", range=(0.0, 86400.0), dynamic=True,
    )  # fmt: skip
    sample_fps: float = setting(
        0.0, "frames per second kept from the camera, by header stamp (0 = the checkpoint's training rate)",
        range=(0.0, 1000.0), dynamic=True,
    )  # fmt: skip
    # The streaming values (defaults from hopadiff's StreamConfig; ``part`` maps them back).
    window: int = part_of(
        StreamConfig, "window", "W: sampled frames per HopaDIFF window (0 = the checkpoint's training window)",
        range=(0, 100000), default=0, dynamic=False,
    )  # fmt: skip
    hop: int = part_of(
        StreamConfig, "hop", "run HopaDIFF every hop sampled frames (0 = the checkpoint's)", range=(0, 100000),
        default=0, dynamic=False,
    )  # fmt: skip
    min_window_frames: int = part_of(
        StreamConfig, "min_window_frames", "first inference once a person has this many frames", range=(2, 100000),
        dynamic=False,
    )  # fmt: skip
    inference_phases: int = part_of(
        StreamConfig, "inference_phases", "everyone mode: spread the persons' windows over this many frames of each "
        "hop (person p in phase p mod N, phases hop/N frames apart): 1 = every person in one batched pass (most "
        "frames/s); more = fewer persons per inference frame (lower latency, each person still updated once per "
        "hop)", range=(1, 1000),
    )  # fmt: skip
    ddim_steps: int = part_of(
        StreamConfig, "ddim_steps", "DDIM sampling steps (0 = the checkpoint's config; at most the checkpoint's "
        "training timesteps)", range=(0, 1000), default=0,
    )  # fmt: skip
    eta: float = part_of(
        StreamConfig, "eta", "DDIM eta; 0 = deterministic output (no flicker between windows)", range=(0.0, 1.0)
    )
    seed: int = part_of(StreamConfig, "seed", "seed of the start noise (the same for every window)")
    threshold: float = part_of(
        StreamConfig, "threshold", "probability at which a (multi-label) action counts as active", range=(0.0, 1.0)
    )
    at_least_one_action: bool = part_of(
        StreamConfig, "at_least_one_action", "multi-label: report the most probable action on every frame (and all "
        "above threshold)",
    )  # fmt: skip
    smooth: int = part_of(
        StreamConfig, "smooth", "median filter length along time, in sampled frames (1 = off)", range=(1, 99)
    )
    warm_start: bool = part_of(
        StreamConfig, "warm_start", "start each window's DDIM chain from the previous window's estimate, re-noised, "
        "and run only warm_start_steps steps (first window and after a target switch or reset: cold)",
    )  # fmt: skip
    warm_start_steps: int = part_of(
        StreamConfig, "warm_start_steps", "DDIM steps of a warm-started window (the last ones of the schedule; at "
        "most ddim_steps are run)", range=(1, 1000),
    )  # fmt: skip
    max_persons: int = setting(8, "persons segmented at most in everyone mode", range=(1, 64))
    segment_all_persons: bool = setting(
        False, "everyone mode: segment every tracked person instead of the referred one"
    )
    # Grounding (defaults from GroundingConfig; ``part`` maps them back).
    grounding_window: int = part_of(
        GroundingConfig, "window", "sampled frames over which a person's text-crop similarity is averaged into the "
        "grounding score", range=(1, 100000),
    )  # fmt: skip
    grounding_min_score: float = part_of(
        GroundingConfig, "min_score", "grounding score needed to select a target", range=(0.0, 1.0)
    )
    grounding_switch_margin: float = part_of(
        GroundingConfig, "switch_margin", "score margin a new target needs over the current one", range=(0.0, 1.0)
    )
    grounding_switch_frames: int = part_of(
        GroundingConfig, "switch_frames", "consecutive sampled frames the margin must hold before switching target",
        range=(1, 1000),
    )  # fmt: skip
    image_topic: str = setting("image", "camera image topic (sensor_msgs/Image; /compressed appended when "
                               "use_compressed)")  # fmt: skip
    use_compressed: bool = setting(False, "subscribe to sensor_msgs/CompressedImage on <image_topic>/compressed")
    text_topic: str = setting("referring_text", "referring text topic (std_msgs/String; empty clears)")
    persons_topic: str = setting("persons", "person boxes from an upstream detector (external_type "
                                 "tracked_persons or detection2d)")  # fmt: skip
    segments_topic: str = setting("action_segments", "output: rhas_msgs/ActionSegmentArray")
    labels_topic: str = setting("action_labels", "output (latched): rhas_msgs/ActionLabels")
    tracks_topic: str = setting("tracked_persons", "output: rhas_msgs/TrackedPersonArray")
    detections_topic: str = setting("detections", "output: the tracks as vision_msgs/Detection2DArray (id = person_id)")
    image_qos: str = setting(
        "sensor_data", "sensor_data (best effort) or reliable", choices=("sensor_data", "reliable")
    )
    image_qos_depth: int = setting(5, "history depth of the reliable image subscription", range=(1, 1000))
    queue_size: int = setting(2, "frames waiting for the worker; with queue_policy latest, older ones are "
                              "dropped (latest wins)", range=(1, 1000), dynamic=True)  # fmt: skip
    queue_policy: str = setting(
        "latest", "latest: a live camera, the newest queue_size frames wait and older ones are dropped (counted); "
        "all: every admitted frame waits its turn, none dropped (replays, tests: the node falls behind instead, and "
        "the backlog is its memory)", choices=("latest", "all"), dynamic=True,
    )  # fmt: skip
    max_image_pixels: int = setting(4096 * 4096, "images with more pixels are rejected with a warning (bounded "
                                    "memory)", range=(1, 2**31 - 1), dynamic=True)  # fmt: skip
    log_referring_text: bool = setting(
        False, "log each referring text in full at INFO; off: INFO names its length and a short hash, DEBUG the "
        "text (a text describes a person, and /rosout reaches the whole DDS domain)", dynamic=True,
    )  # fmt: skip
    max_text_chars: int = setting(512, "referring texts are truncated to this many characters", range=(1, 1_000_000),
                                  dynamic=True)  # fmt: skip
    max_boxes: int = setting(64, "person boxes kept per frame, highest scores first (bounded memory; extra boxes "
                             "are counted)", range=(1, 1000), dynamic=True)  # fmt: skip
    image_timeout_s: float = setting(
        5.0, "/diagnostics: active and no image for this long is an ERROR (a camera that stopped, a QoS that does "
        "not match)", range=(0.5, 3600.0), dynamic=True,
    )  # fmt: skip
    diagnostics_window_s: float = setting(
        10.0, "/diagnostics: problems (drops, rejected input, errors) count towards the level for this long, then "
        "it recovers; the totals stay in the values", range=(1.0, 3600.0), dynamic=True,
    )  # fmt: skip
    autostart: bool = setting(False, "configure and activate at start (without a lifecycle manager)", dynamic=True)


def tracker_params(s: Settings) -> TrackerParams:
    """The tracker's parameters from the settings (every ``part_of(TrackerParams, ...)``, and max_boxes)."""
    return part(TrackerParams, s, max_tracks=s.max_boxes)


DESCRIPTIONS = {f.name: f.metadata["description"] for f in fields(Settings)}
DYNAMIC = frozenset(f.name for f in fields(Settings) if f.metadata["dynamic"])


def validate(name: str, value) -> str | None:
    """The reason a value is not allowed for parameter ``name`` on its own, or None."""
    meta = Settings.__dataclass_fields__[name].metadata
    if meta["choices"] and value not in meta["choices"]:
        return f"{name}={value!r} not allowed; use one of {', '.join(meta['choices'])}"
    lo_hi = meta["range"]
    if lo_hi is not None and isinstance(value, int | float) and not lo_hi[0] <= value <= lo_hi[1]:
        return f"{name}={value} outside {lo_hi[0]}..{lo_hi[1]}"
    return None


def check(s: Settings) -> None:
    """Every value on its own and the rules between them that need no checkpoint (configure and
    runtime changes alike); ValueError names the bad parameter. The rules that need the
    checkpoint's values are rhas_ros.core.resolve's."""
    for f in fields(Settings):
        reason = validate(f.name, getattr(s, f.name))
        if reason:
            raise ValueError(f"parameter {reason}")
    if not s.checkpoint:
        raise ValueError("parameter checkpoint is empty: name a HopaDIFF checkpoint file")
    if s.window == 1:
        raise ValueError("parameter window=1: a window needs at least 2 frames (0 = the checkpoint's)")
    if s.track_low_score > s.track_high_score:
        raise ValueError(
            f"parameter track_low_score={s.track_low_score} is above track_high_score={s.track_high_score}"
        )
    if s.hop and s.window and s.hop > s.window:
        raise ValueError(f"parameter hop={s.hop} is larger than window={s.window}")


def _yaml_value(v) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def yaml_text() -> str:
    """config/rhas.yaml: every parameter with its default and description."""
    lines = [
        "# rhas_node parameters: generated from rhas_ros/core/settings.py (python -m rhas_ros.core.settings).",
        "# '/**' applies them to rhas_node in any namespace. Parameters marked (dynamic) may be set while the",
        "# node runs (ros2 param set); the others take effect at configure.",
        "/**:",
        "  ros__parameters:",
    ]
    for f in fields(Settings):
        m = f.metadata
        note = f"{m['yaml_note']}: " if m["yaml_note"] else ""
        dyn = " (dynamic)" if m["dynamic"] else ""
        lines.append(f"    {f.name}: {_yaml_value(f.default)}  # {note}{m['description']}{dyn}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(yaml_text(), end="")
