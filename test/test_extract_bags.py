"""Training data from recordings and extraction at scale: a bag + a labels file -> features that
hopadiff-train trains on with small.yaml; torchrun splits extraction across processes and equals one
process (and, opt-in, resumes after a rank is killed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from bags import messages_of, pan_entries, write_bag
from node_process import overrides
from tiny import tiny_node_params
from train_util import run_main, tiny_experiment

from hopadiff.data import DataError, load_manifest
from hopadiff.features.bag_labels import to_extract_manifest
from hopadiff.features.extract import main as extract_main
from hopadiff.train import main as train_main
from rhas_msgs.msg import TrackedPersonArray
from rhas_ros.bag.cli import main as rhas_bag

LABELS = ["walking", "standing", "waving"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory, node_assets):
    """A 12 s recording of real footage (10 fps) and rhas_bag's tracks for it at 5 fps, grounded
    to a referring text."""
    root = tmp_path_factory.mktemp("recording")
    write_bag(root / "run1", pan_entries(120, fps=10.0, text=None))
    threads = torch.get_num_threads()
    params = tiny_node_params(node_assets / "model.pt", node_assets / "clip_model", sample_fps=5.0, window=16, hop=4,
                              min_window_frames=4, ddim_steps=3)  # fmt: skip
    try:
        code = rhas_bag([str(root / "run1"), "-o", str(root / "run1_rhas"), "-q", "--text", "the person on the left",
                         *overrides(params)])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return root


def _labels_file(root: Path, tracks: list) -> Path:
    """Two persons of run1: the referred one (target) and one chosen by a box at 2 s."""
    at = next(m for m in tracks if m.header.stamp.sec * 10**9 + m.header.stamp.nanosec >= _t0(tracks) + 2 * 10**9)
    other = next(p for p in at.persons if not p.is_target and p.frames_since_seen == 0)
    (root / "other.csv").write_text("start,end,label\n0,5,standing\n5,12,waving\n")
    doc = {
        "format": "rhas-bag-labels", "version": 1, "labels": LABELS, "fps": 5.0,
        "recordings": [{"bag": "run1", "tracks": "run1_rhas", "persons": [
            {"text": "the person on the left", "person": "target",
             "actions": [{"start": 0, "end": 6, "label": "walking"}, {"start": 4, "end": 12, "label": "waving"}]},
            {"text": "someone else", "person": {"at": 2.0, "box": [other.roi.x_offset + 2, other.roi.y_offset,
                                                                  other.roi.width, other.roi.height]},
             "actions": "other.csv"},
        ]}],
    }  # fmt: skip
    path = root / "labels.json"
    path.write_text(json.dumps(doc, indent=1))
    return path, other.person_id


def _t0(tracks) -> int:
    s = tracks[0].header.stamp
    return s.sec * 10**9 + s.nanosec


def test_a_recording_and_a_labels_file_become_features_that_train(recording, tiny_models, tmp_path):
    tracks = messages_of(recording / "run1_rhas", "/tracked_persons", TrackedPersonArray)
    labels_file, other_id = _labels_file(recording, tracks)
    manifest = to_extract_manifest(labels_file)
    (video,) = manifest["videos"]
    assert len(video["stamps"]) == 60, "12 s sampled at 5 fps"
    target, other = video["persons"]
    assert other["person_id"] == other_id
    # frame k is at k / 5 s: walking [0, 6), waving [4, 12); the CSV: standing [0, 5), waving [5, 12)
    assert target["labels"][0] == [0] and target["labels"][25] == [0, 2] and target["labels"][59] == [2]
    assert other["labels"][24] == [1] and other["labels"][25] == [2]
    boxes = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec: m for m in tracks}
    for stamp, box in zip(video["stamps"], target["boxes"], strict=True):
        chosen = [p for p in boxes[stamp].persons if p.is_target and p.frames_since_seen == 0]
        assert (box is None) == (not chosen)
    out = tmp_path / "feats"
    res = run_main(extract_main, labels_file, "--out", out, "--backbone", "clip", "--model", tiny_models["clip"],
                   "--local-files-only", "--device", "cpu")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    samples, meta = load_manifest(out / "train.json")
    assert len(samples) == 2 and meta["labels"] == LABELS and meta["fps"] == 5.0
    assert [s.text for s in samples] == ["the person on the left", "someone else"]
    assert samples[0].visible.tolist() == [b is not None for b in target["boxes"]]
    assert samples[1].labels.sum(axis=0).tolist() == [0, 25, 35] and samples[1].holistic.shape == (60, 24)
    cfg = tiny_experiment(tmp_path / "c.yaml", out, tmp_path / "run", 24, len(LABELS), epochs=1)
    assert train_main(["--config", str(cfg), "data.window=16", "data.hop=8"]) == 0
    assert (tmp_path / "run" / "last.pt").exists()


def test_labels_files_that_cannot_work_name_the_problem(recording, tmp_path):
    tracks = messages_of(recording / "run1_rhas", "/tracked_persons", TrackedPersonArray)
    good, _ = _labels_file(recording, tracks)
    doc = json.loads(good.read_text())

    def fails(change, message):
        bad = json.loads(json.dumps(doc))
        change(bad)
        path = recording / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(DataError, match=message):
            to_extract_manifest(path)

    fails(lambda d: d["recordings"][0]["persons"][0].update(person=99), "person 99 is not among the tracks")
    fails(lambda d: d["recordings"][0]["persons"][1]["person"].update(box=[0, 0, 2, 2]), "no track overlaps box")
    fails(lambda d: d["recordings"][0]["persons"][0]["actions"].append({"start": 1, "end": 2, "label": "dancing"}),
          r"unknown labels \['dancing'\]")  # fmt: skip
    fails(lambda d: d["recordings"][0]["persons"][0]["actions"].append({"start": 3, "end": 2, "label": "waving"}),
          "has start 3.0 and end 2.0")  # fmt: skip
    fails(lambda d: d["recordings"][0].update(tracks="run1"), "has no rhas_msgs/msg/TrackedPersonArray")
    fails(lambda d: d["recordings"][0].update(bag="nowhere"), "no such bag")


def _clips(tmp_path_factory) -> Path:
    from hopadiff.synth.video import write_video_dataset

    root = tmp_path_factory.mktemp("clips")
    write_video_dataset(root, clips=6, frames=16, persons=2, fps=10)
    return root


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.npy"))}


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [e.split(b"=", 1)[1] for e in env if e.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


def _one_process_and_torchrun(tmp_path_factory, tiny_models, tmp_path):
    """12 samples in 6 videos extracted by one process (one torch thread, as each torchrun rank
    has: the same sums, the same bits) -> (its output, the torchrun command for 2 ranks, their
    output folder, their environment)."""
    clips = _clips(tmp_path_factory)
    args = [clips / "extract.json", "--backbone", "clip", "--model", tiny_models["clip"], "--local-files-only",
            "--device", "cpu", "--batch-size", "4"]  # fmt: skip
    single = tmp_path / "single"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_main(extract_main, *args, "--out", single).returncode == 0
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "multi"
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "hopadiff.features.extract", *map(str, args),
           "--out", str(out)]  # fmt: skip
    return single, cmd, out, dict(os.environ, OMP_NUM_THREADS="1")


def _equal_outputs(out, single) -> None:
    assert _files(out) == _files(single)
    a, b = json.loads((out / "train.json").read_text()), json.loads((single / "train.json").read_text())
    assert a == b


def test_torchrun_extraction_equals_one_process(tmp_path_factory, tiny_models, tmp_path):
    """2 processes (gloo) extract 12 samples in 6 videos: every file and the manifest equal a
    one-process extraction's (CI's variant of the kill-and-resume test below)."""
    single, cmd, out, env = _one_process_and_torchrun(tmp_path_factory, tiny_models, tmp_path)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    assert summary["samples"] == 12 and summary["extracted"] == 12 and summary["skipped"] == 0
    _equal_outputs(out, single)


@pytest.mark.slow
def test_torchrun_extraction_equals_one_process_and_resumes_after_a_rank_is_killed(tmp_path_factory, tiny_models,
                                                                                   tmp_path):  # fmt: skip
    """As above, and rank 1 is killed after its first sample: the run fails without a manifest, a
    rerun does only what is missing, and every file and the manifest equal a one-process extraction's."""
    single, cmd, out, env = _one_process_and_torchrun(tmp_path_factory, tiny_models, tmp_path)
    first_of_rank1 = out / "RHAS_feature_clip_train" / "2_clip_feat.npy"  # video 1 is rank 1's first
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not first_of_rank1.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        workers = {_rank_of(p): p for p in _children(proc.pid)}
        assert first_of_rank1.exists() and 1 in workers, (workers, proc.poll())
        os.kill(workers[1], signal.SIGKILL)
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert not (out / "train.json").exists(), "no manifest unless every rank finished"
    done_before = set(_files(out))
    assert done_before < set(_files(single)), "rank 1 had samples left"
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    assert summary["samples"] == 12 and summary["extracted"] + summary["skipped"] == 12
    assert 0 < summary["extracted"] < 12
    _equal_outputs(out, single)
