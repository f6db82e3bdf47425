//! The integration tests, one binary (as ripgrep's `tests/tests.rs`): each module is one area,
//! `util` holds what they share. `cargo test --release` builds and runs them with the unit
//! tests; `cargo test --release --test tests AREA::` runs one area.

mod util;

mod backends;
mod browser;
mod cli;
mod edges;
mod events;
mod exactness;
mod fuzz_replay;
mod gpu;
mod hostile;
mod interop;
mod invariance;
mod layers;
mod memory;
mod neural;
mod neural_pipeline;
mod pyramid;
mod python;
mod resume;
mod s3;
mod serve;
mod serve_process;
mod zarr;
