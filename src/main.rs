//! The `gigascale` command: arguments -> validated options -> one library call.

mod cli;
mod display;
mod units_cli;
#[cfg(feature = "serve")]
mod serve_cli;

fn main() {
    std::process::exit(cli::main());
}
