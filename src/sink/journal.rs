//! The resume journal: a small file beside the partial output that records which tiles are
//! durable. Written atomically (temporary name, fsync, rename) after the partial output's data
//! has been fsynced, so a journal never promises more than the disk holds.
//!
//! Format (little-endian): `GSJ1`, fingerprint u64, data_end u64, tile count n u64, then n
//! tile byte counts as u32. Tiles are stored contiguously in order after the header, so their
//! offsets follow from the counts. With a pyramid the tag is `GSJ2` and n bytes follow the
//! counts: each tile's level (0 = full size), the tiles being in file order.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a journal says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Journal {
    /// Identifies the job (input sample, options, version); resuming needs the same.
    pub fingerprint: u64,
    /// Bytes of the partial output that are durable.
    pub data_end: u64,
    /// Byte counts of the durable tiles, in file order.
    pub counts: Vec<u32>,
    /// Each tile's pyramid level, in file order; empty without a pyramid (all level 0).
    pub levels: Vec<u8>,
}

/// Paths of the partial output and its journal for `dest`.
pub(crate) fn paths(dest: &Path) -> (PathBuf, PathBuf) {
    let dir = crate::store::parent_dir(dest);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (dir.join(format!(".{name}.gigascale-partial")), dir.join(format!(".{name}.gigascale-journal")))
}

/// Where [`Journal::write`] writes before renaming onto `journal`
/// (`.OUT.gigascale-journal.tmp`): a name of this job's own, so that a run can remove what a
/// kill during a write left behind.
pub(crate) fn temp_path(journal: &Path) -> PathBuf {
    let mut name = journal.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    journal.with_file_name(name)
}

impl Journal {
    /// Reads a journal; `Ok(None)` if there is none.
    pub(crate) fn read(path: &Path) -> Result<Option<Journal>> {
        let b = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let bad = || Error::format(path, "damaged resume journal (delete it to start over)");
        if b.len() < 28 || !matches!(&b[..4], b"GSJ1" | b"GSJ2") {
            return Err(bad());
        }
        let per_tile = if &b[..4] == b"GSJ2" { 5 } else { 4 };
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let (fingerprint, data_end, n) = (u64_at(4), u64_at(12), u64_at(20));
        if (b.len() as u64 - 28) != n.checked_mul(per_tile).ok_or_else(bad)? {
            return Err(bad());
        }
        let (counts, levels) = b[28..].split_at(n as usize * 4);
        let counts = counts.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Ok(Some(Journal { fingerprint, data_end, counts, levels: levels.to_vec() }))
    }

    /// Writes the journal atomically.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let tmp = temp_path(path);
        let mut b = Vec::with_capacity(28 + self.counts.len() * 5);
        b.extend_from_slice(if self.levels.is_empty() { b"GSJ1" } else { b"GSJ2" });
        b.extend_from_slice(&self.fingerprint.to_le_bytes());
        b.extend_from_slice(&self.data_end.to_le_bytes());
        b.extend_from_slice(&(self.counts.len() as u64).to_le_bytes());
        for c in &self.counts {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(&self.levels);
        let r = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&b)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        r.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = std::env::temp_dir().join(format!("gs-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("j");
        assert_eq!(Journal::read(&p).unwrap(), None);
        let j = Journal { fingerprint: 42, data_end: 1000, counts: vec![1, 2, 3], levels: Vec::new() };
        j.write(&p).unwrap();
        assert_eq!(Journal::read(&p).unwrap(), Some(j));
        let j = Journal { fingerprint: 42, data_end: 1000, counts: vec![1, 2, 3], levels: vec![0, 1, 0] };
        j.write(&p).unwrap();
        assert_eq!(Journal::read(&p).unwrap(), Some(j));
        std::fs::write(&p, b"GSJ1garbage").unwrap();
        assert!(Journal::read(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
