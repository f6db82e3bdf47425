//! What identifies inputs, models and jobs cheaply and stably: FNV-1a ([`Fnv`]), and a file's
//! identity from its size, modification time and first and last MiB ([`identify`]) — for
//! `--resume`'s fingerprint, a distributed plan's input check and a model's digest. And the
//! one deterministic generator ([`Lcg`]): a model's calibration image, the tests' noise.

use crate::error::{Error, Result};
use std::path::Path;

/// FNV-1a, 64-bit: a stable hash for fingerprints (std's hasher may change between releases).
///
/// ```
/// use gigascale::digest::Fnv;
/// assert_eq!(Fnv::default().bytes(b"a").0, 0xaf63dc4c8601ec8c);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf29ce484222325)
    }
}

impl Fnv {
    /// Mixes bytes in.
    pub fn bytes(mut self, data: &[u8]) -> Self {
        for &b in data {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100000001b3);
        }
        self
    }
}

/// A linear congruential generator (Knuth's MMIX constants): cheap, stable noise.
///
/// ```
/// use gigascale::digest::Lcg;
/// let mut a = Lcg(1);
/// assert_eq!(a.next(), 1u64.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
/// assert_eq!(Lcg(7).bytes(4), Lcg(7).bytes(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next state, which is also the value (take its high bits).
    #[allow(clippy::should_implement_trait)] // a generator, not an iterator that ends
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
    /// `n` bytes of noise (each the top byte of the next value).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// What identifies a file without reading it whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileIdentity {
    /// Its size in bytes.
    pub len: u64,
    /// Its modification time, nanoseconds since the epoch (0 where unknown).
    pub modified_ns: u128,
    /// [`Fnv`] of its first and last MiB (the whole file, twice, when smaller).
    pub ends: u64,
}

/// The identity of the file at `path`.
pub fn identify(path: &Path) -> Result<FileIdentity> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    let n = (1u64 << 20).min(meta.len()) as usize;
    let (mut head, mut tail) = (vec![0u8; n], vec![0u8; n]);
    f.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
    f.seek(SeekFrom::End(-(n as i64))).and_then(|_| f.read_exact(&mut tail)).map_err(|e| Error::io(path, e))?;
    let modified_ns =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Ok(FileIdentity { len: meta.len(), modified_ns, ends: Fnv::default().bytes(&head).bytes(&tail).0 })
}
