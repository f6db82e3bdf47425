//! Crash safety: a job killed with SIGKILL at several points and resumed with --resume ends
//! byte-identical to an uninterrupted run; a kill leaves no OUT and nothing but the partial
//! output and its journal; changed options are refused.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn job(out: &Path, tmp: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gigascale"));
    c.args(["upscale", fixture("coffee.jpg").to_str().unwrap(), out.to_str().unwrap()])
        .args([
            "--scale",
            "30",
            "--tile",
            "64",
            "--threads",
            "1",
            "--compression",
            "deflate",
            "--level",
            "12",
            "--quiet",
            "--temp-dir",
        ])
        .arg(tmp)
        .args(extra)
        .stderr(Stdio::piped());
    c
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn killed_jobs_resume_to_identical_output() {
    let d = std::env::temp_dir().join(format!("gigascale-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let tmp = d.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let reference = d.join("reference.tif");
    assert!(job(&reference, &tmp, &[]).status().unwrap().success());
    let want = std::fs::read(&reference).unwrap();
    std::fs::remove_file(&reference).unwrap();

    let out = d.join("out.tif");
    let mut resumed_any = false;
    for ms in [1500u64, 1300, 2100] {
        let mut child = job(&out, &tmp, &["--resume", "--progress", "json"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        resumed_any |= err.contains(r#""event":"resumed""#);
        if status.success() {
            break; // finished before the kill: nothing left to test in this round
        }
        assert!(!out.exists(), "OUT appeared although the job was killed");
        assert_eq!(names(&d), vec![".out.tif.gigascale-journal", ".out.tif.gigascale-partial", "tmp"]);
        assert_eq!(names(&tmp).len(), 0, "store file left in --temp-dir");
    }
    assert!(resumed_any, "no run resumed from a journal (runs too short?)");
    // A different job must not resume from this state.
    let o = job(&out, &tmp, &["--resume", "--filter", "bicubic"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume refused"));
    // Finish it.
    let o = job(&out, &tmp, &["--resume"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&out).unwrap() == want, "resumed output differs from the uninterrupted run");
    assert_eq!(names(&d), vec!["out.tif", "tmp"], "journal or partial left after success");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_plain_rerun_replaces_stale_partial_state() {
    let d = std::env::temp_dir().join(format!("gigascale-stale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let tmp = d.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = d.join("o.tif");
    std::fs::write(d.join(".o.tif.gigascale-partial"), b"stale").unwrap();
    std::fs::write(d.join(".o.tif.gigascale-journal"), b"stale").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_gigascale"));
    c.args(["upscale", fixture("coffee.jpg").to_str().unwrap(), out.to_str().unwrap(), "--scale", "2", "--quiet"]);
    assert!(c.status().unwrap().success());
    assert_eq!(names(&d), vec!["o.tif", "tmp"]);
    std::fs::remove_dir_all(&d).unwrap();
}
