#!/usr/bin/env bash
# Face detection time and peak memory: `gigascale faces` (whole image in one tile at the default
# budget, then cut into tiles by --max-memory) against the reference, onnxruntime on the whole
# image (scripts/faces-reference.py, 2 intra-op threads), paired runs on the same images.
#   PY=path/to/python-with-onnxruntime REPS=3 scripts/bench-faces.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
REPS=${REPS:-3}
BIN=${BIN:-target/release/gigascale}
export GIGASCALE_BIN="$BIN"  # the reference makes its reduced copy with it
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for scale in 4 5.36; do
  "$BIN" upscale fixtures/astronaut-group.jpg "$dir/g$scale.png" --scale "$scale" --filter lanczos3 -q
done
echo "# $(date -u +%F) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for scale in 4 5.36; do
  img="$dir/g$scale.png"
  mp=$(python3 -c "import struct;d=open('$img','rb').read(24);w,h=struct.unpack('>II',d[16:24]);print(f'{w}x{h} {w*h/1e6:.2f} MP')")
  echo "## $mp"
  for r in $(seq "$REPS"); do
    for what in ours ours-256M ours-64M reference; do
      case $what in
        ours) cmd=("$BIN" faces "$img") ;;
        ours-256M) cmd=("$BIN" faces "$img" --max-memory 256M) ;;
        ours-64M) cmd=("$BIN" faces "$img" --max-memory 64M) ;;
        reference) cmd=("$PY" scripts/faces-reference.py "$img") ;;
      esac
      /usr/bin/time -f "%e %M" -o "$dir/t" "${cmd[@]}" > "$dir/o"
      read -r secs kb < "$dir/t"
      faces=$(grep -o '"score"' "$dir/o" | wc -l || true)
      [[ $what == reference ]] || faces=$(head -1 "$dir/o" | sed 's/.*, \([0-9]*\) face.*(\([0-9]*\) tile.*/\1 faces, \2 tiles/')
      echo "run $r $what: ${secs} s, peak RSS $((kb / 1024)) MB, $faces"
    done
  done
done
