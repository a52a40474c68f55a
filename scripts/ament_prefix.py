"""Make a venv an ament prefix for rhas_ros, as colcon's install space would be (idempotent).

  python scripts/ament_prefix.py VENV

`pip install -e .` installs no data_files and puts console scripts in bin/, so `ros2 launch
rhas_ros ...`, FindPackageShare and launch_ros's executable lookup would not find the package.
This writes, under VENV:
  share/ament_index/resource_index/packages/rhas_ros   the ament index marker
  share/rhas_ros/package.xml, launch/, config/         real folders (ros2 launch walks them with
                                                       os.walk, which skips symlinked folders)
                                                       holding links to the repository's files
  lib/rhas_ros/<console script>                        links to VENV/bin/<script> (launch_ros
                                                       looks for executables there)
  site-packages/rhas_ament_prefix.pth                  every Python started from the venv (ros2,
                                                       rhas_node, launch and their children)
                                                       gets VENV in AMENT_PREFIX_PATH, after
                                                       what is already there (a sourced
                                                       workspace keeps precedence)
"""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rhas_ros"
PTH = (
    "import os, sys; _p = os.environ.get('AMENT_PREFIX_PATH', ''); "
    "sys.prefix in _p.split(os.pathsep) or os.environ.__setitem__('AMENT_PREFIX_PATH', "
    "os.pathsep.join([x for x in (_p, sys.prefix) if x]))\n"
)


def console_scripts() -> list[str]:
    """Names of the console scripts setup.py declares."""
    text = (ROOT / "setup.py").read_text()
    return re.findall(r'"([\w-]+) = [\w.]+:\w+"', text)


def link_tree(src: Path, dst: Path, pattern: str) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob(pattern)):
        if f.is_file():
            (dst / f.name).symlink_to(f)


def main(venv: Path) -> None:
    venv = venv.resolve()
    index = venv / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True, exist_ok=True)
    (index / PACKAGE).write_text("")
    share = venv / "share" / PACKAGE
    shutil.rmtree(share, ignore_errors=True)  # rebuilt every time: files added or removed in the repo
    share.mkdir(parents=True)
    (share / "package.xml").symlink_to(ROOT / "package.xml")
    link_tree(ROOT / "launch", share / "launch", "*.launch.py")
    link_tree(ROOT / "config", share / "config", "*.yaml")
    link_tree(ROOT / "config" / "hopadiff", share / "config" / "hopadiff", "*.yaml")
    lib = venv / "lib" / PACKAGE
    shutil.rmtree(lib, ignore_errors=True)
    lib.mkdir(parents=True)
    for name in console_scripts():
        script = venv / "bin" / name
        if not script.exists():
            sys.exit(f"ament_prefix: {script} missing (pip install -e . first)")
        (lib / name).symlink_to(script)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (purelib / "rhas_ament_prefix.pth").write_text(PTH)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/ament_prefix.py VENV")
    main(Path(sys.argv[1]))
