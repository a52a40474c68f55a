"""rhas_node parameters: ROS declarations (with descriptors) generated from the one settings
dataclass, rhas_ros.core.settings.Settings."""

from __future__ import annotations

from dataclasses import fields

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from .core.settings import DESCRIPTIONS, DYNAMIC, Settings, check, validate

__all__ = ["DESCRIPTIONS", "DYNAMIC", "Settings", "declare_parameters", "read_settings", "validate"]


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
        node.declare_parameter(f.name, f.default, descriptor(f))


def read_settings(node) -> Settings:
    """Current parameter values, validated; ValueError names the bad parameter."""
    s = Settings(**{f.name: node.get_parameter(f.name).value for f in fields(Settings)})
    check(s)
    return s
