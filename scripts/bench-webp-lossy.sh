#!/usr/bin/env bash
# bench-webp-lossy.sh — lossy WebP: our streamed VP8 encoder against libwebp's cwebp on the
# same pixels. The benchmark photo (see bench-15x.sh) is enlarged x2.5 to 5000x7500; gigascale
# writes .webp at each quality (wall time, peak RSS, median of REPS) and the same job's PNG,
# which cwebp (the same quality; it holds the whole picture) encodes too. Both are decoded by
# dwebp and compared with the PNG (RGB PSNR, Python with Pillow and numpy: PYTHON).
#
#   scripts/bench-webp-lossy.sh [OUTDIR]      (REPS=3 QUALITIES="50 75 90 95" THREADS=2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/gigascale-bench-webp}
reps=${REPS:-3}
bin=${BIN:-$root/target/release/gigascale}
py=${PYTHON:-python3}
threads=${THREADS:-2}
photo=${GIGASCALE_BENCH_CACHE:-$HOME/.cache/gigascale-bench}/photo-2000x3000.jpg
[[ -f $photo ]] || { echo "run scripts/bench-15x.sh once first (it builds $photo)"; exit 1; }
mkdir -p "$out"
echo "# $(date -u +%F) $(nproc) cores; $photo x2.5 -> 5000x7500, --threads $threads"
"$bin" upscale "$photo" "$out/ref.png" --width 5000 --overwrite --quiet
psnr() {  # decoded.png -> dB against ref.png
  "$py" - "$out/ref.png" "$1" <<'PY'
import sys, numpy as np
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
a, b = (np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) for p in sys.argv[1:3])
print(f"{10 * np.log10(255 ** 2 / ((a - b) ** 2).mean()):.2f}")
PY
}
for q in ${QUALITIES:-50 75 90 95}; do
  runs=()
  for _ in $(seq "$reps"); do
    /usr/bin/time -o "$out/time" -f "%e %M" "$bin" upscale "$photo" "$out/ours.webp" --width 5000 \
      --quality "$q" --threads "$threads" --overwrite --quiet
    runs+=("$(tail -1 "$out/time")")
  done
  med=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(( (reps + 1) / 2 ))p")
  /usr/bin/time -o "$out/time" -f "%e %M" cwebp -quiet -q "$q" "$out/ref.png" -o "$out/cwebp.webp"
  ct=$(tail -1 "$out/time")
  dwebp -quiet "$out/ours.webp" -o "$out/ours.png"
  dwebp -quiet "$out/cwebp.webp" -o "$out/cwebp.png"
  echo "q$q ours wall_s=${med% *} peak_rss_mb=$(( ${med#* } / 1024 )) bytes=$(stat -c %s "$out/ours.webp")" \
    "psnr_db=$(psnr "$out/ours.png")"
  echo "q$q cwebp wall_s=${ct% *} peak_rss_mb=$(( ${ct#* } / 1024 )) bytes=$(stat -c %s "$out/cwebp.webp")" \
    "psnr_db=$(psnr "$out/cwebp.png") (its time includes decoding the PNG)"
done
