//! The Python side of the OME-Zarr output: zarr-python 3 reads every level with the pixels of
//! the TIFF output of the same options, ome-zarr-models validates the metadata, and the Dask
//! package (`python/`) runs a job on a `LocalCluster(n_workers=2, threads_per_worker=1)` to the
//! single-process bytes, through its API and through `python -m gigascale.dask`.
//!
//! The interpreter is `$GIGASCALE_PYTHON` (default `python3`) with zarr, ome-zarr-models and
//! dask[distributed] installed; without them these tests are skipped, unless
//! `GIGASCALE_REQUIRE_PYTHON=1` (CI sets it, with a virtual environment: .ci/run).
use crate::util::*;
use std::path::Path;
use std::process::Command;

fn python() -> Option<String> {
    let py = python_bin();
    let probe = Command::new(&py).args(["-c", "import zarr, ome_zarr_models, distributed, numpy"]).output();
    match probe {
        Ok(o) if o.status.success() => Some(py),
        _ if std::env::var("GIGASCALE_REQUIRE_PYTHON").is_ok_and(|v| v == "1") => {
            panic!("GIGASCALE_REQUIRE_PYTHON=1 but {py} lacks zarr, ome-zarr-models or dask[distributed]")
        }
        _ => {
            eprintln!("skipped: {py} lacks zarr, ome-zarr-models or dask[distributed] (set GIGASCALE_PYTHON)");
            None
        }
    }
}

fn py_cmd(py: &str) -> Command {
    let mut c = Command::new(py);
    c.env("GIGASCALE_BIN", env!("CARGO_BIN_EXE_gigascale"))
        .env("PYTHONPATH", Path::new(env!("CARGO_MANIFEST_DIR")).join("python"));
    c
}

const JOB: [&str; 7] = ["--scale", "9", "--tile", "64", "--shard", "128", "--pyramid"];

/// Reads every level with zarr-python and compares it with the TIFF's level (tifffile-free:
/// the TIFF's pixels are decoded here by the tiff crate and handed over as raw files).
const READ: &str = r#"
import sys, json, warnings, numpy as np, zarr
from ome_zarr_models import open_ome_zarr
root, raw = sys.argv[1], json.loads(sys.argv[2])
warnings.simplefilter("error")  # nothing in the output may puzzle zarr-python
g = zarr.open_group(root, mode="r")
image = open_ome_zarr(g)  # validates the OME-Zarr 0.5 metadata
assert type(image).__name__ == "Image", type(image)
datasets = g.attrs["ome"]["multiscales"][0]["datasets"]
assert len(datasets) == len(raw) >= 2, (len(datasets), len(raw))
for n, (path, w, h, dtype) in enumerate(raw):
    a = g[datasets[n]["path"]]
    assert a.shape[1:] == (h, w), (a.shape, w, h)
    want = np.fromfile(path, dtype=dtype).reshape(h, w, a.shape[0])
    got = np.moveaxis(a[:], 0, -1)
    assert got.dtype == want.dtype and np.array_equal(got, want), f"level {n} differs"
    print(f"level {n}: {a.shape} {a.dtype} shards {a.shards} chunks {a.chunks} equal")
"#;

