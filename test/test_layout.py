"""The folder layout is the architecture: these import rules keep it so."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO

PACKAGES = ("rhas_ros", "hopadiff")


def _module_name(path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path) -> set[str]:
    """First-party modules that ``path`` imports (absolute or relative, at any depth of the file)."""
    mod = _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    return {m: {i for i in _imports(p) if i in files and i != m} for m, p in files.items()}


def test_no_import_cycles_between_modules():
    graph = _graph()
    # Importing a package runs its __init__: a module importing ``a.b`` depends on ``a`` too.
    for m, deps in graph.items():
        for d in list(deps):
            parts = d.split(".")
            deps |= {".".join(parts[:k]) for k in range(1, len(parts)) if ".".join(parts[:k]) in graph}
        deps.discard(m)
        deps -= {p for p in deps if m.startswith(p + ".")}  # a package's own __init__ is not a cycle
    seen, stack = set(), []

    def visit(m):
        if m in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(m) :], m]))
        if m in seen:
            return
        stack.append(m)
        for d in sorted(graph[m]):
            visit(d)
        stack.pop()
        seen.add(m)

    for m in sorted(graph):
        visit(m)


def test_dependency_direction():
    graph = _graph()
    for m, deps in graph.items():
        if m.startswith("hopadiff"):
            assert not any(d.startswith("rhas_ros") for d in deps), f"{m} imports rhas_ros"
        if m.startswith("rhas_ros.core"):
            assert not any(d.startswith(("rhas_ros.tools", "rhas_ros.node", "rhas_ros.conversions")) for d in deps), m
        if m.startswith("hopadiff.model"):
            assert not any(d.startswith(("hopadiff.synth", "hopadiff.data", "hopadiff.train")) for d in deps), m


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_core_never_imports_ros():
    loaded = _loaded_after("import rhas_ros.core.pipeline, rhas_ros.core.detectors, rhas_ros.core.debug_image")
    ros = sorted(m for m in loaded if m.split(".")[0] in {"rclpy", "rhas_msgs", "sensor_msgs", "std_msgs"})
    assert not ros, f"the ROS-free core imported {ros}"


def test_hopadiff_reads_bags_and_camera_images_without_ros():
    """Extraction from recordings runs where no ROS is installed: rosbags and numpy, no rclpy."""
    loaded = _loaded_after("import hopadiff.bags, hopadiff.image_codec")
    ros = sorted(m for m in loaded if m.split(".")[0] in {"rclpy", "rhas_msgs", "sensor_msgs", "std_msgs", "rhas_ros"})
    assert not ros and "rosbags.rosbag2" in loaded, ros


def test_tiny_model_builders_do_not_import_data_generators():
    loaded = _loaded_after("import hopadiff.features.tiny")
    assert "hopadiff.synth.vocab" in loaded
    generators = sorted(m for m in loaded if m in {"hopadiff.synth.features", "hopadiff.synth.video"})
    assert not generators, generators


def test_files_found_relative_to_moved_modules_exist():
    """Modules that find data next to themselves broke silently when they moved (the demo's config)."""
    from hopadiff.synth.vocab import RHAS133_CLASSES
    from rhas_ros.tools.demo_assets import small_config_path

    assert small_config_path() == REPO / "config" / "hopadiff" / "small.yaml"
    assert RHAS133_CLASSES.exists()


ROS_PARAMETER_METADATA = {"description", "dynamic", "range", "choices", "yaml_note"}


def test_hopadiff_carries_no_ros_parameter_metadata():
    """The ML package's configs are plain dataclasses: ROS parameter descriptions, ranges and dynamic
    flags live in rhas_ros.core.settings only."""
    import dataclasses
    import importlib

    for path in sorted((REPO / "hopadiff").rglob("*.py")):
        text = path.read_text()
        assert "ros__parameters" not in text and "ParameterDescriptor" not in text, path
        module = importlib.import_module(_module_name(path))
        for obj in vars(module).values():
            if dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == module.__name__:
                for f in dataclasses.fields(obj):
                    assert not ROS_PARAMETER_METADATA & set(f.metadata), f"{obj.__name__}.{f.name}: {dict(f.metadata)}"


def test_every_module_is_one_room():
    """One job per file: no source file grows past 400 lines (the style's ~300, with some room)."""
    long = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            n = len(path.read_text().splitlines())
            if n > 400:
                long[str(path.relative_to(REPO))] = n
    assert not long, long
