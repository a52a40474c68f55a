"""The graph questions `ros2 node list`, `param get`, `topic info`/`list` and `lifecycle get` ask,
from an rclpy node in the test's own process: no CLI start-up and no fixed spin time per question
(each `ros2 ... --no-daemon --spin-time 3` cost 4-5 s). The `ros2` CLI itself is tested by
test_ros2_cli.py with the README's commands."""

from __future__ import annotations

import os
import time

import rclpy
from lifecycle_msgs.srv import GetState
from rcl_interfaces.srv import GetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import parameter_value_to_python


def local_node(name: str, domain_id: int):
    """An rclpy node in its own context on ``domain_id`` (localhost discovery) and an executor
    spinning it: what the tests' in-process DDS clients stand on."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # read when the context starts
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node(name, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return context, node, executor


class GraphProbe:
    def __init__(self, domain_id: int):
        self.context, self.node, self.executor = local_node("graph_probe", domain_id)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def until(self, ask, timeout: float = 60.0):
        """Spin until ``ask()`` returns something truthy (returned), or None after ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = ask()
            if got:
                return got
            self.executor.spin_once(timeout_sec=0.1)
        return None

    def node_names(self) -> list[str]:
        return [(ns.rstrip("/") + "/" + name) for name, ns in self.node.get_node_names_and_namespaces()]

    def topics(self) -> list[str]:
        return [name for name, _ in self.node.get_topic_names_and_types()]

    def _call(self, srv_type, service: str, request, timeout: float = 20.0):
        client = self.node.create_client(srv_type, service)
        try:
            if not self.until(lambda: client.service_is_ready(), timeout):
                return None
            future = client.call_async(request)
            self.executor.spin_until_future_complete(future, timeout_sec=timeout)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def param(self, node_name: str, name: str):
        res = self._call(GetParameters, f"{node_name}/get_parameters", GetParameters.Request(names=[name]))
        return None if res is None or not res.values else parameter_value_to_python(res.values[0])

    def lifecycle_state(self, node_name: str) -> str | None:
        res = self._call(GetState, f"{node_name}/get_state", GetState.Request())
        return None if res is None else res.current_state.label