#[test]
fn zarr_python_reads_every_level_and_the_metadata_validates() {
    let Some(py) = python() else { return };
    let d = scratch("read");
    for name in ["coffee.jpg", "chelsea-rgba.png", "camera16.tif"] {
        let input = fixture(name);
        let out = d.join(format!("{name}.ome.zarr"));
        let tif = d.join(format!("{name}.tif"));
        let mut args = vec!["upscale", input.to_str().unwrap(), out.to_str().unwrap(), "-q"];
        args.extend(JOB);
        ok(&gs(&args));
        let mut args = vec!["upscale", input.to_str().unwrap(), tif.to_str().unwrap(), "-q", "--compression", "zstd"];
        args.extend(JOB.iter().filter(|a| !["--shard", "128"].contains(a)));
        ok(&gs(&args));
        // The TIFF's levels as raw files, as many as the OME-Zarr has.
        let levels = std::fs::read_dir(&out).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
        let mut dec = tiff::decoder::Decoder::new(std::fs::File::open(&tif).unwrap()).unwrap();
        let mut raw = Vec::new();
        for n in 0..levels {
            if n > 0 {
                dec.next_image().unwrap();
            }
            let (w, h) = dec.dimensions().unwrap();
            let (bytes, dtype) = match dec.read_image().unwrap() {
                tiff::decoder::DecodingResult::U8(v) => (v, "<u1"),
                tiff::decoder::DecodingResult::U16(v) => (v.iter().flat_map(|s| s.to_le_bytes()).collect(), "<u2"),
                _ => panic!("sample type"),
            };
            let p = d.join(format!("{name}-{n}.raw"));
            std::fs::write(&p, bytes).unwrap();
            raw.push(serde_json::json!([p, w, h, dtype]));
        }
        let o =
            Command::new(&py).args(["-c", READ, out.to_str().unwrap(), &serde_json::json!(raw).to_string()]).output();
        let said = ok(&o.unwrap());
        eprintln!("{name}:\n{said}");
        assert_eq!(said.matches(" equal").count(), levels);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn dask_local_cluster_gives_the_single_process_bytes() {
    let Some(py) = python() else { return };
    let d = scratch("dask");
    let input = fixture("coffee.jpg");
    let single = d.join("single.ome.zarr");
    let mut args = vec!["upscale", input.to_str().unwrap(), single.to_str().unwrap(), "-q"];
    args.extend(JOB);
    ok(&gs(&args));
    // The API, on the cluster the issue names.
    let api = d.join("api.ome.zarr");
    let script = r#"
import sys
from distributed import Client, LocalCluster
from gigascale.dask import upscale
if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        r = upscale(sys.argv[1], sys.argv[2], client=client, scale=9, tile=64, shard=128, pyramid=True)
        assert r["units"] == len(r["reports"]) >= 2, r
        assert len({rep["unit"] for rep in r["reports"]}) == r["units"]
        print(r["units"], "units")
"#;
    let o = py_cmd(&py).args(["-c", script, input.to_str().unwrap(), api.to_str().unwrap()]).output().unwrap();
    eprintln!("{}", ok(&o));
    let same = |a: &Path| {
        let o = Command::new("diff").arg("-r").arg(&single).arg(a).output().unwrap();
        assert!(o.status.success(), "diff -r {}: {}", a.display(), String::from_utf8_lossy(&o.stdout));
    };
    same(&api);
    // The command line, starting its own LocalCluster.
    let cli = d.join("cli.ome.zarr");
    let mut args = vec!["-m", "gigascale.dask", input.to_str().unwrap(), cli.to_str().unwrap(), "--workers", "2"];
    args.extend(JOB);
    let o = py_cmd(&py).args(&args).output().unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("units in") && err.contains("complete"), "{err}");
    same(&cli);
    // A bad option is the binary's error, and the exit status says so.
    let o =
        py_cmd(&py).args(["-m", "gigascale.dask", "nonexistent.jpg", "x.ome.zarr", "--scale", "2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nonexistent.jpg"));
    let _ = std::fs::remove_dir_all(&d);
}

/// Pillow, another reader: the lossless WebP equals the PNG of the same job, the lossy WebP
/// and the JPEG come close, and the upright output of a turned photo says orientation 1.
const PILLOW: &str = r#"
import sys, numpy as np
from PIL import Image
png, lossless, lossy, jpg, turned = sys.argv[1:6]
want = np.asarray(Image.open(png).convert("RGB")).astype(float)
got = np.asarray(Image.open(lossless).convert("RGB")).astype(float)
assert Image.open(lossless).format == "WEBP" and np.array_equal(got, want), "lossless WebP differs"
for path, least in [(lossy, 38.0), (jpg, 38.0)]:
    a = np.asarray(Image.open(path).convert("RGB")).astype(float)
    db = 10 * np.log10(255.0 ** 2 / max(((a - want) ** 2).mean(), 1e-9))
    print(f"{path}: {db:.1f} dB")
    assert db >= least, (path, db)
t = Image.open(turned)
assert t.size == (200, 300) and t.getexif().get(0x0112, 1) == 1, (t.size, dict(t.getexif()))
print("pillow ok")
"#;

#[test]
fn pillow_reads_webp_and_jpeg_outputs() {
    let Some(py) = python() else { return };
    let probe = Command::new(&py).args(["-c", "import PIL"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(!std::env::var("GIGASCALE_REQUIRE_PYTHON").is_ok_and(|v| v == "1"), "{py} lacks Pillow");
        return;
    }
    let d = TempDir::new("pillow");
    let outs = ["out.png", "lossless.webp", "lossy.webp", "out.jpg"].map(|n| d.join(n));
    for (out, extra) in outs.iter().zip([&[][..], &[][..], &["--quality", "90"][..], &["--quality", "95"][..]]) {
        ok(&gs(&[&["upscale", s(&fixture("coffee.jpg")), s(out), "--scale", "3"][..], extra].concat()));
    }
    let turned = d.join("turned.jpg");
    ok(&gs(&["upscale", s(&fixture("coffee-rot6.jpg")), s(&turned), "--scale", "2"]));
    let o = py_cmd(&py).args(["-c", PILLOW]).args(&outs).arg(&turned).output().unwrap();
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
