#!/usr/bin/env bash
# device-rows.sh — on the lent GPU machine (../shared/device-gpu.md): the tensor-core
# convolutions' cuts (GIGASCALE_GPU_TENSOR_CUT=MBxNBxROWS, src/gpu/neural_cut.rs; blocks
# spanning several output rows share their input loads) against each other, for
# realesrgan-x4plus (24 bits, its fitted width) on a 1000x1000 crop and realesr-animevideov3-x4
# on the 2000x3000 photo, with ncnn-vulkan timed in the same call: scripts/device-knob.sh with
# the cuts as its settings (the CPU's bytes on two crops at the default cut, then every cut's
# outputs against the first's). CUTS (default "4x1 4x1x4 4x1x2 2x2x2"), REPS (3), REPS15 (0).
# Carry: .gl, .whl-x4/realesrgan.tar.xz, bench/gigascale.xz, bench/photo-2000x3000.jpg.
set -uo pipefail
KNOB=GIGASCALE_GPU_TENSOR_CUT VALUES="${CUTS:-4x1 4x1x4 4x1x2 2x2x2}" exec bash scripts/device-knob.sh
