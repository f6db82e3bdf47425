//! Calibrations of model files, kept between runs: calibrating is one float run of the
//! network (about 6 s for realesrgan-x4plus's 999 layers), and its result depends only on the
//! model's two files and the calibration procedure. Kept as one small text file per model in
//! `$GIGASCALE_CACHE`, else `$XDG_CACHE_HOME/gigascale`, else `~/.cache/gigascale`
//! (`GIGASCALE_CACHE=off` keeps nothing). A missing, unreadable or malformed entry is
//! recomputed; an entry that cannot be written is skipped. The values are checked against the
//! network (one exponent per blob and per activated convolution's channel, within the calibration's range) before use.

use std::path::{Path, PathBuf};

/// Bumped whenever the calibration image or rule, or the exact engine's arithmetic (which the
/// kept fidelities measure), changes: old entries are then ignored. (3: activations before
/// saturation; a larger calibration image for deep unpadded networks. 4: blobs after an SE
/// block calibrated for photographs' multipliers too. 5: 24-bit networks' weights of up to 16
/// bits. 6: an exponent per activated convolution's channel, for its sums.)
const VERSION: u32 = 6;

/// The cache directory, if any.
fn dir() -> Option<PathBuf> {
    match std::env::var_os("GIGASCALE_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("gigascale")),
    }
}

/// The entry of the model with `digest` in `dir`: its calibration, or another `kind` of
/// result.
fn entry(dir: &Path, digest: u64) -> PathBuf {
    entry_of(dir, "calibration", digest)
}

fn entry_of(dir: &Path, kind: &str, digest: u64) -> PathBuf {
    dir.join(format!("{kind}-v{VERSION}-{digest:016x}.txt"))
}

/// A kept number of `kind` (e.g. the exact engine's fidelity) for the model with `digest`.
pub(crate) fn load_number(kind: &str, digest: u64) -> Option<u32> {
    std::fs::read_to_string(entry_of(&dir()?, kind, digest)).ok()?.trim().parse().ok()
}

/// Keeps a number of `kind` for the model with `digest` (best effort).
pub(crate) fn store_number(kind: &str, digest: u64, value: u32) {
    if let Some(d) = dir() {
        write_entry(&d, &entry_of(&d, kind, digest), &format!("{value}\n"));
    }
}

/// The kept calibration of the model with `digest`, if valid: `len` exponents (one per blob,
/// one per activated convolution's output channel).
pub(crate) fn load(digest: u64, len: usize) -> Option<Vec<i32>> {
    load_from(&dir()?, digest, len)
}

/// Keeps a calibration (best effort).
pub(crate) fn store(digest: u64, calibration: &[i32]) {
    if let Some(d) = dir() {
        store_in(&d, digest, calibration);
    }
}

fn load_from(dir: &Path, digest: u64, len: usize) -> Option<Vec<i32>> {
    let values = parse(&std::fs::read_to_string(entry(dir, digest)).ok()?)?;
    (values.len() == len).then_some(values)
}

/// A calibration's text (exponents separated by white space) read back, if every value is an
/// exponent the calibration can give.
pub(crate) fn parse(text: &str) -> Option<Vec<i32>> {
    let values: Vec<i32> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    values.iter().all(|v| (-8..=24).contains(v)).then_some(values)
}

fn store_in(dir: &Path, digest: u64, calibration: &[i32]) {
    let text: Vec<String> = calibration.iter().map(i32::to_string).collect();
    write_entry(dir, &entry(dir, digest), &(text.join(" ") + "\n"));
}

/// Writes `text` to `path` in `dir` through a temporary file (a reader sees all or nothing).
fn write_entry(dir: &Path, path: &Path, text: &str) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&tmp, text));
    if written.and_then(|()| std::fs::rename(&tmp, path)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_calibrations_come_back_and_bad_ones_do_not() {
        let d = std::env::temp_dir().join(format!("gigascale-cal-{}", std::process::id()));
        store_in(&d, 7, &[14, 13, -2, 24]);
        assert_eq!(load_from(&d, 7, 4), Some(vec![14, 13, -2, 24]));
        assert_eq!(load_from(&d, 7, 5), None, "another network's size");
        assert_eq!(load_from(&d, 8, 4), None, "another model");
        std::fs::write(entry(&d, 9), "14 13 99 1\n").unwrap();
        assert_eq!(load_from(&d, 9, 4), None, "out of range");
        std::fs::write(entry(&d, 10), "14 x\n").unwrap();
        assert_eq!(load_from(&d, 10, 2), None, "not numbers");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
