"""Shared pytest fixtures: an isolated DDS domain for tests that start ROS 2 processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # scripts/run_tests.sh: one worker per core, one torch thread each
    import torch

    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).resolve().parent / "helpers"
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(HELPERS))


def isolated_env(domain_id: int) -> dict[str, str]:
    """Environment for child processes: ROS_DOMAIN_ID ``domain_id``, discovery on localhost only."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def ros_env(worker_domain_id):
    return isolated_env(worker_domain_id)


@pytest.fixture(scope="session")
def second_ros_env(worker_domain_id):
    """Another isolated domain, for a long-lived node that must not see the per-test nodes."""
    return isolated_env(worker_domain_id + 60)


@pytest.fixture(scope="session")
def worker_domain_id():
    """A domain id unlikely to be shared with another test run on this machine.

    Fast DDS on localhost allows ids 0..232; 100..159 (and 160..219 for ``second_ros_env``)
    keeps clear of the default 0 and of the ids people commonly pick. The pid makes
    concurrent runs pick different ids.
    """
    return 100 + os.getpid() % 60


@pytest.fixture(scope="session")
def node_assets(tmp_path_factory) -> Path:
    """What the DDS tests' rhas_node runs on: a 60-frame synthetic clip of three persons (clip/), a
    tiny CLIP (clip_model/) and a tiny untrained HopaDIFF checkpoint for the clip's labels (model.pt)."""
    import torch
    from filelock import FileLock
    from tiny import tiny_model_config

    import hopadiff
    from hopadiff.config import Config
    from hopadiff.features.tiny import make_tiny_clip
    from hopadiff.synth.video import write_video_dataset

    # Built once per test run and shared by the xdist workers (read-only for every test): the
    # workers' base temp folders share a parent of this run's own; the lock makes the others
    # wait for the first. Without xdist, this run's base temp folder.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "node_assets"
    with FileLock(str(shared / "node_assets.lock")):
        if not (root / "model.pt").exists():
            labels = write_video_dataset(root / "clip", clips=1, frames=60, persons=3, fps=10)["classes"]
            make_tiny_clip(root / "clip_model")
            cfg = Config(model=tiny_model_config(feature_dim=24, num_classes=len(labels)))
            torch.manual_seed(0)  # the same untrained weights in every run
            model = hopadiff.HopaDIFF(cfg.model)
            hopadiff.save_checkpoint(root / ".model.pt.partial", model, cfg, labels)
            os.replace(root / ".model.pt.partial", root / "model.pt")  # complete, or not there
    return root


@pytest.fixture
def dds_client(node_assets, ros_env):
    """``make(env=ros_env, t0=..., reliable_images=...)`` -> a RhasClient on the domain of ``env``;
    closed after the test."""
    from rhas_client import RhasClient

    made = []

    def make(env=ros_env, **kw):
        made.append(RhasClient(node_assets / "clip", int(env["ROS_DOMAIN_ID"]), **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny random CLIP and BLIP-2 saved once per test session, loaded by path like real weights."""
    from hopadiff.features.tiny import make_tiny_blip2, make_tiny_clip

    root = tmp_path_factory.mktemp("tiny_models")
    make_tiny_clip(root / "clip")
    make_tiny_blip2(root / "blip2")
    return {"clip": root / "clip", "blip2": root / "blip2"}


# The longest test files first, so that the xdist workers (one file each at a time) start them
# early and the short files fill the gaps: longest-processing-time-first scheduling.
LONG_FIRST = (
    "test_extract_bags.py",
    "test_bag.py",
    "test_node_robot_stack.py",
    "test_node_dds.py",
    "test_ros2_cli.py",
    "test_node_modes.py",
    "test_launch_signals.py",
    "test_walkthrough.py",
    "test_node_adversarial.py",
    "test_node_lifecycle_time.py",
    "test_launch_params.py",
    "test_learning.py",
    "test_training.py",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.path.name
        return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: the order within a file is kept
    # Opt-in: tests whose cheaper variant runs by default (RHAS_SLOW_TESTS=1 runs them too).
    if os.environ.get("RHAS_SLOW_TESTS") != "1":
        skip = pytest.mark.skip(reason="slow, opt-in (RHAS_SLOW_TESTS=1); a cheaper variant runs by default")
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(skip)
