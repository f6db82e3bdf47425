#!/usr/bin/env bash
# bench-pyramid.sh — what --pyramid costs: the 15x case (2000x3000 photo -> 30000x45000 zstd
# tiled TIFF) with and without reduced levels, interleaved runs, wall time, peak RSS, size.
# Usage: scripts/bench-pyramid.sh [REPS]   (photo from scripts/bench-15x.sh's cache)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
photo=${PHOTO:-$HOME/.cache/gigascale-bench/photo-2000x3000.jpg}
bin=target/release/gigascale
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(git rev-parse --short HEAD)"
for i in $(seq "$reps"); do
  for mode in plain pyramid; do
    extra=(); [[ $mode == pyramid ]] && extra=(--pyramid)
    /usr/bin/time -f "%e %M" -o "$work/t" $bin upscale "$photo" "$work/o.tif" --scale 15 --compression zstd \
      --overwrite --quiet "${extra[@]}"
    read -r secs rss < "$work/t"
    echo "$mode run $i: ${secs} s, peak RSS $((rss / 1024)) MB, $(stat -c %s "$work/o.tif") bytes"
  done
done
