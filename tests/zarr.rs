//! OME-Zarr output and jobs cut into units. The single-process output is the reference: its
//! pixels equal the TIFF output of the same options at every level (read by the tiff crate and
//! by zarrs), its metadata passes the OME-Zarr models' validation, and `plan` + units run two
//! at a time + `finalize` give the same bytes (`diff -r`) for every input format, also after a
//! unit is killed mid-shard or run twice at once. zarr-python and ome-zarr-models read it too
//! (tests/zarr_python.rs).
use crate::util::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The options of the test jobs: small tiles and shards, so that a small image has several
/// shards per unit, several units and three levels.
const JOB: [&str; 8] = ["--scale", "7", "--tile", "32", "--shard", "64", "--pyramid", "-q"];

/// `plan`, every unit run by `xargs -P2`, `finalize`.
fn distributed(input: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["plan", s(input), s(out)];
    args.extend(JOB);
    args.extend(extra);
    let n: u32 = ok(&gs(&args)).trim().parse().unwrap();
    assert!(n >= 2, "{n} units");
    let xargs = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "seq 0 {} | xargs -P2 -I{{}} '{}' run '{}' --unit {{}} -q",
            n - 1,
            env!("CARGO_BIN_EXE_gigascale"),
            s(out)
        ))
        .output()
        .unwrap();
    ok(&xargs);
    ok(&gs(&["finalize", s(out)]));
}

fn same_tree(a: &Path, b: &Path) {
    let o = Command::new("diff").arg("-r").arg(a).arg(b).output().unwrap();
    assert!(o.status.success(), "diff -r: {}", String::from_utf8_lossy(&o.stdout));
}

/// Every file under `dir` whose name marks it temporary.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(temporaries(&p));
        } else if p.file_name().unwrap().to_string_lossy().contains(".gigascale-") {
            out.push(p);
        }
    }
    out
}

/// Level `n` of an OME-Zarr output through zarrs: (channels, height, width) and the samples
/// back in interleaved order (as a TIFF holds them), 16-bit as little-endian bytes.
fn zarrs_level(root: &Path, n: usize) -> ((u64, u64, u64), Vec<u8>) {
    use zarrs::array::Array;
    let store = std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(root).unwrap());
    let a = Array::open(store, &format!("/{n}")).unwrap();
    let sh = a.shape().to_vec();
    let (c, h, w) = (sh[0], sh[1], sh[2]);
    let subset = [0..c, 0..h, 0..w];
    let planar: Vec<u8> = match a.retrieve_array_subset::<Vec<u8>>(&subset) {
        Ok(v) => v,
        // uint16
        Err(_) => a.retrieve_array_subset::<Vec<u16>>(&subset).unwrap().iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    let sb = planar.len() / (c * h * w) as usize;
    let mut inter = vec![0u8; planar.len()];
    for ch in 0..c as usize {
        for i in 0..(h * w) as usize {
            let (src, dst) = ((ch * (h * w) as usize + i) * sb, (i * c as usize + ch) * sb);
            inter[dst..dst + sb].copy_from_slice(&planar[src..src + sb]);
        }
    }
    ((c, h, w), inter)
}

/// Every image of a TIFF (level 0, then the reduced levels) through the tiff crate, 16-bit
/// samples as little-endian bytes.
fn tiff_levels(path: &Path) -> Vec<((u32, u32), Vec<u8>)> {
    use tiff::decoder::{Decoder, DecodingResult};
    let mut d = Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    let mut out = Vec::new();
    loop {
        let dims = d.dimensions().unwrap();
        let bytes = match d.read_image().unwrap() {
            DecodingResult::U8(v) => v,
            DecodingResult::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
            _ => panic!("sample type"),
        };
        out.push((dims, bytes));
        if !d.more_images() {
            return out;
        }
        d.next_image().unwrap();
    }
}

