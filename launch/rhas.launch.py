"""Start rhas_node as a lifecycle node, configure it, and activate it once configure succeeded.

ros2 launch rhas_ros rhas.launch.py checkpoint:=/path/model.pt image_topic:=/camera/image_raw

Activation follows the first successful configure only: a later `ros2 lifecycle set /rhas_node
deactivate` stays inactive. A configure that fails (missing checkpoint, ...) leaves the node
unconfigured and logs the reason; the launch keeps running so that the parameter can be fixed
(`ros2 param set`) and the node configured by hand.
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

ARGUMENTS = {
    "params_file": (PathJoinSubstitution([FindPackageShare("rhas_ros"), "config", "rhas.yaml"]), "node parameters"),
    "checkpoint": ("", "HopaDIFF checkpoint (.pt)"),
    "backbone": ("blip2", "blip2 | clip (must match the checkpoint)"),
    "backbone_model": ("", "hub name or local folder of the backbone ('' = paper default)"),
    "detector": ("hog", "hog | full_frame | grounding_dino | external (boxes on the persons topic)"),
    "device": ("auto", "auto | cpu | cuda | cuda:N"),
    "precision": ("fp32", "fp32 | bf16 | fp16"),
    "image_topic": ("image", "camera image topic"),
    "text_topic": ("referring_text", "referring text topic"),
    "namespace": ("", "namespace of the node"),
    "use_sim_time": ("false", "use /clock (bags, simulation)"),
    "log_level": ("info", "debug | info | warn | error"),
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


def generate_launch_description():
    args = [
        DeclareLaunchArgument(name, default_value=default, description=desc)
        for name, (default, desc) in ARGUMENTS.items()
    ]
    cfg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    node = LifecycleNode(
        package="rhas_ros",
        executable="rhas_node",
        name="rhas_node",
        namespace=cfg["namespace"],
        output="screen",
        parameters=[
            cfg["params_file"],
            {
                "checkpoint": cfg["checkpoint"],
                "backbone": cfg["backbone"],
                "backbone_model": cfg["backbone_model"],
                "detector": cfg["detector"],
                "device": cfg["device"],
                "precision": cfg["precision"],
                "use_sim_time": ParameterValue(cfg["use_sim_time"], value_type=bool),
                "autostart": False,  # this launch file drives the transitions
            },
        ],
        remappings=[
            ("image", cfg["image_topic"]),
            ("image/compressed", [cfg["image_topic"], "/compressed"]),
            ("referring_text", cfg["text_topic"]),
        ],
        arguments=["--ros-args", "--log-level", cfg["log_level"]],
    )
    configure = transition(node, Transition.TRANSITION_CONFIGURE)
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
    return LaunchDescription(
        [
            *args,
            node,
            activate_after_first_configure(node),
            configure,
            behavior,
            configure_behavior,
            activate_after_first_configure(behavior, condition=IfCondition(cfg["behavior"])),
        ]
    )
