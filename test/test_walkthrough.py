"""The README's training walkthrough runs as written: scripts/train_walkthrough.sh holds its
commands, the README shows the same lines, and the script runs end to end from a fresh folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_walkthrough_runs_end_to_end(tmp_path):
    env = dict(os.environ, RHAS_VENV=str(Path(sys.executable).parent.parent))
    res = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )
    assert res.returncode == 0, res.stderr[-3000:]
    runs = tmp_path / "runs" / "mine"
    assert read_checkpoint(runs / "last.pt")["extra"]["epoch"] == 3  # trained 2, resumed to 3
    scores = json.loads((runs / "eval_test" / "metrics.json").read_text())
    assert {"acc", "map", "f1@50", "acc_encoder", "compat_f1@50", "streaming_acc", "streaming_coverage"} <= set(scores)
    assert len(list((runs / "eval_test").glob("timeline_*.png"))) == 2
    for split in ("train", "val", "test"):  # every split extracted into one folder, own labels
        assert (tmp_path / "data" / "feats" / f"{split}.json").exists()
