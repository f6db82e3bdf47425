#!/usr/bin/env bash
# test-enospc.sh — a full disk: gigascale must fail with an error naming the path and how far it
# got, exit non-zero, and leave nothing behind. Mounts an 8 MiB tmpfs (needs root / mount
# rights); prints SKIPPED with the reason where mounting is not allowed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/gigascale}
mnt=$(mktemp -d)
if ! mount -t tmpfs -o size=8m tmpfs "$mnt" 2>/tmp/enospc-mount.err; then
  echo "SKIPPED: cannot mount a tmpfs here: $(cat /tmp/enospc-mount.err)"; rmdir "$mnt"; exit 0
fi
trap 'umount "$mnt"; rmdir "$mnt"' EXIT
fail=0
check() {  # label, expected substring, command...
  local label=$1 want=$2; shift 2
  err=$("$@" 2>&1 >/dev/null); code=$?
  left=$(ls -A "$mnt" | wc -l)
  if [[ $code -ne 0 && $err == *"$want"* && $left -eq 0 ]]; then echo "ok: $label: exit $code: $err"
  else echo "FAIL: $label: exit $code, $left files left: $err"; fail=1; fi
}
# Output (about 21 MB uncompressed) does not fit in 8 MiB.
check "output on a full disk" "No space left on device" \
  "$bin" upscale "$root/fixtures/coffee.jpg" "$mnt/out.tif" --scale 20 --quiet
# The scanline store does not fit either (temp dir on the full disk).
head -c 7000000 /dev/zero > "$mnt/filler"
"$bin" upscale "$root/fixtures/coffee.jpg" /tmp/enospc-out.tif --scale 2 --quiet --temp-dir "$mnt" --overwrite \
  && echo "ok: a small job with the store on a nearly full disk still works (sparse store)" || { echo "FAIL: small job"; fail=1; }
rm -f "$mnt/filler" /tmp/enospc-out.tif
exit $fail
