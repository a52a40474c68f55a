"""Point the CMake exports of the PyPI ROS 2 wheels at this interpreter's include folders.

The ``ros-*-msgs`` wheels are built in a manylinux image, and their exported CMake targets
name that image's Python and numpy include folders (``/opt/python/cp311-cp311/...``).
Those folders do not exist here, so CMake's generate step fails for any package that
builds messages against the wheels. This script rewrites the two paths in the venv's
``share/*/cmake/*.cmake`` files to ``sysconfig``'s include folder and
``numpy.get_include()``. It is idempotent and touches only files that name the old paths.

Usage: python scripts/fix_ros_cmake.py [PREFIX]   (PREFIX defaults to sys.prefix)
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

_NUMPY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")
_PYTHON_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")


def fix_file(path: Path) -> bool:
    """Rewrite one file in place (atomically); return True when it changed."""
    text = path.read_text()
    new = _NUMPY_INCLUDE.sub(numpy.get_include(), text)
    new = _PYTHON_INCLUDE.sub(sysconfig.get_paths()["include"], new)
    if new == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prefix = Path(argv[0]) if argv else Path(sys.prefix)
    share = prefix / "share"
    if not share.is_dir():
        print(f"fix_ros_cmake: no share/ folder under {prefix}", file=sys.stderr)
        return 1
    changed = [p for p in sorted(share.glob("*/cmake/*.cmake")) if fix_file(p)]
    print(f"fix_ros_cmake: rewrote include paths in {len(changed)} file(s) under {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
