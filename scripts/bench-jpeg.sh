#!/usr/bin/env bash
# bench-jpeg.sh — big JPEGs through a small budget: a 96 MP (8000x12000) baseline and
# progressive JPEG, x1.25, gigascale (BIN, default target/release/gigascale; OLD=another binary
# to compare) vs libvips, wall time and peak RSS; then the JPEG decode time of the 15x case
# (decode_s of the done event, REPS runs interleaved).
#
#   scripts/bench-jpeg.sh [OUTDIR]      (REPS=5 OLD=/path/to/older/gigascale)
#
# The 96 MP images are the benchmark photo of bench-15x.sh enlarged 4x by libvips (lanczos3)
# and saved as JPEG Q90, baseline and progressive (--interlace). Needs vips and /usr/bin/time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/gigascale-bench-jpeg}
reps=${REPS:-5}
bin=${BIN:-$root/target/release/gigascale}
cache=${GIGASCALE_BENCH_CACHE:-$HOME/.cache/gigascale-bench}
photo=$cache/photo-2000x3000.jpg
[[ -f $photo ]] || { echo "run scripts/bench-15x.sh once first (it builds $photo)"; exit 1; }
mkdir -p "$out"
base=$cache/photo-8000x12000.jpg
prog=$cache/photo-8000x12000-progressive.jpg
if [[ ! -f $prog ]]; then
  vips resize "$photo" "$cache/big.v" 4 --kernel lanczos3
  vips jpegsave "$cache/big.v" "$base" --Q 90
  vips jpegsave "$cache/big.v" "$prog" --Q 90 --interlace
  rm -f "$cache/big.v"
fi
echo "# $(date -u +%F) $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
measure() {  # label, command...
  local label=$1; shift
  /usr/bin/time -o "$out/time" -f "%e %M" "$@" >/dev/null 2>&1 || echo "$label: failed"
  local t; t=$(tail -1 "$out/time")
  echo "$label wall_s=${t% *} peak_rss_mb=$(( ${t#* } / 1024 ))"
}
bins=("$bin"); [[ -n ${OLD:-} ]] && bins+=("$OLD")
for b in "${bins[@]}"; do
  for img in "$base:64M" "$base:512M" "$prog:400M"; do
    f=${img%:*}; m=${img#*:}
    rm -f "$out/g.tif"
    if "$b" upscale "$f" "$out/g.tif" --scale 1.25 --max-memory "$m" --backend cpu --quiet 2>"$out/err"; then
      measure "gigascale=$b $(basename "$f") --max-memory $m" "$b" upscale "$f" "$out/g.tif" --scale 1.25 --max-memory "$m" --backend cpu --overwrite --quiet
    else
      echo "gigascale=$b $(basename "$f") --max-memory $m refused: $(head -c 160 "$out/err")"
    fi
  done
done
for f in "$base" "$prog"; do
  measure "vips $(basename "$f")" vips resize "$f" "$out/v.tif" 1.25 --kernel lanczos3
done
rm -f "$out"/*.tif "$out/err" "$out/time"
echo "# decode_s of the 15x case ($photo), $reps runs each, interleaved"
for i in $(seq "$reps"); do
  for b in "${bins[@]}"; do
    d=$("$b" upscale "$photo" "$out/d.tif" --scale 0.05 --overwrite --backend cpu --progress json 2>&1 \
      | sed -n 's/.*"event":"done".*"decode_s":\([0-9.]*\).*/\1/p')
    echo "decode binary=$b run=$i decode_s=$d"
  done
done
rm -f "$out/d.tif"
