//! The `gigascale` command: arguments -> the library's request -> one library call. The
//! argument parser (clap), the progress bar (indicatif) and signal handling (signal-hook) live
//! here alone; the library knows nothing of them.

#![deny(unreachable_pub)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod args;
mod commands;
mod display;
mod signals;

use args::{Cli, Cmd};
use clap::Parser;
use gigascale::Error;
use signals::Signals;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    install_quiet_panic_hook();
    // Mesa's Vulkan drivers complain on stderr when XDG_RUNTIME_DIR is unset (headless
    // servers, CI); they only need some directory. Set before any thread exists.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let sig = Signals::default();
    let result = match &cli.cmd {
        Cmd::Upscale(a) => commands::upscale(a, sig.listen()),
        Cmd::Plan(a) => commands::plan(a),
        Cmd::Run(a) => commands::run(a, sig.listen()),
        Cmd::Finalize { output } => commands::finalize(output),
        Cmd::Devices => commands::devices(),
        Cmd::Models { model, model_dir } => commands::models(model.as_deref(), model_dir),
        Cmd::Faces(a) => commands::faces(a),
        Cmd::Info { file } => commands::info(file),
        #[cfg(feature = "serve")]
        Cmd::Serve(a) => commands::serve(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            report(&e);
            exit_code(&e, &sig)
        }
    }
}

/// The one exit-status rule: 2 for a usage error, 143 / 130 when SIGTERM / SIGINT stopped
/// the job, 1 for everything else that failed.
fn exit_code(e: &Error, sig: &Signals) -> i32 {
    match e {
        Error::Interrupted { .. } if sig.terminated() => 143,
        Error::Interrupted { .. } => 130,
        Error::Usage(_) => 2,
        _ => 1,
    }
}

/// Prints the error and its causes on one line.
fn report(e: &Error) {
    eprintln!("gigascale: error: {}", e.with_causes());
}

/// A panic hook that stays silent for panics caught inside third-party decoders (the library
/// turns them into ordinary format errors) and defers to the default hook otherwise.
fn install_quiet_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !gigascale::source::panicking_inside_decoder() {
            prev(info);
        }
    }));
}
