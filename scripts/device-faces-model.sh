#!/usr/bin/env bash
# Faces enlarged by the job's model (upscale --model M --faces R, faces over 512 px in the
# output) on the lent H200: the GPU backend gives the CPU backend's bytes, and the time.
# Carry: bench/gigascale.xz, .gl/ (Vulkan loader), .whl-restore/ (libonnxruntime.so.1.32.0.xz).
# Writes $OUT/device-faces-model.txt.
set -euo pipefail
OUT=${OUT:-/tmp}
log="$OUT/device-faces-model.txt"
work=$(mktemp -d)
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
xz -dc bench/gigascale.xz > "$work/gigascale" && chmod +x "$work/gigascale"
lib="$work/libonnxruntime.so.1.32.0"
xz -dc .whl-restore/libonnxruntime.so.1.32.0.xz > "$lib"
{
  echo "# $(date -u +%F) $(nproc) cores; $("$work/gigascale" devices | head -1)"
  for model in anime photo; do
    for scale in 6 12; do
      for backend in cpu gpu; do
        /usr/bin/time -f "%e %M" -o "$work/t" "$work/gigascale" upscale fixtures/astronaut-group.jpg \
          "$work/$backend.png" --model "$model" --scale "$scale" --backend "$backend" --onnxruntime "$lib" \
          --faces fixtures/restorers/gfpgan-tiny.onnx --overwrite --progress json 2> "$work/events"
        read -r secs kb < "$work/t"
        echo "--model $model --scale $scale --backend $backend: whole $secs s, faces (restoration and enlargement) $(grep '"event":"done"' "$work/events" | sed -E 's/.*"faces_restore_s":([0-9.]+).*/\1/') s, peak RSS $((kb / 1024)) MB"
      done
      cmp -s "$work/cpu.png" "$work/gpu.png" && echo "  same bytes on cpu and gpu" || echo "  DIFFERENT on cpu and gpu"
    done
  done
} 2>&1 | tee "$log"
