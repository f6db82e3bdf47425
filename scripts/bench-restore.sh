#!/usr/bin/env bash
# Face restoration time on this machine: the published sizes of CodeFormer and GFPGAN v1.4
# (random weights, from `scripts/make-restorers.py --full MODELS`), on the group fixture
# enlarged to 3000 px wide (3 faces), --scale 2, for a few --threads/--face-threads pairs.
#   MODELS=/tmp/full LIB=.../libonnxruntime.so.1.32.0 scripts/bench-restore.sh
set -euo pipefail
MODELS=${MODELS:?the folder of codeformer-full.onnx and gfpgan-full.onnx}
LIB=${LIB:?ONNX Runtime library}
bin=${BIN:-target/release/gigascale}
work=$(mktemp -d)
field() { grep '"event":"done"' "$work/events" | sed -E "s/.*\"$1\":([0-9.]+).*/\\1/"; }
echo "# $(date -u +%F) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$bin" upscale fixtures/astronaut-group.jpg "$work/group.jpg" --width 3000 --quality 95 -q
for model in codeformer gfpgan; do
  for run in "2 1" "2 2"; do
    read -r threads face_threads <<< "$run"
    /usr/bin/time -f "%e %M" -o "$work/t" "$bin" upscale "$work/group.jpg" "$work/out.tif" --scale 2 \
      --faces "$MODELS/$model-full.onnx" --onnxruntime "$LIB" --threads "$threads" \
      --face-threads "$face_threads" --max-memory 8G --overwrite --progress json 2> "$work/events"
    read -r secs kb < "$work/t"
    echo "$model-full, --threads $threads --face-threads $face_threads: whole $secs s, faces $(field faces_s) s (restoration $(field faces_restore_s) s for 3 faces), peak RSS $((kb / 1024)) MB"
  done
done
rm -rf "$work"
