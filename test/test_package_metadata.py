"""Package metadata is consistent: console scripts, data_files, package.xml dependencies."""

from __future__ import annotations

import ast
import importlib
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import REPO

# Top-level import name -> rosdep key declared in package.xml.
ROSDEP_KEYS = {
    "rclpy": "rclpy",
    "rhas_msgs": "rhas_msgs",
    "builtin_interfaces": "builtin_interfaces",
    "std_msgs": "std_msgs",
    "std_srvs": "std_srvs",
    "sensor_msgs": "sensor_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "lifecycle_msgs": "lifecycle_msgs",
    "rcl_interfaces": "rcl_interfaces",
    "ament_index_python": "ament_index_python",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "cv_bridge": "cv_bridge",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "einops": "python3-einops-pip",
    "torch": "python3-torch",
    "transformers": "python3-transformers-pip",
    "tokenizers": "python3-transformers-pip",  # installed with transformers
    "huggingface_hub": "python3-transformers-pip",  # installed with transformers
    "PIL": "python3-pil",  # the demo's animated GIF
    "vision_msgs": "vision_msgs",
    "hri_msgs": "hri_msgs",
    "diagnostic_updater": "diagnostic_updater",
    "rosbags": "python3-rosbags-pip",  # rhas_bag, hopadiff-extract from bags
    "onnxruntime": "python3-onnxruntime-pip",  # inference_engine onnxruntime
}
TRAINING_EXTRAS = {"tensorboard"}  # imported by hopadiff-train only; setup.py extras_require["train"]
EXPORT_EXTRAS = {"onnx", "onnxscript"}  # the onnxruntime engine's export only; extras_require["export"]
# The Python rosdep keys package.xml may use: present in ros/rosdistro rosdep/python.yaml (checked at
# commit 662921b, 2026-08-22; python3-transformers, python3-einops and python3-tensorboard are NOT
# keys there, only their -pip variants; mcap-ros2-support is a key there under that name).
ROSDISTRO_PYTHON_KEYS = {
    "python3-numpy", "python3-opencv", "python3-scipy", "python3-yaml", "python3-tqdm", "python3-einops-pip",
    "python3-torch", "python3-transformers-pip", "python3-pil", "python3-pytest", "python3-pytest-xdist",
    "python3-hypothesis", "python3-ruff-pip", "python3-tensorboard-pip", "python3-rosbags-pip", "mcap-ros2-support",
    "python3-onnxruntime-pip",  # checked in the rosdistro mirror on 2026-12-06
}  # fmt: skip
OWN = {"rhas_ros", "hopadiff"}
SHIPPED_DIRS = ["rhas_ros", "hopadiff", "launch"]


def _setup_kwargs() -> dict:
    """Evaluate setup.py's setup(...) keyword arguments without running setuptools."""
    import setuptools

    captured: dict = {}
    real = setuptools.setup
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        code = compile((REPO / "setup.py").read_text(), str(REPO / "setup.py"), "exec")
        cwd = Path.cwd()
        os.chdir(REPO)
        try:
            exec(code, {"__name__": "__main__", "__file__": str(REPO / "setup.py")})
        finally:
            os.chdir(cwd)
    finally:
        setuptools.setup = real
    return captured


def _package_xml():
    return ET.parse(REPO / "package.xml").getroot()


def test_package_xml_is_format_3_and_names_the_package():
    root = _package_xml()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "rhas_ros"
    assert root.find("export/build_type").text == "ament_python"
    msgs = ET.parse(REPO / "rhas_msgs" / "package.xml").getroot()
    assert msgs.findtext("name") == "rhas_msgs"
    assert msgs.find("export/build_type").text == "ament_cmake"


def test_console_scripts_resolve_to_callables():
    scripts = _setup_kwargs()["entry_points"]["console_scripts"]
    for spec in scripts:
        name, target = (s.strip() for s in spec.split("="))
        module, func = target.split(":")
        obj = importlib.import_module(module)
        for part in func.split("."):
            obj = getattr(obj, part)
        assert callable(obj), f"console script {name} -> {target} is not callable"


def test_data_files_exist():
    for dest, files in _setup_kwargs()["data_files"]:
        assert dest.startswith("share/"), dest
        for f in files:
            assert (REPO / f).is_file(), f"data_files entry {f} (-> {dest}) is missing"
    dests = {d for d, _ in _setup_kwargs()["data_files"]}
    assert {"share/ament_index/resource_index/packages", "share/rhas_ros"} <= dests


