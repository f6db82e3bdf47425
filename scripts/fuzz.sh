#!/usr/bin/env bash
# fuzz.sh — run every fuzz target (cargo fuzz, libFuzzer) for SECONDS each (default 600), two at
# a time, seeded from fixtures/. Needs a nightly toolchain and `cargo install cargo-fuzz`.
# Logs go to fuzz/logs/; crashes to fuzz/artifacts/<target>/ (copy them into
# tests/fuzz_regressions/ so the normal test suite replays them).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${SECONDS_EACH:-600}
mkdir -p logs corpus/jpeg corpus/png corpus/tiff corpus/tiff_roundtrip
cp -n ../fixtures/*.jpg corpus/jpeg/; cp -n ../fixtures/*.png corpus/png/; cp -n ../fixtures/*.tif corpus/tiff/
[[ -n $(ls corpus/tiff_roundtrip) ]] || head -c 256 /dev/urandom > corpus/tiff_roundtrip/seed
run() { cargo +nightly fuzz run "$1" -O -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 >"logs/$1.log" 2>&1; echo "$1: exit $? $(grep -E '^Done|^#[0-9]+.*DONE' "logs/$1.log" | tail -1)"; }
run jpeg & run png & wait
run tiff & run tiff_roundtrip & wait
