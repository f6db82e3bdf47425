#!/usr/bin/env python3
"""Draws docs/images/layers.svg and .png: the library's modules in the layers src/lib.rs lists,
with an arrow for every module one uses (transitively reduced by graphviz's `tred`, so an
arrow implied by two others is left out). tests/layers.rs checks the same facts in CI.
Usage: scripts/layers-picture.py (needs graphviz: dot, tred)."""
import pathlib, re, subprocess

root = pathlib.Path(__file__).resolve().parent.parent
src = root / "src"
lib = (src / "lib.rs").read_text()
table = lib.split("// the sources and checks both; docs/how-it-works.md draws the picture.\n")[1]
layers = []
for line in table.splitlines():
    if not line.startswith("//"):
        break
    words = line[2:].split()
    if len(words) < 2:
        continue
    name, mods = words[0], []
    for w in words[1:]:
        if w.startswith("("):
            break
        mods.append(w.rstrip(","))
    layers.append((name, mods))
layer_of = {m: i for i, (_, ms) in enumerate(layers) for m in ms}
reexport = {}
for l in lib.splitlines():
    if l.startswith("pub use "):
        body = l[len("pub use "):].rstrip(";")
        mod = body.split("::")[0]
        for n in body.rsplit("::", 1)[1].strip("{}").split(","):
            reexport[n.strip()] = mod

edges = set()
for f in src.rglob("*.rs"):
    rel = f.relative_to(src).parts
    if rel[0] in ("bin", "lib.rs"):
        continue
    me = rel[0].removesuffix(".rs")
    code = f.read_text().split("#[cfg(test)]\nmod tests")[0]
    code = re.sub(r"//.*", "", code)
    names = re.findall(r"(?<![\w:])crate::(\w+)", code)
    for group in re.findall(r"(?<![\w:])crate::\{([^}]*)\}", code):
        names += re.findall(r"(?:^|,)\s*(\w+)", group)
    for n in names:
        t = n if n in layer_of else reexport.get(n)
        if t and t != me and me in layer_of:
            edges.add((me, t))

dot = ["digraph layers {", "rankdir=TB; nodesep=0.25; ranksep=0.35;",
       'node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica", fontsize=11];',
       'edge [color="#7a8aa6", arrowsize=0.6];']
for i, (name, mods) in enumerate(layers):
    dot.append(f'subgraph cluster_{i} {{ label="{name}"; labeljust=l; fontname="Helvetica"; fontsize=9; '
               f'fontcolor="#666677"; color="#dde3ee"; {{rank=same; ' + " ".join(f'"{m}";' for m in mods) + "} }")
for a, b in sorted(edges):
    dot.append(f'"{a}" -> "{b}";')
dot.append("}")
reduced = subprocess.run(["tred"], input="\n".join(dot), capture_output=True, text=True, check=True).stdout
out = root / "docs" / "images"
for fmt in ("svg", "png"):
    args = ["dot", f"-T{fmt}", "-o", str(out / f"layers.{fmt}")] + (["-Gdpi=110"] if fmt == "png" else [])
    subprocess.run(args, input=reduced, text=True, check=True)
print(f"{len(layers)} layers, {len(edges)} module dependencies -> docs/images/layers.svg, layers.png")
