#!/usr/bin/env bash
# Every method of docs/BASELINES.md on one protocol, as short CPU runs, then one comparison table and ROC plot:
#   bash scripts/compare_cpu.sh            (RUNS=runs by default; the table lands in $RUNS/compare_cpu/)
# The protocol is the demo's (synthetic cross-domain, 112 px, 400 faces per domain: train on studio, test on
# street and held-out studio). A run whose folder already holds its scores is kept, so a killed script
# continues where it stopped; delete a run's folder to redo it.
set -euo pipefail
if [[ $# -gt 0 ]]; then
  [[ $1 == -h || $1 == --help ]] || echo "compare_cpu.sh takes no arguments (set RUNS= or PY= instead)" >&2
  sed -n '2,6p' "$0" | cut -c3-
  [[ $1 == -h || $1 == --help ]]
  exit
fi
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PROTOCOL=(run.output_dir="$RUNS" data.protocol=synth_cross_domain data.image_size=112 data.synthetic.n_per_domain=400)

run_once() {  # run_once DONE_FILE COMMAND...: run COMMAND unless DONE_FILE (its last output) exists
  local done_file=$1
  shift
  if [[ -e $done_file ]]; then
    echo "kept: $done_file exists"
  else
    echo "+ $*"
    /usr/bin/time -f "wall %e s" "$@"
  fi
}

# DT-GRPO (paper 003): the demo's three stages; GRPO (paper 001, RFT-FAS): GRPO from the base model.
run_once "$RUNS/demo_cpu/curves.json" \
  "$PY" launch/demo.py --config demo_cpu "${PROTOCOL[@]}"
run_once "$RUNS/rft_fas_cpu/grpo/metrics.json" \
  "$PY" launch/grpo.py --config demo_cpu --overwrite "${PROTOCOL[@]}" run.name=rft_fas_cpu grpo.method=rft_fas grpo.init_from=model
# InstructFLIP (paper 000) and the caption-supervised VLM (paper 002) with each caption set.
run_once "$RUNS/instructflip_cpu/instructflip/metrics.json" \
  "$PY" launch/instructflip.py --config instructflip_cpu --overwrite "${PROTOCOL[@]}"
for captions in vanilla reasoning mix; do
  run_once "$RUNS/caption_$captions/caption/eval/metrics.json" \
    "$PY" launch/caption.py --config caption_cpu --overwrite "${PROTOCOL[@]}" run.name="caption_$captions" \
    caption.captions="$captions" eval.max_samples=null
done

/usr/bin/time -f "wall %e s" "$PY" launch/compare.py \
  dt_grpo="$RUNS/demo_cpu" grpo="$RUNS/rft_fas_cpu" instructflip="$RUNS/instructflip_cpu" \
  caption_vanilla="$RUNS/caption_vanilla" caption_reasoning="$RUNS/caption_reasoning" \
  caption_mix="$RUNS/caption_mix" --out "$RUNS/compare_cpu"
