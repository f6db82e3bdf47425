#!/usr/bin/env python3
"""Zero the GPU code a shared library carries for GPUs other than one architecture.

    strip-fatbin.py IN.so OUT.so [SM]        (SM: 90 for Hopper, the default)

A CUDA library's `.nv_fatbin` section holds containers (magic 0xBA55ED50), one per compiled
file, each with one entry per GPU architecture: kind 1 PTX, kind 2 a cubin (machine code),
the architecture as a 32-bit word 28 bytes into the entry's header. The CUDA driver loads the
entry for the GPU it runs on, so the other cubins are never read: this zeroes their bytes
(headers and sizes unchanged), which xz then squeezes to nothing. A container with no entry
for SM (and no PTX) is left whole. Used to carry ONNX Runtime's CUDA provider (284 MB, 186 MB
as xz) to the lent H200 within the carry limit (52 MB as xz with only sm_90 kept); it changes
no code that runs there. Not part of gigascale.
"""
import struct
import subprocess
import sys

MAGIC = 0xBA55ED50


def fatbin_section(path):
    out = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if ".nv_fatbin" in line:
            fields = line.split("]")[1].split()
            return int(fields[3], 16), int(fields[4], 16)
    sys.exit(f"{path}: no .nv_fatbin section")


def entries(data, start, end):
    at = start
    while at < end:
        kind, _, header, size = struct.unpack_from("<HHIQ", data, at)
        arch = struct.unpack_from("<I", data, at + 28)[0]
        yield kind, arch, at + header, size
        at += header + size


def main():
    src, dst = sys.argv[1], sys.argv[2]
    keep = int(sys.argv[3]) if len(sys.argv) > 3 else 90
    data = bytearray(open(src, "rb").read())
    offset, length = fatbin_section(src)
    at, zeroed, whole = offset, 0, 0
    while at < offset + length:
        magic, _, header, size = struct.unpack_from("<IHHQ", data, at)
        if magic != MAGIC:
            at += 8  # padding between containers
            continue
        found = list(entries(data, at + header, at + header + size))
        if any(kind == 1 or arch == keep for kind, arch, _, _ in found):
            for kind, arch, payload, n in found:
                if kind == 2 and arch != keep:
                    data[payload:payload + n] = bytes(n)
                    zeroed += n
        else:
            whole += 1
        at += header + size
    open(dst, "wb").write(data)
    print(f"{dst}: {zeroed} bytes of other GPUs' cubins zeroed; {whole} containers without sm_{keep} left whole")


if __name__ == "__main__":
    main()
