#![no_main]
//! Fuzzes gigascale's tiff reader (header parsing, then decoding into the store).
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::decode("tif", data));
