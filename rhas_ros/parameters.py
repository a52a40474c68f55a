"""rhas_node parameters: ROS declarations (with descriptors) generated from the one settings
dataclass, rhas_ros.core.settings.Settings, and the command line's --help."""

from __future__ import annotations

import difflib
from dataclasses import fields

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from .core.settings import DESCRIPTIONS, Settings

USAGE = """usage: rhas_node [--ros-args -p NAME:=VALUE ... --params-file FILE -r FROM:=TO ...]

Lifecycle node: segments the actions of the person a referring text names (see README.md).
Start it with `ros2 launch rhas_ros rhas.launch.py checkpoint:=...`, or directly with
`rhas_node --ros-args --params-file config/rhas.yaml -p checkpoint:=best.pt -p autostart:=true`.

parameters (config/rhas.yaml has them all with their defaults):
"""


# Parameters that ROS libraries declare on the node themselves: QoS overrides (rclpy), the
# diagnostics updater's.
ROS_OWNED = ("qos_overrides.", "diagnostic_updater.")


def help_text() -> str:
    width = max(map(len, DESCRIPTIONS))
    return USAGE + "\n".join(f"  {k:<{width}}  {v}" for k, v in DESCRIPTIONS.items())


def descriptor(f) -> ParameterDescriptor:
    m = f.metadata
    desc = ParameterDescriptor(
        description=m["description"] + ("" if m["dynamic"] else " (read at configure)"), read_only=False
    )
    if m["choices"]:
        desc.additional_constraints = "one of: " + ", ".join(m["choices"])
    if m["range"] is not None:
        lo, hi = m["range"]
        if isinstance(lo, float):
            desc.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
        else:
            desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=1)]
    return desc


def declare_parameters(node) -> None:
    for f in fields(Settings):
        node.declare_parameter(f.name, list(f.default) if isinstance(f.default, tuple) else f.default, descriptor(f))


def read_settings(node) -> Settings:
    """The current parameter values (checked when resolved)."""
    values = {f.name: node.get_parameter(f.name).value for f in fields(Settings)}
    return Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def unknown_overrides(node) -> list[str]:
    """Warnings for parameters given (params file, command line) that rhas_node does not have: a
    misspelled one is otherwise ignored silently."""
    declared = [f.name for f in fields(Settings)]
    out = []
    for name in sorted(set(node._parameter_overrides) - set(declared) - {"use_sim_time"}):
        if name.startswith(ROS_OWNED):
            continue
        close = difflib.get_close_matches(name, declared, n=1)
        out.append(f"{name!r} is not a parameter of rhas_node and is ignored" + (f" (did you mean {close[0]!r}?)"
                                                                                 if close else ""))  # fmt: skip
    return out
