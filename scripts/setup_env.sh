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
#   3. cmake build + install of rhas_msgs into .venv (reruns when rhas_msgs/ changes), and of
#      vision_msgs, hri_msgs (+ pip install of diagnostic_updater) from ../shared/ros-extra
#      where it exists (RHAS_ROS_EXTRA names another)
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
  rm -f "$VENV"/.rhas-msgs-*
fi

# 3. message packages built with cmake into the venv: rhas_msgs, then (where ../shared/ros-extra
#    has them) vision_msgs and hri_msgs, which are not on PyPI; each rebuilt when its sources change.
build_msgs() {  # build_msgs NAME SOURCE_DIR
  local name="$1" src="$2" key
  key="$(cd "$src" && digest $(find . -type f | LC_ALL=C sort))"
  stamp_ok "msgs-$name" "$key" && return 0
  log "building $name into $VENV"
  local build="$VENV/build/$name"
  rm -rf "$build" && mkdir -p "$build"
  (
    cd "$build"
    AMENT_PREFIX_PATH="$VENV" cmake "$src" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > cmake.log 2>&1 \
      || { tail -40 cmake.log >&2; log "cmake configure of $name failed (full log: $build/cmake.log)"; exit 1; }
    make -j"$(nproc)" > make.log 2>&1 && make install > install.log 2>&1 \
      || { tail -40 make.log >&2; log "build of $name failed (logs in $build)"; exit 1; }
  )
  "$VPY" -c "import $name.msg" || { log "$name built but does not import"; exit 1; }
  write_stamp "msgs-$name" "$key"
}
build_msgs rhas_msgs "$ROOT/rhas_msgs"

# Where a shared/ folder is: RHAS_<NAME>, else next to this checkout, else next to the local
# repository this one was cloned from (a scratch clone of a checkout that sits next to shared/).
origin="$(git -C "$ROOT" config --get remote.origin.url 2>/dev/null || true)"
shared_dir() {  # shared_dir FOLDER MARKER_FILE [OVERRIDE]
  local folder="$1" marker="$2" override="${3:-}"
  if [ -n "$override" ]; then echo "$override"; return; fi
  if [ -e "$ROOT/../shared/$folder/$marker" ]; then (cd "$ROOT/../shared/$folder" && pwd); return; fi
  if [ -n "$origin" ] && [ -e "$origin/../shared/$folder/$marker" ]; then (cd "$origin/../shared/$folder" && pwd); return; fi
  echo "$ROOT/../shared/$folder"
}
ROS_EXTRA="$(shared_dir ros-extra README.md "${RHAS_ROS_EXTRA:-}")"
if [ -d "$ROS_EXTRA/vision_msgs" ]; then
  build_msgs vision_msgs "$ROS_EXTRA/vision_msgs"
  build_msgs hri_msgs "$ROS_EXTRA/hri_msgs"
  extra_key="$(digest $(find "$ROS_EXTRA/diagnostic_updater" -type f | LC_ALL=C sort))"
  if ! stamp_ok diagnostic-updater "$extra_key"; then
    "${PIP[@]}" install --quiet --no-deps --no-build-isolation "$ROS_EXTRA/diagnostic_updater"
    write_stamp diagnostic-updater "$extra_key"
  fi
else
  log "no $ROS_EXTRA: vision_msgs, hri_msgs, diagnostic_updater not installed (their tests skip; a ROS distro has them)"
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
ROS_LAUNCH="$(shared_dir ros-launch install.sh "${RHAS_ROS_LAUNCH:-}")"
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