def _imported_top_level_modules() -> dict[str, str]:
    found: dict[str, str] = {}
    for d in SHIPPED_DIRS:
        for path in sorted((REPO / d).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for n in names:
                    found.setdefault(n.split(".")[0], str(path.relative_to(REPO)))
    return found


# ROS packages without a release for Kilted, imported only by the feature that needs them.
OPTIONAL_ROS = {"hri_msgs"}


def test_package_xml_declares_every_third_party_import():
    declared = {e.text.strip() for tag in ("depend", "exec_depend", "build_depend") for e in _package_xml().iter(tag)}
    for module, where in _imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in OWN:
            continue
        if module in TRAINING_EXTRAS | EXPORT_EXTRAS:
            continue
        if module in OPTIONAL_ROS:  # imported only where its feature runs; configure names what is missing
            assert module not in declared, f"{module} has no release on this distro: rosdep would fail on it"
            continue
        key = ROSDEP_KEYS.get(module)
        assert key is not None, f"{where} imports {module!r}: add its rosdep key to ROSDEP_KEYS and package.xml"
        assert key in declared, f"{where} imports {module!r} but package.xml lacks <exec_depend>{key}"


def test_hopadiff_never_imports_ros():
    """hopadiff is ROS-free (dependency direction rhas_ros -> hopadiff)."""
    ros = {"rclpy", "rhas_msgs", "std_msgs", "sensor_msgs", "builtin_interfaces", "cv_bridge", "launch"}
    for path in (REPO / "hopadiff").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not {m.split(".")[0] for m in mods} & ros, f"{path} imports ROS"


def test_every_python_rosdep_key_exists_in_rosdistro():
    """A key rosdep does not know fails `rosdep install` on every distro (python3-transformers did)."""
    keys = {e.text.strip() for tag in ("exec_depend", "test_depend", "depend") for e in _package_xml().iter(tag)}
    unknown = sorted(k for k in keys if k.startswith("python3-") and k not in ROSDISTRO_PYTHON_KEYS)
    assert not unknown, f"not rosdep keys (ros/rosdistro rosdep/python.yaml): {unknown}"


def test_training_extras_are_an_extra():
    assert _setup_kwargs()["extras_require"]["train"] == sorted(TRAINING_EXTRAS)
    assert _setup_kwargs()["extras_require"]["export"] == sorted(EXPORT_EXTRAS)


def test_the_sros2_policy_lets_only_the_operator_set_the_text_and_covers_the_node():
    """config/sros2_policy.xml (format 0.2.0: policy/enclaves/enclave[path]/profiles/profile[ns, node]/
    topics[publish|subscribe]/topic, services[reply|request]/service): only /rhas/operator may publish
    referring_text, and the node's profile has every topic it uses by default."""
    from rhas_ros.core.settings import Settings

    root = ET.parse(REPO / "config" / "sros2_policy.xml").getroot()
    assert root.tag == "policy" and root.get("version") == "0.2.0"
    grants: dict[str, dict[str, set]] = {}
    for enclave in root.find("enclaves"):
        assert enclave.tag == "enclave" and enclave.get("path").startswith("/rhas/")
        for profile in enclave.find("profiles"):
            assert profile.tag == "profile" and profile.get("ns") and profile.get("node")
            for group in profile:
                assert group.tag in ("topics", "services") and len(group) > 0
                for kind, value in group.attrib.items():
                    assert kind in ("publish", "subscribe", "reply", "request") and value == "ALLOW"
                    grants.setdefault(enclave.get("path"), {}).setdefault(kind, set()).update(e.text for e in group)
    assert [p for p, g in grants.items() if "referring_text" in g.get("publish", set())] == ["/rhas/operator"]
    s, node = Settings(), grants["/rhas/rhas_node"]
    assert {s.image_topic, s.text_topic, s.persons_topic, s.hri_bodies_topic} <= node["subscribe"]
    assert {s.segments_topic, s.labels_topic, s.tracks_topic, s.detections_topic, "/diagnostics"} <= node["publish"]
    assert {"~/change_state", "~/set_parameters"} <= node["reply"]