#[test]
fn units_equal_one_process_and_the_tiff_for_every_input_format() {
    let d = scratch("formats");
    let inputs = [
        "coffee.jpg",
        "coffee-progressive.jpg",
        "coffee-strips-deflate.tif",
        "coffee-tiled-lzw.tif",
        "coffee-interlaced.png",
        "chelsea-rgba.png",
        "camera16.tif",
        "camera-graya.png",
    ];
    for name in inputs {
        let input = fixture(name);
        let single = d.join(format!("{name}.ome.zarr"));
        let mut args = vec!["upscale", s(&input), s(&single)];
        args.extend(JOB);
        ok(&gs(&args));
        let multi = d.join(format!("{name}-units.ome.zarr"));
        distributed(&input, &multi, &[]);
        same_tree(&single, &multi);
        assert!(temporaries(&multi).is_empty());

        // Pixels: the TIFF of the same options (with zstd), level by level.
        let tif = d.join(format!("{name}.tif"));
        let mut args = vec!["upscale", s(&input), s(&tif), "--compression", "zstd"];
        args.extend(JOB.iter().filter(|a| !["--shard", "64"].contains(a)));
        ok(&gs(&args));
        let tiff = tiff_levels(&tif);
        let levels = std::fs::read_dir(&single).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
        assert_eq!(levels, 3, "{name}: 64-pixel shards give levels of 64, 32 and 16");
        for (n, ((w, h), want)) in tiff.iter().enumerate().take(levels) {
            let ((_, zh, zw), got) = zarrs_level(&single, n);
            assert_eq!((zw, zh), (*w as u64, *h as u64), "{name} level {n}");
            assert!(got == *want, "{name} level {n}: zarr pixels differ from the TIFF's");
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn metadata_is_valid_ome_zarr_and_appears_only_when_complete() {
    use ome_zarr_metadata::v0_5::OmeZarrGroupMetadata;
    use ome_zarr_metadata::Validate;
    let d = scratch("meta");
    let out = d.join("out.ome.zarr");
    let input = fixture("chelsea-rgba.png");
    let mut args = vec!["plan", s(&input), s(&out)];
    args.extend(JOB);
    let n: u32 = ok(&gs(&args)).trim().parse().unwrap();
    let group =
        || -> serde_json::Value { serde_json::from_slice(&std::fs::read(out.join("zarr.json")).unwrap()).unwrap() };
    assert!(group()["attributes"]["ome"].is_null(), "no OME metadata before finalize");
    assert!(group()["attributes"]["gigascale"]["plan"].is_object());
    // Units run, one left out: finalize names it and fails.
    for u in (0..n).filter(|&u| u != 1) {
        ok(&gs(&["run", s(&out), "--unit", &u.to_string(), "-q"]));
    }
    let o = gs(&["finalize", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("from unit(s) 1;"), "{err}");
    assert!(group()["attributes"]["ome"].is_null());
    ok(&gs(&["run", s(&out), "--unit", "1", "-q"]));
    ok(&gs(&["finalize", s(&out)]));
    let g = group();
    let meta: OmeZarrGroupMetadata = serde_json::from_value(g.clone()).unwrap();
    meta.validate().unwrap();
    let ms = &g["attributes"]["ome"]["multiscales"][0];
    assert_eq!(
        ms["axes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["c", "y", "x"]
    );
    let t = &ms["datasets"][2]["coordinateTransformations"];
    assert_eq!(t[0]["scale"], serde_json::json!([1.0, 4.0, 4.0]));
    assert_eq!(t[1]["translation"], serde_json::json!([0.0, 1.5, 1.5]));
    // Level 0's array: 4 channels first, shards of 64, inner chunks of 32, zstd, crc32c index.
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("0/zarr.json")).unwrap()).unwrap();
    let (w, h) = (7 * 120, 7 * 80);
    assert_eq!(a["shape"], serde_json::json!([4, h, w]));
    assert_eq!(a["chunk_grid"]["configuration"]["chunk_shape"], serde_json::json!([4, 64, 64]));
    let sharding = &a["codecs"][0];
    assert_eq!(sharding["name"], "sharding_indexed");
    assert_eq!(sharding["configuration"]["chunk_shape"], serde_json::json!([4, 32, 32]));
    assert_eq!(sharding["configuration"]["codecs"][1]["name"], "zstd");
    assert_eq!(sharding["configuration"]["index_codecs"][1]["name"], "crc32c");
    assert_eq!(a["dimension_names"], serde_json::json!(["c", "y", "x"]));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_killed_unit_reruns_and_a_unit_run_twice_at_once_give_the_same_bytes() {
    let d = scratch("faults");
    let input = fixture("coffee.jpg");
    let single = d.join("single.ome.zarr");
    let mut args = vec!["upscale", s(&input), s(&single)];
    args.extend(JOB);
    ok(&gs(&args));

    let out = d.join("out.ome.zarr");
    let mut args = vec!["plan", s(&input), s(&out)];
    args.extend(JOB);
    let n: u32 = ok(&gs(&args)).trim().parse().unwrap();
    // Unit 1 killed (SIGKILL, by the hidden hook) after 5 of its tiles: a shard is 2x2 tiles, so
    // its first shard is in place and its second one half written. The hook counts positions
    // from the start of the job: unit 1 starts after one band (2 rows of 33 tiles).
    let band = 2 * (7 * 150u64).div_ceil(32);
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .args(["run", s(&out), "--unit", "1", "-q"])
        .env("GIGASCALE_TEST_KILL_AFTER_TILES", (band + 5).to_string())
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(9), "killed by the hook: {}", String::from_utf8_lossy(&o.stderr));
    // Level 0's second shard half written (the level thread may also have been writing the
    // first shard's reduced levels).
    let left = temporaries(&out);
    let partial: Vec<_> = left.iter().filter(|p| p.starts_with(out.join("0/c/0/1"))).collect();
    assert_eq!(partial.len(), 1, "one partial level-0 shard: {left:?}");
    assert!(std::fs::metadata(partial[0]).unwrap().len() > 0, "the partial shard has bytes");
    assert!(out.join("0/c/0/1/0").is_file() && !out.join("0/c/0/1/1").exists());
    // Unit 2 run twice at once; then every unit (1 again: it removes its dead temporary).
    let twice: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_gigascale")).args(["run", s(&out), "--unit", "2", "-q"]).spawn().unwrap()
        })
        .collect();
    for mut c in twice {
        assert!(c.wait().unwrap().success());
    }
    for u in 0..n {
        ok(&gs(&["run", s(&out), "--unit", &u.to_string(), "-q"]));
    }
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
    ok(&gs(&["finalize", s(&out)]));
    same_tree(&single, &out);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn refusals_are_clear() {
    let d = scratch("refuse");
    let input = fixture("coffee.jpg");
    let out = d.join("o.ome.zarr");
    let cases: [(&[&str], &str); 4] = [
        (&["--scale", "2", "--compression", "deflate"], "zstd"),
        (&["--scale", "2", "--shard", "100"], "--shard 100"),
        (&["--scale", "2", "--resume"], "--resume"),
        (&["--scale", "2", "--model", "photo"], "--model"),
    ];
    for (extra, says) in cases {
        let mut args = vec!["upscale", s(&input), s(&out)];
        args.extend(extra);
        let o = gs(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} left output behind");
    }
    // A directory gigascale did not write is never replaced, not even with --overwrite.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("precious"), b"x").unwrap();
    let o = gs(&["upscale", s(&input), s(&out), "--scale", "2", "--overwrite"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not a gigascale"));
    assert!(out.join("precious").exists());
    let o = gs(&["run", s(&out), "--unit", "0"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("zarr.json"));
    // A unit past the end, and a unit from the environment.
    let planned = d.join("p.ome.zarr");
    let n = ok(&gs(&["plan", s(&input), s(&planned), "--scale", "2", "-q"]));
    assert_eq!(n.trim(), "1");
    let o = gs(&["run", s(&planned), "--unit", "1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("units 0..1"));
    let o = Command::new(env!("CARGO_BIN_EXE_gigascale"))
        .args(["run", s(&planned), "--unit-from-env", "-q"])
        .env("JOB_COMPLETION_INDEX", "0")
        .output()
        .unwrap();
    ok(&o);
    ok(&gs(&["finalize", s(&planned)]));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn one_unit_stays_within_its_memory_budget() {
    let d = scratch("memory");
    let input = d.join("in.png");
    photo_png(&input, 400, 600);
    let out = d.join("out.ome.zarr");
    ok(&gs(&["plan", s(&input), s(&out), "--scale", "15", "--shard", "2048", "--pyramid", "-q"]));
    let args = ["run", s(&out), "--unit", "1", "--max-memory", "64M", "--backend", "cpu", "-q"];
    let (o, rss) = measured(&args.map(std::ffi::OsStr::new));
    assert!(o.status.success(), "{}", stderr(&o));
    eprintln!("unit 1 of 6000x9000 with a pyramid: peak RSS {} MB under --max-memory 64M", rss >> 20);
    assert!(rss <= 64 << 20, "peak RSS {} kB over the 64M budget", rss >> 10);
    let _ = std::fs::remove_dir_all(&d);
}

/// The image's resolution becomes the OME axes' physical unit: coffee-exif.jpg at 300 dpi,
/// enlarged twice, has 600 dpi pixels of 25400/600 µm; every level's scale and translation
/// are in micrometres, and the metadata validates. Without a resolution the axes have no unit.
#[test]
fn resolution_gives_the_axes_micrometres() {
    use ome_zarr_metadata::v0_5::OmeZarrGroupMetadata;
    use ome_zarr_metadata::Validate;
    let d = TempDir::new("zarr-units");
    for (input, pixel) in [("coffee-exif.jpg", Some(25400.0 / 600.0)), ("coffee.jpg", None)] {
        let out = d.join(format!("{input}.ome.zarr"));
        ok(&gs(&[
            "upscale",
            s(&fixture(input)),
            s(&out),
            "--scale",
            "2",
            "--pyramid",
            "--tile",
            "32",
            "--shard",
            "64",
        ]));
        let g: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("zarr.json")).unwrap()).unwrap();
        serde_json::from_value::<OmeZarrGroupMetadata>(g.clone()).unwrap().validate().unwrap();
        let ms = &g["attributes"]["ome"]["multiscales"][0];
        assert_eq!(ms["axes"][1]["unit"].as_str(), pixel.map(|_| "micrometer"), "{input}");
        let p = pixel.unwrap_or(1.0);
        let t = &ms["datasets"][1]["coordinateTransformations"];
        let close = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
        assert!(close(&t[0]["scale"][1], 2.0 * p) && close(&t[0]["scale"][2], 2.0 * p), "{input}: {t}");
        assert!(close(&t[1]["translation"][1], 0.5 * p), "{input}: {t}");
    }
}
