# device-prelude.sh — sourced by the device-*.sh scripts on the lent GPU machine
# (../shared/device-gpu.md): what each of them first needs.
#   device_gpu              the Vulkan loader (and libomp5) from .gl, NVIDIA's driver file, a
#                           fresh pipeline cache (GIGASCALE_CACHE)
#   device_wheel TAR DIR    a wheel's package tarball (.whl-*/...tar.xz) unpacked into DIR
#   device_bins NAME...     bench/NAME.xz unpacked to /tmp/NAME (always: a warm machine may
#                           keep an older one there)
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
