//! The `gigascale` command: arguments -> validated options -> one library call.

mod cli;
mod display;
#[cfg(feature = "serve")]
mod serve_cli;
mod units_cli;

fn main() {
    std::process::exit(cli::main());
}
