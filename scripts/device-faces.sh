#!/usr/bin/env bash
# Face detection on the lent 16-core machine: `gigascale faces` on 2 and 16 threads against
# onnxruntime (carried wheel) on the whole image with as many threads, paired, REPS runs.
# Carry: bench/gigascale.xz (stripped, xz) and .whl-ort/ (onnxruntime 1.32.0 for CPython 3.12
# and its pure-Python dependencies). Writes $OUT/device-faces.txt.
set -euo pipefail
REPS=${REPS:-3}
OUT=${OUT:-/tmp}
log="$OUT/device-faces.txt"
work=$(mktemp -d)
xz -dc bench/gigascale.xz > "$work/gigascale" && chmod +x "$work/gigascale"
python3 -m pip install -q --no-index --no-deps --target "$work/site" .whl-ort/*.whl
export PYTHONPATH="$work/site"
export GIGASCALE_BIN="$work/gigascale"  # the reference makes its reduced copy with it
{
  echo "# $(date -u +%F) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  python3 -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
  for scale in 5.36 10; do
    img="$work/g$scale.png"
    "$work/gigascale" upscale fixtures/astronaut-group.jpg "$img" --scale "$scale" --filter lanczos3 -q
    echo "## fixture x$scale: $(python3 -c "from PIL import Image; i=Image.open('$img'); print(f'{i.width}x{i.height} {i.width*i.height/1e6:.2f} MP')")"
    for r in $(seq "$REPS"); do
      for threads in 16 2; do
        /usr/bin/time -f "%e %M" -o "$work/t" "$work/gigascale" faces "$img" --threads "$threads" --max-memory 4G > "$work/o"
        read -r secs kb < "$work/t"
        echo "run $r ours $threads threads: $secs s, peak RSS $((kb / 1024)) MB, $(head -1 "$work/o" | sed 's/.*: //')"
        ORT_THREADS=$threads /usr/bin/time -f "%e %M" -o "$work/t" python3 scripts/faces-reference.py "$img" > "$work/ref.json"
        read -r secs kb < "$work/t"
        echo "run $r onnxruntime $threads threads: $secs s, peak RSS $((kb / 1024)) MB, $(grep -o '"score"' "$work/ref.json" | wc -l) faces"
      done
    done
    "$work/gigascale" faces "$img" --json > "$work/ours.json"
    python3 - "$work/ours.json" "$work/ref.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["faces"]; b = json.load(open(sys.argv[2]))["faces"]
d = max([abs(p - q) for x, y in zip(a, b) for p, q in zip(x["box"] + sum(x["landmarks"], []), y["box"] + sum(y["landmarks"], []))] or [0])
s = max([abs(x["score"] - y["score"]) for x, y in zip(a, b)] or [0])
print(f"same faces as onnxruntime: {len(a)} vs {len(b)}, largest difference {d:.2e} px, score {s:.1e}")
PY
  done
} 2>&1 | tee "$log"
