//! The output file: written under a temporary name beside OUT (`.OUT.gigascale-partial`),
//! fsynced and renamed over OUT only when complete, then the directory is fsynced. Dropped
//! without [`OutputFile::commit`], it removes itself — unless it is being kept for `--resume`.
//! The name is fixed, not random, so a run killed with SIGKILL leaves at most this one file,
//! which the next run either resumes or replaces.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file that becomes visible at its final path only on commit.
pub(crate) struct OutputFile {
    w: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    pos: u64,
    keep: bool,
    expected: Option<(u64, bool)>,
    /// Start of the range not yet handed to the kernel's writeback.
    synced_to: u64,
}

/// Bytes written between two early-writeback requests.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// Asks the kernel to start writing `len` bytes at `offset` back to disk without waiting, so
/// dirty pages do not pile up in memory and the final fsync has little left to do.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open for the
    // lifetime of `file`, and a range past the end of the file is harmless.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

impl OutputFile {
    /// Creates (or replaces) the partial file beside `dest`.
    pub(crate) fn create(dest: &Path) -> Result<OutputFile> {
        let (tmp, _) = super::journal::paths(dest);
        let file = File::create(&tmp).map_err(|e| {
            let dir = crate::store::parent_dir(&tmp);
            Error::io(dir, std::io::Error::new(e.kind(), format!("cannot create a file in this directory ({e})")))
        })?;
        Ok(OutputFile {
            w: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest: dest.to_path_buf(),
            pos: 0,
            keep: false,
            expected: None,
            synced_to: 0,
        })
    }

    /// Reopens the partial file beside `dest`, cut back to its first `len` bytes.
    pub(crate) fn resume(dest: &Path, len: u64) -> Result<OutputFile> {
        let (tmp, _) = super::journal::paths(dest);
        let r = (|| -> std::io::Result<File> {
            let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&tmp)?;
            if f.metadata()?.len() < len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "partial output is shorter than its journal says",
                ));
            }
            f.set_len(len)?;
            f.seek(SeekFrom::End(0))?;
            Ok(f)
        })();
        let file = r.map_err(|e| Error::io(&tmp, e))?;
        Ok(OutputFile {
            w: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest: dest.to_path_buf(),
            pos: len,
            keep: false,
            expected: None,
            synced_to: len,
        })
    }

    /// The final size in bytes, exact or an upper bound, for disk-full messages.
    pub(crate) fn set_expected_size(&mut self, bytes: u64, exact: bool) {
        self.expected = Some((bytes, exact));
    }

    /// Keeps the partial file when dropped without commit (resume state).
    pub(crate) fn keep_on_failure(&mut self, keep: bool) {
        self.keep = keep;
    }

    /// Makes everything written so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        let w = self.w.as_mut().expect("output already committed");
        let r = w.flush().and_then(|()| w.get_ref().sync_data());
        r.map_err(|e| self.err(e))
    }
    /// The final path.
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }
    /// Current write position (bytes written so far).
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }
    fn err(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::StorageFull {
            // ENOSPC: say how far it got.
            let need = match self.expected {
                Some((n, true)) => format!("; the output needs {n} bytes"),
                Some((n, false)) => format!("; the output needs up to {n} bytes"),
                None => String::new(),
            };
            return Error::io(
                &self.tmp,
                std::io::Error::new(e.kind(), format!("{e}; {} bytes were written{need}", self.pos)),
            );
        }
        Error::io(&self.tmp, e)
    }
    /// Appends bytes.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let w = self.w.as_mut().expect("output already committed");
        match w.write_all(data) {
            Ok(()) => {
                self.pos += data.len() as u64;
                if self.pos - self.synced_to >= WRITEBACK_EVERY {
                    let w = self.w.as_mut().expect("checked above");
                    if let Err(e) = w.flush() {
                        return Err(self.err(e));
                    }
                    start_writeback(w.get_ref(), self.synced_to, self.pos - self.synced_to);
                    self.synced_to = self.pos;
                }
                Ok(())
            }
            Err(e) => Err(self.err(e)),
        }
    }
    /// Leaves a hole of `n` bytes (a sparse extent: no blocks, reads as zeros) at the end.
    pub(crate) fn skip(&mut self, n: u64) -> Result<()> {
        let w = self.w.as_mut().expect("output already committed");
        let end = self.pos + n;
        let r = (|| {
            w.flush()?;
            let f = w.get_mut();
            f.set_len(end)?;
            f.seek(SeekFrom::End(0))?;
            Ok(())
        })();
        r.map_err(|e| self.err(e))?;
        self.pos = end;
        self.synced_to = end;
        Ok(())
    }
    /// Overwrites bytes at `offset` (for header fix-ups), then returns to the end.
    pub(crate) fn patch(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let w = self.w.as_mut().expect("output already committed");
        let r = (|| {
            w.flush()?;
            let f = w.get_mut();
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(data)?;
            f.seek(SeekFrom::End(0))?;
            Ok(())
        })();
        r.map_err(|e| self.err(e))
    }
    /// Flushes, fsyncs, renames over the destination and fsyncs the directory.
    pub(crate) fn commit(mut self) -> Result<u64> {
        let w = self.w.take().expect("output already committed");
        let file = w.into_inner().map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        if let Ok(d) = File::open(crate::store::parent_dir(&self.dest)) {
            let _ = d.sync_all();
        }
        Ok(self.pos)
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let w = self.w.as_mut().ok_or_else(|| std::io::Error::other("committed"))?;
        let n = w.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.w.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(w) = self.w.take() {
            if self.keep {
                let _ = w.into_inner().map(|f| f.sync_data());
            } else {
                drop(w);
                let _ = std::fs::remove_file(&self.tmp);
            }
        }
    }
}
