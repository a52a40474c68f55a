"""Start rhas_node as a lifecycle node, configure it, and activate it once configure succeeded.

ros2 launch rhas_ros rhas.launch.py checkpoint:=/path/model.pt image_topic:=/camera/image_raw
ros2 launch rhas_ros rhas.launch.py params_file:=my_robot.yaml

Parameters come from ``params_file`` (default: the installed config/rhas.yaml); a launch argument
among ``checkpoint backbone backbone_model detector device precision use_sim_time`` overrides the
file only when it is given on the command line (left out, the file's value, or the node's
default, stands).

Activation follows the first successful configure only: a later `ros2 lifecycle set /rhas_node
deactivate` stays inactive. A configure that fails (missing checkpoint, ...) leaves the node
unconfigured and logs the reason; the launch keeps running so that the parameter can be fixed
(`ros2 param set`) and the node configured by hand.

Stopping: SIGTERM (docker stop, systemd) and SIGHUP (a closed terminal) do what Ctrl-C does: the
nodes get SIGINT, close their open segments and exit, and launch waits for them (``ros2 launch``
alone would exit at once on SIGTERM and leave the node running without its parent).
"""

import signal

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import Shutdown, matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

# Launch arguments that override the params file when given ('' = not given: the file decides).
OVERRIDES = {
    "checkpoint": "HopaDIFF checkpoint (.pt)",
    "backbone": "blip2 | clip (must match the checkpoint)",
    "backbone_model": "hub name or local folder of the backbone",
    "detector": "hog | full_frame | grounding_dino | external (boxes on the persons topic)",
    "device": "auto | cpu | cuda | cuda:N",
    "precision": "fp32 | bf16 | fp16",
    "use_sim_time": "true: use /clock (bags, simulation)",
}
ARGUMENTS = {
    "params_file": (PathJoinSubstitution([FindPackageShare("rhas_ros"), "config", "rhas.yaml"]), "node parameters"),
    **{name: ("", f"{desc} (overrides params_file when given)") for name, desc in OVERRIDES.items()},
    "image_topic": ("image", "camera image topic"),
    "text_topic": ("referring_text", "referring text topic"),
    "namespace": ("", "namespace of the node"),
    "log_level": ("info", "debug | info | warn | error"),
    "enclave": ("", "SROS2 enclave of the node, e.g. /rhas/rhas_node ('' = none; README, Privacy and access)"),
    "behavior": ("false", "also start rhas_behavior (configured once rhas_node is active)"),
    "behavior_rules": (
        PathJoinSubstitution([FindPackageShare("rhas_ros"), "config", "behavior.yaml"]),
        "rhas_behavior's rules file",
    ),
}


def transition(node, transition_id: int) -> EmitEvent:
    """A lifecycle transition request for ``node`` (an action of this launch description)."""
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))


def activate_after_first_configure(node, **kwargs) -> RegisterEventHandler:
    """Activate ``node`` once, when its first configure succeeded: a later deactivate sticks."""
    return RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            handle_once=True,
            entities=[transition(node, Transition.TRANSITION_ACTIVATE)],
        ),
        **kwargs,
    )


def stop_like_ctrl_c(context) -> list:
    """SIGTERM and SIGHUP start launch's orderly shutdown, as SIGINT does (children get SIGINT, then
    SIGTERM after sigterm_timeout, and launch waits). launch handles signals through its
    AsyncSafeSignalManager, which has no public way in: a launch without one (another version)
    keeps its own SIGTERM handling, and this says so."""
    from launch.utilities.signal_management import AsyncSafeSignalManager

    manager = getattr(AsyncSafeSignalManager, "_AsyncSafeSignalManager__current", None)
    if manager is None:
        print("[rhas.launch.py] this launch version's signal handling is not known: stop it with Ctrl-C (SIGINT)")
        return []
    stopping = []

    def stop(signum) -> None:
        name = signal.Signals(signum).name
        if stopping:
            return  # a second signal while the nodes close: the shutdown already runs
        stopping.append(name)
        context.emit_event_sync(Shutdown(reason=f"{name}: stopping as for ctrl-c"))

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)  # a Python-level handler: the signal is noted, not fatal, and the
        manager.handle(sig, stop)  # manager's wakeup descriptor hands it to ``stop`` in launch's loop
    return []


def nodes(context) -> list:
    cfg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    given = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    overrides = {name: value for name, value in given.items() if value != ""}
    if "use_sim_time" in overrides:
        overrides["use_sim_time"] = overrides["use_sim_time"].lower() in ("true", "1", "yes")
    node = LifecycleNode(
        package="rhas_ros",
        executable="rhas_node",
        name="rhas_node",
        namespace=cfg["namespace"],
        output="screen",
        parameters=[cfg["params_file"], {**overrides, "autostart": False}],  # this file drives the transitions
        remappings=[
            ("image", cfg["image_topic"]),
            ("image/compressed", [cfg["image_topic"], "/compressed"]),
            ("referring_text", cfg["text_topic"]),
        ],
        arguments=["--ros-args", "--log-level", cfg["log_level"]],
        ros_arguments=["--enclave", LaunchConfiguration("enclave").perform(context)]
        if LaunchConfiguration("enclave").perform(context)
        else [],
    )
    # The example behaviour node: configured once rhas_node is active (it needs the latched label
    # set to check its rules), activated after its own first configure.
    behavior = LifecycleNode(
        package="rhas_ros",
        executable="rhas_behavior",
        name="rhas_behavior",
        namespace=cfg["namespace"],
        output="screen",
        parameters=[{"rules_file": cfg["behavior_rules"], "autostart": False}],
        arguments=["--ros-args", "--log-level", cfg["log_level"]],
        condition=IfCondition(cfg["behavior"]),
    )
    configure_behavior = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            goal_state="active",
            handle_once=True,
            entities=[transition(behavior, Transition.TRANSITION_CONFIGURE)],
        ),
        condition=IfCondition(cfg["behavior"]),
    )
    return [
        node,
        activate_after_first_configure(node),
        transition(node, Transition.TRANSITION_CONFIGURE),
        behavior,
        configure_behavior,
        activate_after_first_configure(behavior, condition=IfCondition(cfg["behavior"])),
    ]


def generate_launch_description():
    args = [
        DeclareLaunchArgument(name, default_value=default, description=desc)
        for name, (default, desc) in ARGUMENTS.items()
    ]
    return LaunchDescription([*args, OpaqueFunction(function=stop_like_ctrl_c), OpaqueFunction(function=nodes)])
