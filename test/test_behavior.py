"""rhas_behavior: its rules file checked at configure (clear reasons, never a crash), the shipped
rules, and the node over DDS next to rhas_node: a rule fires for every action the node reports for
the person, soon after the segment arrives, and never for an action that is not reported."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import rclpy
import torch
import yaml
from conftest import REPO
from dds_processes import spawn
from node_process import node_args
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from std_msgs.msg import String

import hopadiff
from hopadiff.synth.vocab import VIDEO_ACTIONS as ACTIONS
from rhas_msgs.msg import ActionSegmentArray
from rhas_ros.behavior import BehaviorNode, RulesError, check_labels, load_rules

RULE = {"name": "r", "action": "falling", "publish": {"topic": "speech", "text": "hi"}}


def write(tmp_path, doc, name="rules.yaml"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ("rules: [\n  - {name: a", "does not parse"),
        ({"rules": []}, "non-empty list under 'rules:'"),
        ({"something": 1}, "non-empty list under 'rules:'"),
        ({"rules": [dict(RULE, colour="red")]}, "unknown key(s) colour"),
        ({"rules": [{k: v for k, v in RULE.items() if k != "action"}]}, "'action' must name an action label"),
        ({"rules": [dict(RULE, call={"service": "x"})]}, "exactly one response"),
        ({"rules": [dict(RULE, person="everyone")]}, "use 'target', 'any' or a person id"),
        ({"rules": [dict(RULE, min_confidence=2)]}, "min_confidence must be in [0, 1]"),
        ({"rules": [dict(RULE, debounce="soon")]}, "must be numbers"),
        ({"rules": [RULE, RULE]}, "the name is used twice"),
        ({"rules": [dict(RULE, publish={"topic": "speech"})]}, "'publish' needs 'topic' and 'text'"),
    ],
)
def test_malformed_rules_are_refused_with_the_reason(tmp_path, doc, reason):
    with pytest.raises(RulesError, match=None) as e:
        load_rules(write(tmp_path, doc))
    assert reason in str(e.value) and "rules.yaml" in str(e.value)


def test_missing_file_and_unknown_label():
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules("/nonexistent/rules.yaml")
    rules = load_rules(REPO / "config" / "behavior.yaml")
    with pytest.raises(RulesError, match="unknown action 'falling'; the node's labels are walking, running"):
        check_labels(rules, ["walking", "running"])


def test_shipped_rules_fit_rhas133_and_the_demo():
    rules = load_rules(REPO / "config" / "behavior.yaml")
    assert {r.action for r in rules} == {"falling", "waving", "sitting"}
    rhas133 = (REPO / "hopadiff" / "resources" / "rhas133_classes.txt").read_text().split()
    check_labels(rules, rhas133)
    check_labels(rules, list(ACTIONS))


def test_configure_fails_cleanly_on_a_bad_rules_file_or_no_label_set(tmp_path, ros_env, monkeypatch):
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(k, ros_env[k])
    rclpy.init()
    try:
        bad = write(tmp_path, "rules: [", "bad.yaml")
        node = BehaviorNode(namespace="in_process_test", parameter_overrides=[Parameter("rules_file", value=str(bad))])
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        node.destroy_node()
        node = BehaviorNode(
            namespace="in_process_test",
            parameter_overrides=[Parameter("labels_timeout", value=0.5)],  # no rhas_node on this namespace
        )
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.timeline is None
        node.destroy_node()
    finally:
        rclpy.shutdown()


def always(assets, label: str) -> Path:
    """A checkpoint whose decoders say ``label`` on every frame (output layer: zero weights, a
    bias of +8 for that class, -8 for the others): which actions rhas_node reports is then known."""
    model, cfg, labels, _ = hopadiff.load_checkpoint(assets / "model.pt")
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.startswith("decoder") and name.endswith("conv_out"):
                module.weight.zero_()
                module.bias.fill_(-8.0)
                module.bias[:, labels.index(label)] = 8.0
    path = assets / f"always_{label}.pt"
    hopadiff.save_checkpoint(path, model, cfg, labels)
    return path


@pytest.mark.dds
def test_rules_fire_for_reported_actions_only_over_dds(node_assets, ros_env, dds_client, tmp_path):
    """One rule per label (no thresholds), rhas_node reporting "falling" on every frame: the only
    rule that fires is falling's, within a second of its first segment; and the README's
    20-line behaviour node (rhas_ros/examples/fall_watcher.py) says its line."""
    labels = list(ACTIONS)
    rules = [
        {"name": a, "action": a, "person": "any", "min_confidence": 0.0, "debounce": 0.0,
         "publish": {"topic": "said", "text": a}}
        for a in labels
    ]  # fmt: skip
    rules.append({"name": "call", "action": "waving", "call": {"service": "wave_service"}})  # never reported
    rules_file = write(tmp_path, {"rules": rules})
    env = dict(ros_env, OMP_NUM_THREADS="1")
    behavior_args = ["-m", "rhas_ros.behavior", "--ros-args", "-p", f"rules_file:={rules_file}",
                     "-p", "autostart:=true", "-p", "labels_timeout:=60.0"]  # fmt: skip
    example = ["-m", "rhas_ros.examples.fall_watcher"]
    node_cmd = node_args(node_assets, checkpoint=str(always(node_assets, "falling")))
    with spawn(node_cmd, env) as node, spawn(behavior_args, env) as behavior, spawn(example, env) as watcher:
        c = dds_client()
        said, seen = set(), set()  # texts said by the rules / labels seen in a segment
        c.node.create_subscription(String, "said", lambda m: said.add(m.data), 100)
        c.node.create_subscription(ActionSegmentArray, "action_segments", lambda m: seen.update(
            s.label for s in m.segments if s.confidence > 0), 100)  # fmt: skip
        c.wait_for_node()
        # rhas_behavior and the example subscribe (volatile) before any segment is published: on a
        # loaded machine their start-up took longer than the whole clip, and they heard nothing.
        listening = lambda: c.node.count_subscribers("/action_segments") >= 4  # noqa: E731  (this client's two too)
        assert c.spin_until(listening, 180), "rhas_behavior and fall_watcher subscribe"  # three processes start
        c.send_text(c.texts[0])
        c.play(0, 48)
        c.spin_for(2.0)
        outputs = []
        for proc in (behavior, watcher):
            proc.send_signal(signal.SIGINT)
            try:
                outputs.append(proc.communicate(timeout=60)[1])
            except subprocess.TimeoutExpired:
                outputs.append("(did not exit within 60 s of SIGINT)")
        b_err, w_err = outputs
        node.send_signal(signal.SIGINT)
    assert behavior.returncode == 0, b_err[-2000:]
    assert seen, "rhas_node published no segment"
    assert said == seen, (sorted(said), sorted(seen), b_err[-1500:])
    assert said == {"falling"}, "only the reported action's rule fires"
    assert "rule 'falling' fired: person" in b_err
    assert "is falling (p=" in w_err and watcher.returncode == 0, (watcher.returncode, w_err[-1500:])


def test_readme_shows_the_example_and_the_docs_the_shipped_rules():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Writing a behaviour node") :]
    code = section[section.index("```python\n") + 10 :]
    assert code[: code.index("```")] == (REPO / "rhas_ros" / "examples" / "fall_watcher.py").read_text()
    assert "docs/behaviour.md" in section[: section.index("\n## ")]
    docs = (REPO / "docs" / "behaviour.md").read_text()
    shown = docs[docs.index("```yaml\n") + 8 :]
    assert yaml.safe_load(shown[: shown.index("```")]) == yaml.safe_load(
        (REPO / "config" / "behavior.yaml").read_text()
    )
