//! Whole folders: every image file of a directory (and, with `recursive`, of its
//! subdirectories) upscaled with the same options into a mirrored tree. Files whose output
//! is already there are skipped (outputs appear only when complete), so a rerun after a crash
//! or a kill continues where the batch stopped (`Files::resume` also continues the file that
//! was cut off). A file that fails — unreadable, hostile, too large for its format — fails
//! alone; the report lists it with its reason. Files that are not JPEG, PNG or TIFF (by their
//! first bytes) are ignored.
//!
//! Files run one after another with the whole budget, or `jobs` at once with the budget and
//! the threads shared.

use crate::error::{Error, Result};
use crate::{Event, Files, Options};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// How a batch runs, besides each file's [`Options`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Batch {
    /// Descend into subdirectories (their structure is mirrored in the output).
    pub recursive: bool,
    /// The output format's extension (`tif`, `png`, `jpg`); `None` keeps each input's.
    pub format: Option<String>,
    /// Files at once (0 or 1: one after another).
    pub jobs: usize,
    /// Replacing existing outputs, resuming cut-off ones.
    pub files: Files,
}

/// What became of each file.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BatchReport {
    /// Upscaled in this run.
    pub done: Vec<PathBuf>,
    /// Left as they were: their output was already there.
    pub skipped: Vec<PathBuf>,
    /// Failed, with the reason (the batch went on).
    pub failed: Vec<(PathBuf, String)>,
}

impl BatchReport {
    /// Files in the batch.
    pub fn total(&self) -> usize {
        self.done.len() + self.skipped.len() + self.failed.len()
    }
}

/// The image files below `dir` (sorted; subdirectories with `recursive`, never `skip`).
fn image_files(dir: &Path, recursive: bool, skip: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        if p.is_dir() {
            if recursive && std::fs::canonicalize(&p).ok().as_deref() != Some(skip) {
                image_files(&p, true, skip, found)?;
            }
        } else if crate::source::sniff(&p).is_ok() {
            found.push(p);
        }
    }
    Ok(())
}

/// Where `input` (below `in_dir`) goes below `out_dir`: the same relative path, the
/// extension `format` (or the input's own).
fn output_for(input: &Path, in_dir: &Path, out_dir: &Path, format: Option<&str>) -> PathBuf {
    let rel = input.strip_prefix(in_dir).unwrap_or(input);
    let mut out = out_dir.join(rel);
    if let Some(ext) = format {
        out.set_extension(ext);
    }
    out
}

/// Checks the directories before anything runs: the input is a directory, the output is not
/// the input (nothing is ever written over an input) and, when the batch descends, is not
/// below it unless skipped; the format is one a file can be written as.
fn check(input: &Path, output: &Path, batch: &Batch) -> Result<(PathBuf, PathBuf)> {
    let in_dir = std::fs::canonicalize(input).map_err(|e| Error::io(input, e))?;
    if !in_dir.is_dir() {
        return Err(Error::usage(format!("{}: not a directory", input.display())));
    }
    std::fs::create_dir_all(output).map_err(|e| Error::io(output, e))?;
    let out_dir = std::fs::canonicalize(output).map_err(|e| Error::io(output, e))?;
    if out_dir == in_dir {
        return Err(Error::usage(format!("{}: the output directory is the input directory", output.display())));
    }
    if let Some(f) = &batch.format {
        let kind = crate::OutputKind::from_path(Path::new(&format!("x.{f}")));
        if !matches!(kind, Ok(k) if !k.is_dir()) {
            return Err(Error::usage(format!("--format {f}: give tif, png, jpg or webp")));
        }
    }
    Ok((in_dir, out_dir))
}

/// Upscales every image file below `input` into `output` (created if needed) with `opts`;
/// `progress` gets, for each file, [`Event::File`], the file's own events (when files run one
/// at a time) and [`Event::FileEnd`]. An error is returned only for the batch as a whole (a
/// directory that cannot be read, a cancel); each file's failure is in the report.
pub fn upscale_dir(
    input: &Path,
    output: &Path,
    opts: &Options,
    batch: &Batch,
    progress: &mut (dyn FnMut(&Event) + Send),
) -> Result<BatchReport> {
    opts.validate()?;
    let (in_dir, out_dir) = check(input, output, batch)?;
    let mut files = Vec::new();
    image_files(&in_dir, batch.recursive, &out_dir, &mut files)?;
    let jobs = batch.jobs.clamp(1, files.len().max(1));
    let mut share = opts.clone();
    share.limits.max_memory = opts.limits.max_memory / jobs as u64;
    share.threads = (opts.resolved_threads() / jobs).max(1);
    let total = files.len() as u64;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let state = Mutex::new((BatchReport::default(), progress));
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(file) = files.get(i) else { return };
        if share.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            return;
        }
        let out = output_for(file, &in_dir, &out_dir, batch.format.as_deref());
        one_file((i as u64, total), file, &out, &share, batch, jobs == 1, &state);
    };
    std::thread::scope(|s| {
        for _ in 1..jobs {
            s.spawn(worker);
        }
        worker();
    });
    let (report, _) = state.into_inner().unwrap_or_else(|p| p.into_inner());
    if opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
        return Err(Error::Interrupted { signal: None });
    }
    Ok(report)
}

type Shared<'a> = Mutex<(BatchReport, &'a mut (dyn FnMut(&Event) + Send))>;

/// Runs file `index` of `total` into `out`, recording the outcome; its events are passed on
/// when it is the only file running (`forward`).
fn one_file(
    (index, total): (u64, u64),
    input: &Path,
    out: &Path,
    opts: &Options,
    batch: &Batch,
    forward: bool,
    state: &Shared<'_>,
) {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let name = |p: &Path| p.display().to_string();
    (lock().1)(&Event::File { index, total, input: name(input), output: name(out) });
    let outcome = if out.exists() && !batch.files.overwrite {
        Ok(false)
    } else {
        let made = out.parent().map_or(Ok(()), std::fs::create_dir_all).map_err(|e| Error::io(out, e));
        let mut pass = |e: &Event| {
            if forward {
                (lock().1)(e)
            }
        };
        made.and_then(|()| crate::upscale(input, out, opts, batch.files, &mut pass)).map(|_| true)
    };
    let mut s = lock();
    let (status, error) = match outcome {
        Ok(true) => {
            s.0.done.push(input.to_path_buf());
            ("done", None)
        }
        Ok(false) => {
            s.0.skipped.push(input.to_path_buf());
            ("skipped", None)
        }
        Err(e) => {
            let why = e.with_causes();
            s.0.failed.push((input.to_path_buf(), why.clone()));
            ("failed", Some(why))
        }
    };
    (s.1)(&Event::FileEnd { index, status: status.into(), error });
}
