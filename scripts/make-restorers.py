#!/usr/bin/env python3
"""Export CodeFormer's and GFPGAN v1.4's real architectures, at a small width and with random
fixed-seed weights, to ONNX: the test restorers in fixtures/restorers/.

No registry package ships trained face-restoration weights, and their licences forbid bundling
them anyway; the tests need only the *architectures* (the graph a user's real export has: same
operators, same inputs and outputs), so the weights here are noise from a fixed seed. The faces
they "restore" are not faces; what the tests compare is our pipeline against the Python
reference of the same pipeline, through the same graph.

Usage (needs torch, onnx and pip; none of it is needed to run gigascale or its tests):
    python3 scripts/make-restorers.py fixtures/restorers
    python3 scripts/make-restorers.py --full DIR    (the published sizes, for timing: 300-400 MB)
    ... --from PKGDIR    (the two packages' files already downloaded there: offline machines)

The architecture code is read from the published packages at export time (never copied into
this repository): codeformer-pip 0.0.4 (CodeFormer's `codeformer_arch.py`/`vqgan_arch.py`,
S-Lab License 1.0) and gfpgan 1.3.8 (`gfpganv1_clean_arch.py`/`stylegan2_clean_arch.py`,
Apache-2.0). Only the module files are loaded; the packages' heavy imports are stubbed.
"""
import importlib.util
import logging
import subprocess
import sys
import tarfile
import tempfile
import types
import zipfile
from pathlib import Path

import torch
from torch import nn

SEED = 20261204


def fetch_sources(tmp: Path, local: Path | None) -> Path:
    """Download the two packages (no dependencies), or copy them from `local`, and unpack
    them under `tmp`."""
    if local:
        for name in ["codeformer-pip-0.0.4.tar.gz", "gfpgan-1.3.8-py3-none-any.whl"]:
            (tmp / name).write_bytes((local / name).read_bytes())
    else:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp),
             "codeformer-pip==0.0.4", "gfpgan==1.3.8"],
            check=True,
        )
    with tarfile.open(tmp / "codeformer-pip-0.0.4.tar.gz") as tar:
        tar.extractall(tmp, filter="data")
    with zipfile.ZipFile(tmp / "gfpgan-1.3.8-py3-none-any.whl") as whl:
        whl.extractall(tmp)
    return tmp


def stub(name: str, **attrs) -> None:
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module


class Registry:
    def register(self, *args, **kwargs):
        return lambda cls: cls


def default_init_weights(module_list, scale=1, bias_fill=0, **kwargs):
    modules = module_list if isinstance(module_list, list) else [module_list]
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                m.weight.data *= scale
                if m.bias is not None:
                    m.bias.data.fill_(bias_fill)


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install_stubs() -> None:
    for name in ["codeformer", "codeformer.basicsr", "codeformer.basicsr.archs", "basicsr",
                 "basicsr.archs", "basicsr.utils", "gfpgan", "gfpgan.archs"]:
        stub(name)
    registry = Registry()
    stub("codeformer.basicsr.utils", get_root_logger=lambda *a, **k: logging.getLogger("cf"))
    stub("codeformer.basicsr.utils.registry", ARCH_REGISTRY=registry)
    stub("basicsr.utils.registry", ARCH_REGISTRY=registry)
    stub("basicsr.archs.arch_util", default_init_weights=default_init_weights)


class TracedKeys(nn.ModuleDict):
    """CodeFormer looks its fusion blocks up by `str(x.shape[-1])`, which tracing spells
    `tensor(32)`: the same lookup by the number."""

    def __getitem__(self, key):
        return super().__getitem__(key[7:-1] if key.startswith("tensor(") else key)


