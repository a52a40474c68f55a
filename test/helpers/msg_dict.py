"""Convert ROS 2 Python messages to plain dicts (rosidl_runtime_py is not on PyPI)."""

from __future__ import annotations

from typing import Any


def to_dict(msg: Any) -> Any:
    """Recursively turn a message (or list of messages) into dicts, lists and scalars."""
    if isinstance(msg, list | tuple):
        return [to_dict(m) for m in msg]
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: to_dict(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if hasattr(msg, "tolist"):  # numpy / array.array for numeric sequences
        return msg.tolist()
    return msg
