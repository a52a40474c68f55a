#!/usr/bin/env bash
# The README's "Training your own" walkthrough, command for command (test/test_walkthrough.py
# runs this file and checks the README shows the same commands). Small settings: about two
# minutes on a 2-core CPU. Run from the repository root; WORK (default .) holds data/ models/ runs/.
set -euo pipefail
W="${1:-.}"
BIN="${RHAS_VENV:-.venv}/bin"
# --- walkthrough ---
$BIN/hopadiff-synth $W/data/clips --video --clips 2 1 1 --frames 48
$BIN/python -m hopadiff.features.tiny clip $W/models/clip
for split in train val test; do
  $BIN/hopadiff-extract $W/data/clips/$split/extract.json --out $W/data/feats --split $split --backbone clip --model $W/models/clip --local-files-only --device cpu
done
$BIN/hopadiff-train --config config/hopadiff/small.yaml data.root=$W/data/feats model.feature_dim=24 data.window=32 data.hop=16 train.epochs=2 train.eval_every=1 train.out_dir=$W/runs/mine
$BIN/hopadiff-train --config config/hopadiff/small.yaml data.root=$W/data/feats model.feature_dim=24 data.window=32 data.hop=16 train.epochs=3 train.eval_every=1 train.out_dir=$W/runs/mine --resume
$BIN/hopadiff-eval --checkpoint $W/runs/mine/best.pt --split test --plots 2 --compat --streaming
