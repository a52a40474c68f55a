"""rhas_msgs built by cmake into the venv travel between two OS processes over real DDS."""

from __future__ import annotations

import json

import pytest
from dds_processes import HELPERS, spawn
from msg_dict import to_dict
from segment_array_pubsub import sample_message

pytestmark = pytest.mark.dds


def test_action_segment_array_crosses_processes(ros_env):
    script = str(HELPERS / "segment_array_pubsub.py")
    with spawn([script, "sub", "30"], ros_env) as sub, spawn([script, "pub"], ros_env):
        out, err = sub.communicate(timeout=60)
    assert sub.returncode == 0, f"subscriber got nothing (rc={sub.returncode}): {err[-2000:]}"
    received = json.loads(out.strip().splitlines()[-1])
    expected = to_dict(sample_message())
    # Floats cross as float32: the sample values are exactly representable.
    assert received == expected
    assert len(received["segments"]) == 3
    assert received["segments"][2]["label"] == "pointing at — ünïcode"
