"""The README's training walkthrough runs as written: scripts/train_walkthrough.sh holds its
commands, the README shows the same lines, and they run end to end from a fresh folder: each
command's own entry point in this process by default (the same argv; eight interpreter start-ups
were a sixth of the suite's CPU), the bash script itself with RHAS_SLOW_TESTS=1."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

from hopadiff.checkpoint import read_checkpoint

SCRIPT = REPO / "scripts" / "train_walkthrough.sh"


def _script_commands() -> list[str]:
    body = SCRIPT.read_text().split("# --- walkthrough ---\n", 1)[1]
    return [line.replace("$BIN/", ".venv/bin/").replace("$W/", "") for line in body.strip().splitlines()]


def test_readme_shows_the_scripts_commands():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## hopadiff: training your own") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert block == _script_commands()


def _check_outputs(work: Path) -> None:
    runs = work / "runs" / "mine"
    assert read_checkpoint(runs / "last.pt")["extra"]["epoch"] == 3  # trained 2, resumed to 3
    scores = json.loads((runs / "eval_test" / "metrics.json").read_text())
    assert {"acc", "map", "f1@50", "acc_encoder", "compat_f1@50", "streaming_acc", "streaming_coverage"} <= set(scores)
    assert len(list((runs / "eval_test").glob("timeline_*.png"))) == 2
    for split in ("train", "val", "test"):  # every split extracted into one folder, own labels
        assert (work / "data" / "feats" / f"{split}.json").exists()


def _entry_point(tool: str):
    """``hopadiff-x`` -> its console_scripts function (setup.py); ``python -m m`` -> ``m.main``."""
    from test_package_metadata import _setup_kwargs

    scripts = dict(line.split(" = ") for line in _setup_kwargs()["entry_points"]["console_scripts"])
    module, func = scripts[tool].split(":")
    return getattr(importlib.import_module(module), func)


def _expanded(work: Path) -> list[list[str]]:
    """The script's commands as argv lists, its one ``for split in ...; do ...; done`` unrolled."""
    body = SCRIPT.read_text().split("# --- walkthrough ---\n", 1)[1].replace("$W/", f"{work}/")
    loop = re.search(r"for (\w+) in ([^;]+); do\n(.*?)\ndone\n", body, re.S)
    lines = body[: loop.start()].splitlines()
    lines += [loop.group(3).strip().replace(f"${loop.group(1)}", v) for v in loop.group(2).split()]
    lines += body[loop.end() :].splitlines()
    return [shlex.split(line.replace("$BIN/", "")) for line in lines if line.strip()]


def test_walkthrough_commands_run_end_to_end(tmp_path):
    commands = _expanded(tmp_path)
    assert len(commands) == 8 and [c[0] for c in commands].count("hopadiff-extract") == 3
    threads = torch.get_num_threads()
    try:
        for argv in commands:
            if argv[:2] == ["python", "-m"]:
                main, args = importlib.import_module(argv[2]).main, argv[3:]
            else:
                main, args = _entry_point(argv[0]), argv[1:]
            cwd = os.getcwd()
            os.chdir(REPO)  # the script runs from the repository root (config/hopadiff/small.yaml)
            try:
                assert main(args) == 0, argv
            finally:
                os.chdir(cwd)
    finally:
        torch.set_num_threads(threads)
    _check_outputs(tmp_path)


def test_bash_has_no_complaint_about_the_script():
    res = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_walkthrough_script_runs_end_to_end(tmp_path):
    env = dict(os.environ, RHAS_VENV=str(Path(sys.executable).parent.parent))
    res = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )
    assert res.returncode == 0, res.stderr[-3000:]
    _check_outputs(tmp_path)
