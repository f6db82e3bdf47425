//! The `gigascale` command: arguments -> validated options -> one library call.

mod cli;
mod display;

fn main() {
    std::process::exit(cli::main());
}
