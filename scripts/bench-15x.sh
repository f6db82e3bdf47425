#!/usr/bin/env bash
# bench-15x.sh — the 15x gigapixel case, gigascale vs libvips vs sharp, side by side.
#
#   scripts/bench-15x.sh [OUTDIR]        (REPS=3 COMPRESSIONS="none zstd deflate" SCALE=15 X30=1)
#
# gigascale runs in several option sets per compression (CONFIGS_none, CONFIGS_zstd,
# CONFIGS_deflate: lines of "name|options"): the defaults (lanczos3, exact intermediate), and
# libvips's own arithmetic — it enlarges with a 4x4 bicubic and rounds between its passes — as
# `--filter bicubic --precision rounded`, at the default level and at the level that matches
# libvips's size.
#
# Input: a real photograph, "ColorfulCups" from Debian's plasma-workspace-wallpapers (GPL-2+,
# KDE Visual Design Group), rotated to portrait and resized to 2000x3000 with libvips, saved as
# JPEG Q92. Nothing of it is committed; it is rebuilt in ~/.cache/gigascale-bench.
# Prints one line per run (wall seconds, peak RSS, bytes), medians, the write floor (dd of the
# same byte count with fsync into OUTDIR) and ratios against libvips. Needs apt, npm, vips.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/gigascale-bench}
reps=${REPS:-3}
scale=${SCALE:-15}
comps=${COMPRESSIONS:-none zstd deflate}
cache=${GIGASCALE_BENCH_CACHE:-$HOME/.cache/gigascale-bench}
peers=${PEERS:-$root/../shared/peers.sh}
mkdir -p "$out" "$cache"
command -v vips >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq libvips-tools >/dev/null; }
[[ -x /usr/bin/time ]] || apt-get install -y -qq time >/dev/null
photo=$cache/photo-2000x3000.jpg
if [[ ! -f $photo ]]; then
  (cd "$cache" && apt-get download -qq plasma-workspace-wallpapers >/dev/null 2>&1 && dpkg -x plasma-workspace-wallpapers_*.deb x)
  src=$cache/x/usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg
  vips rot "$src" "$cache/rot.v" d90
  vips resize "$cache/rot.v" "$cache/r.v" 1.25 --vscale 1.171875 --kernel lanczos3
  vips jpegsave "$cache/r.v" "$photo" --Q 92
  rm -rf "$cache/x" "$cache"/*.v "$cache"/*.deb
fi
(cd "$root" && cargo build --release -q)
bin=$root/target/release/gigascale
echo "# $(date -u +%F) $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); input $photo $(vipsheader "$photo" 2>/dev/null)"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rb="--filter bicubic --precision rounded"
CONFIGS_none=${CONFIGS_none:-"default|
rounded-bicubic|$rb"}
CONFIGS_zstd=${CONFIGS_zstd:-"default|
rounded-bicubic|$rb
rounded-bicubic-level4|$rb --level 4"}
CONFIGS_deflate=${CONFIGS_deflate:-"default|
rounded-bicubic|$rb
rounded-bicubic-level4|$rb --level 4"}
for comp in $comps; do
  # Peers first (one run each), then every gigascale option set REPS times.
  pl=$("$peers" "$photo" "$scale" "$out/peers" "$comp" 2>"$out/peers.err") || echo "peers: a peer failed: $(grep -m1 -i error "$out/peers.err")"
  echo "$pl"
  vw=$(echo "$pl" | awk '/peer=vips/{for(i=1;i<=NF;i++) if($i~/^wall_s=/){sub("wall_s=","",$i); print $i}}')
  vb=$(echo "$pl" | awk '/peer=vips/{for(i=1;i<=NF;i++) if($i~/^bytes=/){sub("bytes=","",$i); print $i}}')
  rm -f "$out/peers/"*.tif
  cfgvar=CONFIGS_$comp
  while IFS='|' read -r name opts; do
    [[ -n $name ]] || continue
    walls=(); rsss=()
    for r in $(seq "$reps"); do
      rm -f "$out/gigascale.tif"
      t=$(mktemp)
      # shellcheck disable=SC2086
      /usr/bin/time -f "%e %M" -o "$t" "$bin" upscale "$photo" "$out/gigascale.tif" --scale "$scale" \
        --compression "$comp" --max-memory 64M --tile 256 --quiet --temp-dir "$out" $opts
      read -r wall rss <"$t"; rm -f "$t"
      bytes=$(stat -c %s "$out/gigascale.tif")
      echo "run=gigascale config=$name comp=$comp rep=$r wall_s=$wall peak_rss_kb=$rss bytes=$bytes"
      walls+=("$wall"); rsss+=("$rss")
    done
    gw=$(printf '%s\n' "${walls[@]}" | median); gr=$(printf '%s\n' "${rsss[@]}" | sort -n | tail -1)
    gb=$bytes
    fl=0
    if [[ $comp == none && $name == default ]]; then
      # The write floor: the same bytes (gigascale's own output, read back from the page cache)
      # written into the same directory with fsync. (Zeros are no floor: a thin-provisioned or
      # compressing virtual disk stores them for free.)
      sync
      fl=$( { /usr/bin/time -f "%e" dd if="$out/gigascale.tif" of="$out/floor.bin" bs=4M conv=fsync status=none; } 2>&1 )
      rm -f "$out/floor.bin"
      echo "floor comp=none dd_same_bytes_fsync_s=$fl bytes=$gb"
    fi
    rm -f "$out/gigascale.tif"
    awk -v c="$comp" -v n="$name" -v gw="$gw" -v gr="$gr" -v gb="$gb" -v vw="$vw" -v vb="$vb" -v fl="$fl" 'BEGIN {
      printf "summary comp=%s config=%s gigascale_median_s=%.2f peak_rss_mb=%.1f bytes=%.0f | vips_s=%.2f vips_bytes=%.0f | time_ratio=%.3f size_ratio=%.3f", c, n, gw, gr/1024, gb, vw, vb, gw/vw, gb/vb
      if (fl > 0) printf " floor_s=%.2f vs_floor=%.2f", fl, gw/fl
      printf "\n" }'
  done <<<"${!cfgvar:-default|}"
done
# The same case at 4x the area (x30 -> 60000x90000, zstd): peak RSS must stay within 10 % of x15.
if [[ ${X30:-1} == 1 ]]; then
  for s in 15 30; do
    t=$(mktemp)
    /usr/bin/time -f "%e %M" -o "$t" "$bin" upscale "$photo" "$out/x$s.tif" --scale $s --compression zstd \
      --max-memory 64M --quiet --temp-dir "$out" --overwrite
    read -r wall rss <"$t"; rm -f "$t"
    echo "area scale=$s comp=zstd wall_s=$wall peak_rss_kb=$rss bytes=$(stat -c %s "$out/x$s.tif")"
    rm -f "$out/x$s.tif"
  done
fi
