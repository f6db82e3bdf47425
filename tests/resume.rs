//! Crash safety: a job killed with SIGKILL at deterministic points (the hidden hook
//! `GIGASCALE_TEST_KILL_AFTER_TILES`, which dies right after that many tiles are durable) and
//! resumed with --resume ends byte-identical to an uninterrupted run; a kill leaves no OUT and
//! nothing but the partial output and its journal; a plain rerun cleans all of it; changed
//! options are refused.
use crate::util::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn job(out: &Path, tmp: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gigascale"));
    c.args(["upscale", fixture("coffee.jpg").to_str().unwrap(), out.to_str().unwrap()])
        .args(["--scale", "30", "--tile", "64", "--threads", "1", "--compression", "deflate", "--quiet", "--temp-dir"])
        .arg(tmp)
        .args(extra)
        .stderr(Stdio::piped());
    c
}

/// The tiles of the test job: 4500x3000 in 64-pixel tiles.
const TILES: u64 = 71 * 47;

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
    // Killed (SIGKILL, by the hidden hook) right after 1, then 700, then 2900 durable tiles:
    // each run resumes exactly where the previous one died.
    let mut durable = 0;
    for kill_at in [1u64, 700, 2900] {
        let o = job(&out, &tmp, &["--resume", "--progress", "json"])
            .env("GIGASCALE_TEST_KILL_AFTER_TILES", kill_at.to_string())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(9), "the hook kills with SIGKILL: {err}");
        if durable > 0 {
            let resumed = format!(r#"{{"event":"resumed","tiles":{durable},"total":{TILES}}}"#);
            assert!(err.contains(&resumed), "expected {resumed} in {err}");
        }
        durable = kill_at;
        assert!(!out.exists(), "OUT appeared although the job was killed");
        assert_eq!(names(&d), vec![".out.tif.gigascale-journal", ".out.tif.gigascale-partial", "tmp"]);
        assert_eq!(names(&tmp).len(), 0, "store file left in --temp-dir");
    }
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
fn a_plain_rerun_after_a_kill_leaves_only_out() {
    let d = std::env::temp_dir().join(format!("gigascale-rerun-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let tmp = d.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = d.join("out.tif");
    let o = job(&out, &tmp, &["--resume"]).env("GIGASCALE_TEST_KILL_AFTER_TILES", "300").output().unwrap();
    assert!(!o.status.success());
    // A kill while the journal was being rewritten leaves its temporary file too.
    std::fs::write(d.join(".out.tif.gigascale-journal.tmp"), b"half a journal").unwrap();
    assert_eq!(
        names(&d),
        vec![".out.tif.gigascale-journal", ".out.tif.gigascale-journal.tmp", ".out.tif.gigascale-partial", "tmp"]
    );
    let o = job(&out, &tmp, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(names(&d), vec!["out.tif", "tmp"], "stale partial state left behind");
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

/// A job with a model resumes only with the same model and passes: its fingerprint has the
/// model's digest; the resumed output is the uninterrupted run's.
#[test]
fn a_model_job_resumes_only_with_the_same_model() {
    let d = std::env::temp_dir().join(format!("gigascale-resume-model-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let run = |out: &Path, model: &str, kill: Option<u64>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gigascale"));
        c.args(["upscale", fixture("coffee.jpg").to_str().unwrap(), out.to_str().unwrap()]).args([
            "--model",
            model,
            "--scale",
            "3",
            "--tile",
            "32",
            "--threads",
            "1",
            "--resume",
            "--quiet",
        ]);
        if let Some(k) = kill {
            c.env("GIGASCALE_TEST_KILL_AFTER_TILES", k.to_string());
        }
        c.output().unwrap()
    };
    let reference = d.join("reference.tif");
    assert!(run(&reference, "photo", None).status.success());
    let out = d.join("out.tif");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(run(&out, "photo", Some(40)).status.signal(), Some(9));
    let o = run(&out, "anime", None);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume refused"));
    assert!(run(&out, "photo", None).status.success());
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap(), "resumed output differs");
    std::fs::remove_dir_all(&d).unwrap();
}
