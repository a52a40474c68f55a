"""Training data from a robot's own recordings: a labels file -> an extract manifest.

A labels file names, for each recording (a ROS 2 bag), the persons to learn from and what each
did over time; the person boxes come from the tracks of the same recording (rhas_bag's or
rhas_node's ``tracked_persons``: ``rhas_bag run1 -o run1_rhas --text "..."`` writes them for a
bag that has none). ``to_extract_manifest`` turns it into hopadiff-extract's manifest: per
sampled camera frame, the person's box (None where unseen) and the classes active then.

    {
      "format": "rhas-bag-labels", "version": 1,
      "labels": ["walking", "sitting", "waving"],    class names in index order, or a file of them
      "fps": 5.0,                                     camera frames used per second (the node's sample_fps)
      "recordings": [{
        "bag": "run1",                                relative to this file
        "image_topic": "/camera/image_raw",           optional: the bag's only image topic
        "tracks": "run1_rhas",                        optional: the bag holding the tracks (default: "bag")
        "tracks_topic": "/tracked_persons",           optional (rhas_msgs/TrackedPersonArray)
        "persons": [{
          "text": "the man in the red shirt",         the referring text the model learns from
          "person": 3,                                a track id, or {"at": 12.5, "box": [x, y, w, h]}:
                                                      the track whose box best overlaps that box
                                                      then, or "target": the person the text
                                                      grounded, frame by frame (is_target)
          "actions": [{"start": 0.0, "end": 4.5, "label": "walking"}, ...]
                     or "run1_man.csv"                (header start,end,label; one row per action)
        }]
      }]
    }

Times are seconds from the recording's first camera frame (its header stamp); an action covers
[start, end), actions may overlap (multi-label); a frame inside none has no class (background).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..bags import NS, image_topic, open_bag, read_tracks, sampled_stamps
from ..data import EXTRACT_FORMAT, DataError

LABELS_FORMAT = "rhas-bag-labels"
MIN_SELECT_IOU = 0.3  # {"at", "box"}: the best overlapping track needs at least this IoU


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _actions(spec, base: Path, where: str) -> list[tuple[float, float, str]]:
    if isinstance(spec, str):  # a CSV file
        path = base / spec
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise DataError(f"{where}: cannot read actions file {path}: {e}") from None
        if rows and not {"start", "end", "label"} <= set(rows[0]):
            raise DataError(f"{path}: needs the columns start,end,label (has {', '.join(rows[0])})")
        spec, where = rows, str(path)
    out = []
    for i, a in enumerate(spec):
        try:
            start, end, label = float(a["start"]), float(a["end"]), str(a["label"]).strip()
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{where}: action {i} needs start, end (seconds) and label: {e}") from None
        if not end > start >= 0:
            raise DataError(f"{where}: action {i} ({label}) has start {start} and end {end}")
        out.append((start, end, label))
    return out


def _select(sel, tracks: dict[int, list], stamps: list[int], where: str) -> int | None:
    """-> the track id the selection names (None: "target", decided per frame)."""
    if sel == "target":
        return None
    if isinstance(sel, int) and not isinstance(sel, bool):
        if not any(p[0] == sel for ps in tracks.values() for p in ps):
            raise DataError(f"{where}: person {sel} is not among the tracks")
        return sel
    if isinstance(sel, dict) and {"at", "box"} <= set(sel):
        t = stamps[0] + round(float(sel["at"]) * NS)
        nearest = min(tracks, key=lambda s: abs(s - t), default=None)
        scored = [(_iou(p[1], sel["box"]), p[0]) for p in tracks.get(nearest, [])]
        best = max(scored, default=(0.0, None))
        if best[0] < MIN_SELECT_IOU:
            raise DataError(f"{where}: no track overlaps box {sel['box']} at {sel['at']} s (best IoU {best[0]:.2f})")
        return best[1]
    raise DataError(f'{where}: "person" must be a track id, {{"at": seconds, "box": [x, y, w, h]}} or "target"')


def _person(p: dict, base: Path, tracks: dict, stamps: list[int], names: list[str], where: str) -> dict:
    if "text" not in p or "person" not in p or "actions" not in p:
        raise DataError(f"{where}: each person needs text, person and actions")
    pid = _select(p["person"], tracks, stamps, where)
    index = {n: i for i, n in enumerate(names)}
    actions = _actions(p["actions"], base, where)
    unknown = sorted({a[2] for a in actions} - set(index))
    if unknown:
        raise DataError(f"{where}: unknown labels {unknown}; the labels are {names}")
    boxes, labels = [], []
    for s in stamps:
        seen = [q for q in tracks.get(s, []) if (q[2] if pid is None else q[0] == pid) and q[3]]
        boxes.append(list(seen[0][1]) if seen else None)
        t = (s - stamps[0]) / NS
        labels.append(sorted({index[a[2]] for a in actions if a[0] <= t < a[1]}))
    if not any(b is not None for b in boxes):
        raise DataError(f"{where}: the selected person is in no sampled frame")
    return {"person_id": 0 if pid is None else pid, "text": str(p["text"]), "boxes": boxes, "labels": labels}


def to_extract_manifest(labels_file: Path) -> dict:
    """The labels file -> an extract manifest (hopadiff.features.extract) whose videos are bags."""
    labels_file = Path(labels_file)
    base = labels_file.parent
    try:
        doc = json.loads(labels_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read labels file {labels_file}: {e}") from None
    if doc.get("format") != LABELS_FORMAT:
        raise DataError(f"{labels_file} is not a bag labels file (format != {LABELS_FORMAT!r})")
    names = doc.get("labels")
    if isinstance(names, str):
        names = [n.strip() for n in (base / names).read_text().splitlines() if n.strip()]
    if not names or not isinstance(names, list):
        raise DataError(f"{labels_file}: labels must list the class names (or name a file of them)")
    fps = float(doc.get("fps", 5.0))
    if not fps > 0:
        raise DataError(f"{labels_file}: fps must be positive")
    videos = []
    for r, rec in enumerate(doc.get("recordings", [])):
        where = f"{labels_file} recording {r}"
        if "bag" not in rec:
            raise DataError(f"{where}: needs a bag")
        bag = (base / rec["bag"]).resolve()
        with open_bag(bag) as reader:
            topic, _ = image_topic(reader, bag, rec.get("image_topic"))
        stamps = sampled_stamps(bag, topic, fps)
        tracks_bag = (base / rec.get("tracks", rec["bag"])).resolve()
        tracks = read_tracks(tracks_bag, rec.get("tracks_topic", "/tracked_persons"))
        persons = [_person(p, base, tracks, stamps, names, f"{where} person {i}") for i, p in
                   enumerate(rec.get("persons", []))]  # fmt: skip
        if persons:
            videos.append({"name": f"{bag.name}_{r}", "bag": str(bag), "image_topic": topic, "fps": fps,
                           "stamps": stamps, "persons": persons})  # fmt: skip
    if not videos:
        raise DataError(f"{labels_file} names no person in any recording")
    return {"format": EXTRACT_FORMAT, "version": 1, "labels": names, "videos": videos}
