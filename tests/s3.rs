//! OME-Zarr output to an S3-compatible object store: a local S3 server (moto, from PyPI) on
//! 127.0.0.1, `plan` + units run two at a time + `finalize` on `s3://bucket/out.ome.zarr`, and
//! a single-process upscale there; every object downloaded equals the files of the
//! single-process output to a directory (`diff -r`), and nothing else is in the bucket.
//!
//! The server is `$GIGASCALE_PYTHON -m moto.server` (default `python3`); without moto the test
//! is skipped, unless `GIGASCALE_REQUIRE_S3=1` (CI sets it: .ci/run).
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The moto server, killed when dropped.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto() -> Option<(Moto, String)> {
    let py = python_bin();
    let has = Command::new(&py).args(["-c", "import moto.server"]).output().is_ok_and(|o| o.status.success());
    if !has {
        let required = std::env::var("GIGASCALE_REQUIRE_S3").is_ok_and(|v| v == "1");
        assert!(!required, "GIGASCALE_REQUIRE_S3=1 but {py} has no moto[server]");
        eprintln!("skipped: {py} has no moto[server] (set GIGASCALE_PYTHON)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&py)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Moto(child);
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if ureq::get(&url).call().is_ok() {
            return Some((server, url));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("moto did not start on {url}");
}

/// `gigascale ARGS` with the S3 client pointed at `endpoint`.
fn gs_s3(endpoint: &str, args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .unwrap()
}

/// Downloads every object of `bucket` into `dir` with boto3 (AWS's own client, installed
/// with moto), keys as paths.
const DOWNLOAD: &str = r#"
import os, sys, boto3
endpoint, bucket, dest = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for o in page.get("Contents", []):
        path = os.path.join(dest, o["Key"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, o["Key"], path)
"#;

#[test]
fn units_on_s3_give_the_bytes_of_the_directory_output() {
    let Some((_server, endpoint)) = moto() else { return };
    let d = std::env::temp_dir().join(format!("gigascale-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    ureq::put(&format!("{endpoint}/tiles")).send_empty().unwrap();
    let input: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/chelsea-rgba.png");
    let job = ["--scale", "7", "--tile", "32", "--shard", "64", "--pyramid", "-q"];
    let local = d.join("local.ome.zarr");
    let mut args = vec!["upscale", input.to_str().unwrap(), local.to_str().unwrap()];
    args.extend(job);
    ok(&gs_s3(&endpoint, &args));

    // plan, units two at a time, finalize.
    let url = "s3://tiles/out.ome.zarr";
    let mut args = vec!["plan", input.to_str().unwrap(), url];
    args.extend(job);
    let n: u32 = ok(&gs_s3(&endpoint, &args)).trim().parse().unwrap();
    assert!(n >= 2);
    let mut running = Vec::new();
    for u in 0..n {
        let unit = u.to_string();
        running.push(std::thread::spawn({
            let endpoint = endpoint.clone();
            move || ok(&gs_s3(&endpoint, &["run", url, "--unit", &unit, "-q"]))
        }));
        if running.len() == 2 {
            running.remove(0).join().unwrap();
        }
    }
    for r in running {
        r.join().unwrap();
    }
    let o = gs_s3(&endpoint, &["finalize", "s3://tiles/out.ome.zarr"]);
    ok(&o);
    // And the whole job in one process, straight to the bucket.
    let mut args = vec!["upscale", input.to_str().unwrap(), "s3://tiles/single.ome.zarr"];
    args.extend(job);
    ok(&gs_s3(&endpoint, &args));

    let got = d.join("bucket");
    let py = python_bin();
    let o = Command::new(py).args(["-c", DOWNLOAD, &endpoint, "tiles", got.to_str().unwrap()]).output().unwrap();
    ok(&o);
    let mut top: Vec<String> =
        std::fs::read_dir(&got).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    top.sort();
    assert_eq!(top, ["out.ome.zarr", "single.ome.zarr"], "nothing else in the bucket");
    for prefix in &top {
        let o = Command::new("diff").arg("-r").arg(&local).arg(got.join(prefix)).output().unwrap();
        assert!(o.status.success(), "{prefix}: {}", String::from_utf8_lossy(&o.stdout));
    }
    // A planned output is refused without --overwrite, and replaced with it.
    let mut args = vec!["plan", input.to_str().unwrap(), url];
    args.extend(job);
    let o = gs_s3(&endpoint, &args);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("already exists"));
    let _ = std::fs::remove_dir_all(&d);
}
