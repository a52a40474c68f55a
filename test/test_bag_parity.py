"""rhas_bag against the live node: the same frames, persons and text played into rhas_node over DDS
(one frame at a time, each after the node has processed the last, so its latest-wins queue drops
nothing) and recorded into a bag for rhas_bag give the same messages."""

from __future__ import annotations

import pytest
import torch
from bags import messages_of, segment_msgs, write_bag
from node_process import SHIPPED_PARAMS, node_params, overrides, rhas_node
from rhas_client import segment_dict
from std_msgs.msg import String

from rhas_msgs.msg import TrackedPersonArray
from rhas_ros.bag.cli import main as rhas_bag
from rhas_ros.conversions import stamp_to_ns

pytestmark = pytest.mark.dds

FRAMES = 48


def same(a, b, tol: float = 1e-6) -> bool:
    """Equal structures, floats within ``tol``."""
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


def test_rhas_bag_gives_the_segments_the_live_node_publishes(node_assets, ros_env, dds_client, tmp_path):
    recorded = []  # what the client publishes, as `ros2 bag record` would have it
    with rhas_node(node_assets, ros_env) as node:
        c = dds_client()
        c.wait_for_node()
        text = c.texts[0]
        c.send_text(text)
        recorded.append(("/referring_text", c.stamp(0) - 50_000_000, String(data=text)))
        for i in range(FRAMES):
            persons, image = c.persons_msg(i, c.stamp(i)), c.image(c.frames[i], c.stamp(i))
            c.persons_pub.publish(persons)
            c.image_pub.publish(image)
            recorded += [("/persons", c.stamp(i), persons), ("/image", c.stamp(i) + 1, image)]
            processed = lambda i=i: c.tracks and stamp_to_ns(c.tracks[-1].header.stamp) == c.stamp(i)  # noqa: E731
            assert c.spin_until(processed, 60), (i, node.log()[-2000:])
        assert c.transition("deactivate")  # the node closes every open segment FINAL
        c.wait_all_final()
        live, live_tracks = [segment_dict(m) for m in c.received], list(c.tracks)
    assert len(live_tracks) == FRAMES, "the node processed every frame"
    bag = write_bag(tmp_path / "recording", recorded)
    threads = torch.get_num_threads()
    try:
        code = rhas_bag([str(bag), "-o", str(tmp_path / "out"), "-q", "--params-file", str(SHIPPED_PARAMS),
                         *overrides(node_params(node_assets))])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    replayed = [segment_dict(m) for m in segment_msgs(tmp_path / "out")]
    assert live and len(replayed) == len(live)
    for i, (a, b) in enumerate(zip(live, replayed, strict=True)):
        assert same(a, b), f"segment message {i}: live {a} != rhas_bag {b}"
    assert messages_of(tmp_path / "out", "/tracked_persons", TrackedPersonArray) == live_tracks
