"""rhas_behavior: an example robot behaviour node that reacts to a person's actions.

A lifecycle node driven by a rules file (config/behavior.yaml; format in the README): each rule
names an action (a label of the checkpoint rhas_node runs), whose actions count (the referred
target or anyone), a minimum confidence and duration, a debounce time, and a response —
publish a std_msgs/String on a topic (a speech topic: "Are you all right?") or call a
std_srvs/Trigger service. Built on rhas_ros.client.ActionTimeline; it never loads the model.

configure: reads and checks the rules, waits for rhas_node's latched label set (labels_timeout)
and refuses a rule whose action is not one of the labels; activate: subscribes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.wait_for_message import wait_for_message
from std_msgs.msg import String
from std_srvs.srv import Trigger

from rhas_msgs.msg import ActionLabels

from . import lifecycle, qos
from .client import ANY, TARGET, ActionTimeline, Segment

RULE_KEYS = {"name", "action", "person", "min_confidence", "min_duration", "debounce", "publish", "call"}


class RulesError(ValueError):
    """The rules file is missing, does not parse, or a rule is wrong; the message says where."""


@dataclass
class Rule:
    name: str
    action: str
    person: str | int = TARGET
    min_confidence: float = 0.5
    min_duration: float = 0.0
    debounce: float = 5.0
    publish_topic: str = ""
    publish_text: str = ""
    call_service: str = ""


def load_rules(path: str | Path) -> list[Rule]:
    """Parse and check a rules file (labels are checked later, against the node's label set)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RulesError(f"cannot read rules file {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise RulesError(f"rules file {path} does not parse: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise RulesError(f"rules file {path}: expected a non-empty list under 'rules:'")
    rules, names = [], set()
    for i, raw in enumerate(doc["rules"]):
        where = f"{path}: rule {i + 1}"
        if not isinstance(raw, dict):
            raise RulesError(f"{where}: expected a mapping, got {type(raw).__name__}")
        unknown = set(raw) - RULE_KEYS
        if unknown:
            raise RulesError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(RULE_KEYS))}"
            )
        name = str(raw.get("name", f"rule{i + 1}"))
        where = f"{path}: rule {name!r}"
        if name in names:
            raise RulesError(f"{where}: the name is used twice")
        names.add(name)
        if not isinstance(raw.get("action"), str) or not raw["action"]:
            raise RulesError(f"{where}: 'action' must name an action label")
        person = raw.get("person", TARGET)
        if person not in (TARGET, ANY) and not (isinstance(person, int) and not isinstance(person, bool)):
            raise RulesError(f"{where}: person {person!r}: use 'target', 'any' or a person id")
        try:
            nums = {k: float(raw.get(k, default)) for k, default in
                    (("min_confidence", 0.5), ("min_duration", 0.0), ("debounce", 5.0))}  # fmt: skip
        except (TypeError, ValueError) as e:
            raise RulesError(f"{where}: min_confidence, min_duration and debounce must be numbers ({e})") from e
        if not 0.0 <= nums["min_confidence"] <= 1.0 or nums["min_duration"] < 0 or nums["debounce"] < 0:
            raise RulesError(f"{where}: min_confidence must be in [0, 1], min_duration and debounce >= 0")
        publish, call = raw.get("publish"), raw.get("call")
        if (publish is None) == (call is None):
            raise RulesError(f"{where}: give exactly one response, 'publish: {{topic, text}}' or 'call: {{service}}'")
        rule = Rule(name, raw["action"], person, **nums)
        if publish is not None:
            if not isinstance(publish, dict) or not publish.get("topic") or "text" not in publish:
                raise RulesError(f"{where}: 'publish' needs 'topic' and 'text'")
            rule.publish_topic, rule.publish_text = str(publish["topic"]), str(publish["text"])
        else:
            if not isinstance(call, dict) or not call.get("service"):
                raise RulesError(f"{where}: 'call' needs 'service' (a std_srvs/Trigger service)")
            rule.call_service = str(call["service"])
        rules.append(rule)
    return rules


def check_labels(rules: list[Rule], labels: list[str]) -> None:
    for r in rules:
        if r.action not in labels:
            raise RulesError(f"rule {r.name!r}: unknown action {r.action!r}; the node's labels are {', '.join(labels)}")


def default_rules_file() -> str:
    here = Path(__file__).resolve().parents[1] / "config" / "behavior.yaml"  # source tree
    if here.exists():
        return str(here)
    from ament_index_python.packages import get_package_share_directory

    return str(Path(get_package_share_directory("rhas_ros")) / "config" / "behavior.yaml")


class BehaviorNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("rhas_behavior", **kwargs)
        self.finalized = False  # the shutdown transition done: the process ends
        d = ParameterDescriptor
        self.declare_parameter("rules_file", "", d(description="rules YAML ('' = the installed config/behavior.yaml)"))
        self.declare_parameter(
            "labels_timeout", 30.0,
            d(description="seconds configure waits for rhas_node's action_labels",
              floating_point_range=[FloatingPointRange(from_value=0.0, to_value=3600.0)]),
        )  # fmt: skip
        self.declare_parameter(
            "horizon_s", 600.0,
            d(description="seconds of camera time the timeline keeps",
              floating_point_range=[FloatingPointRange(from_value=1.0, to_value=86400.0)]),
        )  # fmt: skip
        self.declare_parameter("segments_topic", "action_segments", d(description="rhas_node's segments"))
        self.declare_parameter("labels_topic", "action_labels", d(description="rhas_node's label set (latched)"))
        self.declare_parameter("tracks_topic", "tracked_persons", d(description="rhas_node's tracks and target"))
        self.declare_parameter("autostart", False, d(description="configure and activate at start"))
        self.rules: list[Rule] = []
        self.timeline: ActionTimeline | None = None
        self.fired: list[tuple[str, int]] = []  # (rule, segment id), for tests and diagnostics
        self._last_fired: dict[str, float] = {}
        self._rule_pubs, self._rule_clients, self._rule_subs = {}, {}, []

    def _param(self, name):
        return self.get_parameter(name).value

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            path = self._param("rules_file") or default_rules_file()
            rules = load_rules(path)
            ok, labels_msg = wait_for_message(
                ActionLabels, self, self._param("labels_topic"), qos_profile=qos.latched(),
                time_to_wait=self._param("labels_timeout"),
            )  # fmt: skip
            if not ok:
                raise RulesError(
                    f"no label set on {self._param('labels_topic')} within {self._param('labels_timeout'):g} s "
                    "(is rhas_node active?)"
                )
            check_labels(rules, list(labels_msg.labels))
        except RulesError as e:
            self.get_logger().error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        self.rules = rules
        self.timeline = ActionTimeline(self._param("horizon_s"))
        self.timeline.ingest_labels(labels_msg)
        for rule in rules:
            if rule.publish_topic and rule.publish_topic not in self._rule_pubs:
                self._rule_pubs[rule.publish_topic] = self.create_lifecycle_publisher(
                    String, rule.publish_topic, qos.reliable(), qos_overriding_options=qos.overridable()
                )
            if rule.call_service and rule.call_service not in self._rule_clients:
                self._rule_clients[rule.call_service] = self.create_client(Trigger, rule.call_service)
            self.timeline.on_action_started(
                rule.action, lambda seg, r=rule: self._fire(r, seg), person=rule.person,
                min_confidence=rule.min_confidence, min_duration=rule.min_duration,
            )  # fmt: skip
        self.get_logger().info(f"configured: {len(rules)} rule(s) from {path}: " + ", ".join(
            f"{r.name} ({r.action}, {r.person})" for r in rules))  # fmt: skip
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._rule_subs = self.timeline.attach(
            self, self._param("segments_topic"), self._param("labels_topic"), self._param("tracks_topic")
        )
        self.get_logger().info("active: watching " + self._rule_subs[0].topic_name)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for sub in self._rule_subs:
            self.destroy_subscription(sub)
        self._rule_subs = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for pub in self._rule_pubs.values():
            self.destroy_lifecycle_publisher(pub)
        for client in self._rule_clients.values():
            self.destroy_client(client)
        self._rule_pubs, self._rule_clients, self.rules, self.timeline = {}, {}, [], None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """As rhas_node: finalized means the process ends (rhas_ros.lifecycle.run)."""
        self.finalized = True
        return TransitionCallbackReturn.SUCCESS

    def _fire(self, rule: Rule, seg: Segment) -> None:
        """A rule's action started (qualified): respond, unless the rule fired within its debounce."""
        now = time.monotonic()
        if now - self._last_fired.get(rule.name, -1e18) < rule.debounce:
            return
        self._last_fired[rule.name] = now
        self.fired.append((rule.name, seg.segment_id))
        t0 = seg.start_ns / 1e9
        cause = (
            f"person {seg.person_id} {seg.label!r} (segment {seg.segment_id} r{seg.revision}, from {t0:.1f} s, "
            f"{seg.duration_s:.1f} s so far, p={seg.confidence:.2f})"
        )
        if rule.publish_topic:
            self._rule_pubs[rule.publish_topic].publish(String(data=rule.publish_text))
            self.get_logger().info(
                f"rule {rule.name!r} fired: {cause} -> said {rule.publish_text!r} on {rule.publish_topic}"
            )
        else:
            client = self._rule_clients[rule.call_service]
            if not client.service_is_ready():
                self.get_logger().warning(
                    f"rule {rule.name!r} fired: {cause}, but {rule.call_service} is not available"
                )
                return
            client.call_async(Trigger.Request())
            self.get_logger().info(f"rule {rule.name!r} fired: {cause} -> called {rule.call_service}")


def main(args=None) -> None:
    """Console script: rhas_behavior [--ros-args -p rules_file:=... -p autostart:=true]."""
    lifecycle.run(BehaviorNode, args, name="rhas_behavior")


if __name__ == "__main__":
    sys.exit(main())
