//! Typed errors. Every variant carries the data a user needs to act on it: which file,
//! what is wrong, what limit was hit.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a gigascale job.
///
/// ```
/// use gigascale::Error;
/// let e = Error::usage("--tile must be a multiple of 16");
/// assert!(e.to_string().contains("--tile"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O failure on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is damaged or is not what it claims to be.
    #[error("{}: {message}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The file is valid but uses a feature gigascale does not handle.
    #[error("{}: unsupported: {message}", path.display())]
    Unsupported {
        /// The offending file.
        path: PathBuf,
        /// The feature.
        message: String,
    },
    /// A resource limit (memory budget, dimensions, file size) would be exceeded.
    #[error("{what}: needs {needed} {unit} but the limit is {limit} {unit}{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Limit {
        /// What would exceed the limit.
        what: String,
        /// Units needed.
        needed: u64,
        /// The limit in force, in the same unit.
        limit: u64,
        /// The unit of `needed` and `limit`: `bytes` or `pixels`.
        unit: &'static str,
        /// What to do about it.
        hint: Option<String>,
    },
    /// The caller asked for something inconsistent or impossible.
    #[error("{0}")]
    Usage(String),
    /// A distributed output is not complete: shards of these units are missing.
    #[error("{}: {shards} shard(s) missing, from unit(s) {}; run them (gigascale run {} --unit I) and finalize again", path.display(), list(units), path.display())]
    Incomplete {
        /// The output.
        path: PathBuf,
        /// Missing shards (all levels).
        shards: u64,
        /// The units whose shards are missing.
        units: Vec<u32>,
    },
    /// The GPU could not be used.
    #[error("gpu: {0}")]
    Gpu(String),
    /// A failure inside gigascale itself (a thread that could not start, a broken invariant):
    /// not the user's doing. Please report it.
    #[error("internal error: {0}")]
    Internal(String),
    /// The job was stopped by a signal (SIGINT/SIGTERM) or a cancel request.
    #[error("interrupted")]
    Interrupted {
        /// The signal number, if a signal caused it.
        signal: Option<i32>,
    },
}

impl Error {
    /// The error and its causes on one line (each cause not already in the message added after
    /// a colon): what the binary prints, and a batch's reason for a failed file.
    pub fn with_causes(&self) -> String {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            let t = s.to_string();
            if !msg.contains(&t) {
                msg = format!("{msg}: {t}");
            }
            src = s.source();
        }
        msg
    }

    /// A usage error with a message.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    /// A format (damaged or forged data) error on `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format { path: path.into(), message: message.into() }
    }
    /// An unsupported-feature error on `path`.
    pub fn unsupported(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Unsupported { path: path.into(), message: message.into() }
    }
    /// A limit error, in bytes.
    pub fn limit(what: impl Into<String>, needed: u64, limit: u64, hint: Option<String>) -> Self {
        Error::Limit { what: what.into(), needed, limit, unit: "bytes", hint }
    }
    /// A limit error, in pixels.
    pub fn limit_pixels(what: impl Into<String>, needed: u64, limit: u64, hint: Option<String>) -> Self {
        Error::Limit { what: what.into(), needed, limit, unit: "pixels", hint }
    }
}

/// `0, 3, 7` (at most 20 shown).
fn list(units: &[u32]) -> String {
    let mut s: Vec<String> = units.iter().take(20).map(u32::to_string).collect();
    if units.len() > 20 {
        s.push(format!("... ({} in all)", units.len()));
    }
    s.join(", ")
}
