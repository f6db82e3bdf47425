#!/usr/bin/env bash
# The 15x job (2000x3000 photo -> 30000x45000) into a zstd tiled TIFF and into OME-Zarr
# (shards of 4096 px), without and with a pyramid, then as plan + units + finalize with
# PROCS processes of THREADS threads each. Medians of REPS interleaved rounds; wall time and
# peak RSS from /usr/bin/time. Usage: scripts/bench-zarr.sh [BIN] [PHOTO]
# Environment: REPS (3), PROCS (2), THREADS (1), DIR (scratch dir, default /tmp/gs-bench-zarr).
set -euo pipefail
BIN=${1:-target/release/gigascale}
PHOTO=${2:-bench/photo-2000x3000.jpg}
REPS=${REPS:-3} PROCS=${PROCS:-2} THREADS=${THREADS:-1}
DIR=${DIR:-/tmp/gs-bench-zarr}
mkdir -p "$DIR"
echo "# $(date -u +%FT%TZ) $(uname -n) $(nproc) cores; $("$BIN" --version)"
timed() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/err" || { cat "$DIR/err"; exit 1; }
  read -r s kb <"$DIR/time"
  echo "$label seconds=$s peak_rss_mb=$((kb / 1024)) bytes=$(du -sb "$DIR/out"* | awk '{s+=$1} END {print s}')"
}
units() { # plan flags...: plan, run all units PROCS at a time, finalize
  local n; n=$("$BIN" plan "$PHOTO" "$DIR/out.ome.zarr" --scale 15 -q "$@")
  seq 0 $((n - 1)) | xargs -P "$PROCS" -I{} "$BIN" run "$DIR/out.ome.zarr" --unit {} -q --threads "$THREADS"
  "$BIN" finalize "$DIR/out.ome.zarr" 2>/dev/null
}
export -f units; export BIN PHOTO DIR PROCS THREADS
for r in $(seq "$REPS"); do
  rm -rf "$DIR"/out*; timed tiff-zstd "$BIN" upscale "$PHOTO" "$DIR/out.tif" --scale 15 --compression zstd -q
  rm -rf "$DIR"/out*; timed zarr "$BIN" upscale "$PHOTO" "$DIR/out.ome.zarr" --scale 15 -q
  rm -rf "$DIR"/out*; timed zarr-pyramid "$BIN" upscale "$PHOTO" "$DIR/out.ome.zarr" --scale 15 --pyramid -q
  rm -rf "$DIR"/out*; timed "zarr-units-P$PROCS-T$THREADS" bash -c units
  rm -rf "$DIR"/out*; timed "zarr-pyramid-units-P$PROCS-T$THREADS" bash -c 'units --pyramid'
done
rm -rf "$DIR"
