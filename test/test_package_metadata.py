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
    "einops": "python3-einops",
    "torch": "python3-torch",
    "transformers": "python3-transformers",
    "tokenizers": "python3-transformers",  # installed with transformers
    "huggingface_hub": "python3-transformers",  # installed with transformers
    "tensorboard": "python3-tensorboard",
    "PIL": "python3-pil",  # the demo's animated GIF
}
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


def test_package_xml_declares_every_third_party_import():
    declared = {e.text.strip() for tag in ("depend", "exec_depend", "build_depend") for e in _package_xml().iter(tag)}
    for module, where in _imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in OWN:
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
