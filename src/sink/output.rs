//! The output file: written under a temporary name beside OUT, fsynced and renamed over OUT
//! only when complete. Dropped without [`OutputFile::commit`], it removes itself.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file that becomes visible at its final path only on commit.
pub struct OutputFile {
    w: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    pos: u64,
}

impl OutputFile {
    /// Creates the temporary file in `dest`'s directory.
    pub fn create(dest: &Path) -> Result<OutputFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (file, tmp) = crate::store::create_temp(&dir, &format!("{name}.part"))?;
        Ok(OutputFile { w: Some(BufWriter::with_capacity(1 << 20, file)), tmp, dest: dest.to_path_buf(), pos: 0 })
    }
    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }
    /// Current write position (bytes written so far).
    pub fn pos(&self) -> u64 {
        self.pos
    }
    fn err(&self, e: std::io::Error) -> Error {
        Error::io(&self.tmp, e)
    }
    /// Appends bytes.
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let w = self.w.as_mut().expect("output already committed");
        match w.write_all(data) {
            Ok(()) => {
                self.pos += data.len() as u64;
                Ok(())
            }
            Err(e) => Err(self.err(e)),
        }
    }
    /// Overwrites bytes at `offset` (for header fix-ups), then returns to the end.
    pub fn patch(&mut self, offset: u64, data: &[u8]) -> Result<()> {
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
    /// A writer positioned at the end (for encoders that want `std::io::Write`).
    pub fn writer(&mut self) -> &mut dyn Write {
        self
    }
    /// Flushes, fsyncs, renames over the destination and fsyncs the directory.
    pub fn commit(mut self) -> Result<u64> {
        let w = self.w.take().expect("output already committed");
        let file = w.into_inner().map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        if let Some(dir) = self.dest.parent() {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
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
        if self.w.is_some() {
            self.w = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
