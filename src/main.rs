//! The `gigascale` command: arguments -> validated options -> one library call.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
