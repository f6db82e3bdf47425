//! Where an OME-Zarr output lives: a directory (local or a shared file system), or with the
//! `s3` feature an S3-compatible bucket (`s3://bucket/path.ome.zarr`). Keys are relative to
//! the output (`zarr.json`, `0/c/0/3/4`); every object is written whole.

use super::shard::{sweep_temps, ShardFile};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// An output's storage.
pub(crate) enum Target {
    /// A directory.
    Dir(PathBuf),
    /// A bucket, and the local directory where shards are staged before upload.
    #[cfg(feature = "s3")]
    S3(std::sync::Arc<super::s3::Bucket>, PathBuf),
}

impl Target {
    /// The target named by `out`: `s3://...` is a bucket (its shards staged in `temp_dir`),
    /// anything else a directory.
    pub(crate) fn open(out: &Path, temp_dir: &Path) -> Result<Target> {
        let _ = temp_dir;
        match out.to_str() {
            #[cfg(feature = "s3")]
            Some(url) if url.starts_with("s3://") => {
                Ok(Target::S3(std::sync::Arc::new(super::s3::Bucket::open(url)?), temp_dir.to_path_buf()))
            }
            #[cfg(not(feature = "s3"))]
            Some(url) if url.starts_with("s3://") => Err(Error::usage(format!(
                "{url}: this build has no S3 support; build with `cargo build --release --features s3`"
            ))),
            _ => Ok(Target::Dir(out.to_path_buf())),
        }
    }

    /// The directory, if the output is one.
    pub(crate) fn dir(&self) -> Option<&Path> {
        match self {
            Target::Dir(d) => Some(d),
            #[cfg(feature = "s3")]
            Target::S3(..) => None,
        }
    }

    /// For messages.
    pub(crate) fn name(&self) -> String {
        match self {
            Target::Dir(d) => d.display().to_string(),
            #[cfg(feature = "s3")]
            Target::S3(b, _) => b.url().to_string(),
        }
    }

    /// Object `key`, or `None`.
    pub(crate) fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Target::Dir(d) => match std::fs::read(d.join(key)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(d.join(key), e)),
            },
            #[cfg(feature = "s3")]
            Target::S3(b, _) => b.get(key),
        }
    }

    /// Writes object `key` whole (through a temporary file and a rename in a directory).
    pub(crate) fn write(&self, key: &str, bytes: &[u8]) -> Result<()> {
        match self {
            Target::Dir(d) => {
                let path = d.join(key);
                let dir = path.parent().unwrap_or(d);
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                super::write_atomic(&path, bytes)
            }
            #[cfg(feature = "s3")]
            Target::S3(b, _) => b.put(key, bytes),
        }
    }

    /// Starts shard `key` of `chunks` inner chunks.
    /// A directory's shard is renamed into place; a bucket's is staged in the temp dir and
    /// uploaded whole.
    pub(crate) fn shard(&self, key: &str, chunks: usize) -> Result<ShardFile> {
        match self {
            Target::Dir(d) => ShardFile::create(&d.join(key), chunks, None),
            #[cfg(feature = "s3")]
            Target::S3(bucket, tmp) => {
                let staged = tmp.join(format!("gigascale-shard-{}", key.replace('/', "_")));
                let (bucket, key) = (bucket.clone(), key.to_string());
                ShardFile::create(&staged, chunks, Some(Box::new(move |path: &Path| bucket.upload(&key, path))))
            }
        }
    }

    /// The sizes of the shards present under `dir` (e.g. `0/c/0/3`), by key.
    pub(crate) fn shards(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        match self {
            Target::Dir(d) => {
                let entries = match std::fs::read_dir(d.join(dir)) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(Error::io(d.join(dir), e)),
                };
                let mut v = Vec::new();
                for e in entries {
                    let e = e.map_err(|e| Error::io(d.join(dir), e))?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    let meta = e.metadata().map_err(|err| Error::io(e.path(), err))?;
                    if meta.is_file() && !name.starts_with('.') {
                        v.push((format!("{dir}/{name}"), meta.len()));
                    }
                }
                Ok(v)
            }
            #[cfg(feature = "s3")]
            Target::S3(b, _) => b.list(dir),
        }
    }

    /// Removes temporary files under `dir` (all, or those of dead processes of this host);
    /// how many. Objects in a bucket have none.
    pub(crate) fn sweep(&self, dir: &str, all: bool) -> Result<usize> {
        match self {
            Target::Dir(d) => Ok(sweep_temps(&d.join(dir), all)?.len()),
            #[cfg(feature = "s3")]
            Target::S3(..) => Ok(0),
        }
    }

    /// Whether anything is there.
    pub(crate) fn exists(&self) -> Result<bool> {
        match self {
            Target::Dir(d) => Ok(std::fs::symlink_metadata(d).is_ok()),
            #[cfg(feature = "s3")]
            Target::S3(b, _) => Ok(!b.list("")?.is_empty()),
        }
    }

    /// Removes the whole output.
    pub(crate) fn remove_all(&self) -> Result<()> {
        match self {
            Target::Dir(d) => std::fs::remove_dir_all(d).map_err(|e| Error::io(d, e)),
            #[cfg(feature = "s3")]
            Target::S3(b, _) => b.remove_all(),
        }
    }
}
