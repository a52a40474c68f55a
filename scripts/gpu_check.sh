#!/usr/bin/env bash
# The GPU check, ready to run on one CUDA GPU in under 5 minutes; prints one report.
#
#   bash scripts/gpu_check.sh                     # the repo's venv (scripts/setup_env.sh), if it exists
#   PYTHON=python3 bash scripts/gpu_check.sh      # any Python with a CUDA build of torch, transformers,
#                                                 # opencv and pytest (no ROS needed: it uses hopadiff
#                                                 # and rhas_ros.core only)
#
# With CUDA: the CUDA tests (CUDA vs CPU numerics in fp32/bf16/fp16, inference on CUDA), the model
# benchmark in fp32, bf16 and fp16, the real-size backbones (BLIP-2 ITM ViT-g and CLIP ViT-B/32
# from their published configurations, random weights) per frame with 0/1/3/8 crops in fp16, and
# the node's worker with the real-size BLIP-2 and 3 persons, cold and warm-started.
# Without CUDA it runs the same steps on the CPU, shortened (fp32, CLIP only, the 64 px backbone
# in the node benchmark), so the script itself is checked on any machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${GPU_CHECK_OUT:-gpu_check_out}"
mkdir -p "$OUT"
REPORT="$OUT/report.md"

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  DEV=cuda; PRECISIONS=(fp32 bf16 fp16); BB_ARGS=(--device cuda --dtype fp16 --crops 0 1 3 8)
  NODE_ARGS=(--device cuda --precision fp16 --backbone blip2 --persons 3 --frames 300 --threads 4)
else
  DEV=cpu; PRECISIONS=(fp32); BB_ARGS=(--device cpu --dtype fp32 --crops 0 3 --repeats 1 --only clip)
  NODE_ARGS=(--device cpu --precision fp32 --backbone tiny --persons 3 --frames 300 --window 256)
fi

step() {  # name, command...: run, keep the output, stop the script with the step's name on failure
  local name="$1"; shift
  echo "== $name" | tee -a "$REPORT"
  local t0=$SECONDS
  if ! "$@" >"$OUT/$name.log" 2>&1; then
    tail -30 "$OUT/$name.log"
    echo "gpu_check: step '$name' failed (log: $OUT/$name.log)" >&2
    exit 1
  fi
  grep -E '^(\||#|[0-9]+ passed|=+ .*(passed|skipped))' "$OUT/$name.log" | tee -a "$REPORT" || true
  echo "($((SECONDS - t0)) s)" | tee -a "$REPORT"
}

: >"$REPORT"
echo "# gpu_check on $DEV: $("$PY" -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")')" | tee -a "$REPORT"
step cuda_tests "$PY" -m pytest -q -p no:cacheprovider test/test_model.py -k "cuda or close_to_fp32 or bf16"
for p in "${PRECISIONS[@]}"; do
  step "model_$p" "$PY" scripts/bench_model.py --quick --device "$DEV" --precision "$p" --repeats 3
done
step vs_diffact "$PY" scripts/bench_model.py --vs-diffact --device "$DEV" --repeats 3
# Every inference engine (eager, compile, onnxruntime on whatever provider this onnxruntime build
# has: install onnxruntime-gpu for CUDA / TensorRT) against DiffAct, with the compute floor.
step engines "$PY" scripts/bench_model.py --engines --device "$DEV" --repeats 3
for e in compile onnxruntime; do
  step "node_$e" "$PY" scripts/bench_node.py "${NODE_ARGS[@]}" --warm-start-steps 6 --engine "$e"
done
step backbones "$PY" scripts/bench_backbone.py "${BB_ARGS[@]}"
step node_cold "$PY" scripts/bench_node.py "${NODE_ARGS[@]}" --warm-start-steps 0
step node_warm "$PY" scripts/bench_node.py "${NODE_ARGS[@]}" --warm-start-steps 6
echo "gpu_check: all steps passed; report in $REPORT"
