//! SIGINT and SIGTERM for the commands that run jobs: flags the library polls (the job then
//! stops at the next tile or row, removing what it wrote) instead of the default of dying.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// SIGINT and SIGTERM as flags: `any` is the library's cancel flag, `term` tells the exit
/// status which one it was. Only the commands that run jobs listen (the server has its own).
#[derive(Default)]
pub(crate) struct Signals {
    any: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
}

impl Signals {
    /// Starts listening; the job then stops at the next tile or row instead of dying.
    pub(crate) fn listen(&self) -> &Signals {
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, self.any.clone());
        let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, self.any.clone());
        let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, self.term.clone());
        self
    }

    /// The library's cancel flag: set by either signal.
    pub(crate) fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.any.clone()
    }

    /// Whether SIGTERM (rather than SIGINT) stopped the job.
    pub(crate) fn terminated(&self) -> bool {
        self.term.load(Ordering::Relaxed)
    }
}