def tiny_codeformer(src: Path, full: bool = False):
    """CodeFormer with nf 8 (not 64), a 64-wide 2-layer transformer, a 64-entry codebook;
    with `full`, the published configuration."""
    archs = src / "codeformer-pip-0.0.4/codeformer/basicsr/archs"
    vq = load("codeformer.basicsr.archs.vqgan_arch", archs / "vqgan_arch.py")
    cf = load("codeformer.basicsr.archs.codeformer_arch", archs / "codeformer_arch.py")
    nf = 64 if full else 8
    if not full:
        # GroupNorm's 32 groups need 32 channels: 4 groups at this width.
        vq.normalize = lambda channels: nn.GroupNorm(4, channels, eps=1e-6, affine=True)
    original = vq.VQAutoEncoder.__init__

    def narrow_init(self, img_size, _nf, ch_mult, *args, **kwargs):
        original(self, img_size, nf, ch_mult, *args, **kwargs)

    vq.VQAutoEncoder.__init__ = narrow_init
    try:
        model = cf.CodeFormer() if full else cf.CodeFormer(dim_embd=64, n_head=4, n_layers=2, codebook_size=64)
    finally:
        vq.VQAutoEncoder.__init__ = original
    # The fusion blocks are sized for nf 64: size them for the narrow generator.
    model.channels = {k: v * nf // 64 for k, v in model.channels.items()}
    model.fuse_convs_dict = TracedKeys(
        {f: cf.Fuse_sft_block(model.channels[f], model.channels[f]) for f in model.connect_list})

    class WithFidelity(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, image, weight):
            # `w > 0` is a Python branch in CodeFormer: traced as taken, `weight` scales the
            # fusion (as the published ONNX exports of CodeFormer do).
            return self.inner(image, w=weight[0].float(), adain=True)[0]

    return WithFidelity(model), (torch.zeros(1, 3, 512, 512), torch.ones(1, dtype=torch.float64))


def tiny_gfpgan(src: Path, full: bool = False):
    """GFPGAN v1.4's configuration (GFPGANv1Clean, sft_half, different_w) at 1/16 width."""
    archs = src / "gfpgan/archs"
    load("gfpgan.archs.stylegan2_clean_arch", archs / "stylegan2_clean_arch.py")
    gf = load("gfpgan.archs.gfpganv1_clean_arch", archs / "gfpganv1_clean_arch.py")
    model = gf.GFPGANv1Clean(
        out_size=512, num_style_feat=512 if full else 32, channel_multiplier=2, decoder_load_path=None,
        fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1 if full else 1 / 16,
        sft_half=True)

    class Deterministic(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, image):
            # The fixed noise buffers, not fresh noise at every call.
            return self.inner(image, return_rgb=False, randomize_noise=False)[0]

    return Deterministic(model), (torch.zeros(1, 3, 512, 512),)


def randomize(model: nn.Module) -> None:
    """Fixed-seed weights, scaled so that activations stay in a useful range."""
    torch.manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / fan_in**0.5)
            elif "weight" in name or "scale" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.05 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if b.is_floating_point():
                b.copy_(0.1 * torch.randn_like(b))


def export(model: nn.Module, args, names, path: Path) -> None:
    randomize(model)
    model.eval()
    torch.onnx.export(model, args, str(path), input_names=names, output_names=["output"],
                      opset_version=17, dynamo=False, do_constant_folding=True)
    print(f"{path}: {path.stat().st_size} bytes")


def main() -> None:
    args = sys.argv[1:]
    full = "--full" in args
    local = None
    if "--from" in args:
        i = args.index("--from")
        local = Path(args[i + 1])
        del args[i:i + 2]
    args = [a for a in args if a != "--full"]
    out = Path(args[0] if args else "fixtures/restorers")
    out.mkdir(parents=True, exist_ok=True)
    size = "full" if full else "tiny"
    with tempfile.TemporaryDirectory() as tmp:
        src = fetch_sources(Path(tmp), local)
        install_stubs()
        model, inputs = tiny_codeformer(src, full)
        export(model, inputs, ["input", "weight"], out / f"codeformer-{size}.onnx")
        model, inputs = tiny_gfpgan(src, full)
        export(model, inputs, ["input"], out / f"gfpgan-{size}.onnx")


if __name__ == "__main__":
    main()
