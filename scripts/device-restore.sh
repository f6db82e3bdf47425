#!/usr/bin/env bash
# Face restoration on the lent machine (H200 host, 16 cores): restoration time per face with
# the published sizes of CodeFormer and GFPGAN v1.4 (random weights: the same graphs and the
# same arithmetic as the trained ones, made there by scripts/make-restorers.py --full with the
# machine's torch), on 16 and 2 threads; then the 15x case with faces on and off.
# Carry: bench/gigascale.xz, .whl-restore/ (libonnxruntime.so.1.32.0.xz: the library of the
# onnxruntime 1.32.0 wheel, xz-compressed; the onnx, ml_dtypes and protobuf wheels for CPython
# 3.12; codeformer-pip 0.0.4 and gfpgan 1.3.8), .gl/ (the Vulkan loader). Writes
# $OUT/device-restore.txt.
set -euo pipefail
OUT=${OUT:-/tmp}
log="$OUT/device-restore.txt"
work=$(mktemp -d)
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
xz -dc bench/gigascale.xz > "$work/gigascale" && chmod +x "$work/gigascale"
python3 -m pip install -q --no-index --no-deps --target "$work/site" .whl-restore/*.whl
export PYTHONPATH="$work/site"
lib="$work/libonnxruntime.so.1.32.0"
xz -dc .whl-restore/libonnxruntime.so.1.32.0.xz > "$lib"
gs() { "$work/gigascale" "$@"; }
# `done` event of --progress json: a field, in seconds.
field() { grep '"event":"done"' "$work/events" | sed -E "s/.*\"$1\":([0-9.]+).*/\\1/"; }
{
  echo "# $(date -u +%F) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  python3 -c "import torch, onnx; print('torch', torch.__version__, 'onnx', onnx.__version__, '; onnxruntime 1.32.0 (library)')"
  python3 scripts/make-restorers.py --full "$work/models" --from .whl-restore 2>/dev/null
  gs upscale fixtures/astronaut-group.jpg "$work/group.jpg" --width 3000 --quality 95 -q
  echo "input: $(python3 -c "from PIL import Image; i=Image.open('$work/group.jpg'); print(f'{i.width}x{i.height}')"), $(gs faces "$work/group.jpg" --json | grep -o '"score"' | wc -l) faces"
  for model in codeformer gfpgan; do
    for run in "16 1" "16 16" "2 1" "2 2"; do
      read -r threads face_threads <<< "$run"
      /usr/bin/time -f "%e %M" -o "$work/t" "$work/gigascale" upscale "$work/group.jpg" "$work/out.tif" --scale 2 \
        --faces "$work/models/$model-full.onnx" --onnxruntime "$lib" --threads "$threads" \
        --face-threads "$face_threads" --max-memory 16G --overwrite --progress json 2> "$work/events"
      read -r secs kb < "$work/t"
      echo "$model-full, --threads $threads --face-threads $face_threads: whole $secs s, faces $(field faces_s) s (restoration $(field faces_restore_s) s for 3 faces), peak RSS $((kb / 1024)) MB"
    done
  done
  gs devices | head -3
  for rep in 1 2; do
    for faces in off gfpgan; do
      extra=()
      [ "$faces" = off ] || extra=(--faces "$work/models/gfpgan-full.onnx" --onnxruntime "$lib" --face-threads 16)
      /usr/bin/time -f "%e %M" -o "$work/t" "$work/gigascale" upscale "$work/group.jpg" "$work/x15.tif" --scale 15 \
        --compression zstd --overwrite --progress json "${extra[@]}" 2> "$work/events"
      read -r secs kb < "$work/t"
      echo "15x run $rep, faces $faces: whole $secs s (job $(field seconds) s, faces $(field faces_s) s), peak RSS $((kb / 1024)) MB, $(grep '"event":"backend"' "$work/events" | tail -1)"
    done
  done
  ls -la "$work/x15.tif" | awk '{print "15x output:", $5, "bytes"}'
} 2>&1 | tee "$log"
