//! The integration tests, one binary (as ripgrep's `tests/tests.rs`): each module is one area,
//! `util` holds what they share. `cargo test --release` builds and runs them with the unit
//! tests; `cargo test --release --test tests AREA::` runs one area. README's test command
//! adds `--all-features` (the S3 output is behind the `s3` feature).

mod nets;
mod util;

mod backends;
mod batch;
mod browser;
mod cli;
mod edges;
mod events;
mod exactness;
mod faces;
mod fuzz_replay;
mod gpu;
mod hostile;
mod interop;
mod invariance;
mod jpeg_out;
mod layers;
mod memory;
mod metadata;
mod neural;
mod neural_pipeline;
mod pyramid;
mod python;
mod restore;
mod resume;
#[cfg(feature = "s3")]
mod s3;
mod serve;
mod serve_flood;
mod serve_process;
mod unet;
mod webp_out;
mod wide;
mod zarr;

/// CI asks for the S3 and GPU tests (`GIGASCALE_REQUIRE_S3=1`, `GIGASCALE_REQUIRE_GPU=1`):
/// they must then be compiled in, not left out by a missing feature.
#[test]
fn required_areas_are_compiled_in() {
    let compiled = [("S3", cfg!(feature = "s3")), ("GPU", cfg!(feature = "gpu"))];
    for (area, there) in compiled {
        let required = std::env::var(format!("GIGASCALE_REQUIRE_{area}")).is_ok_and(|v| v == "1");
        assert!(there || !required, "GIGASCALE_REQUIRE_{area}=1, but the tests were built without that feature");
    }
}
