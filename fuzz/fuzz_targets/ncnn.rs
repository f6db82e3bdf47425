#![no_main]
//! Fuzzes the ncnn model loader: the input is split at its first NUL byte into a `.param` text
//! and a `.bin`; loading must return a model or an error, never panic or run away.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let param = String::from_utf8_lossy(&data[..split]);
    let bin = data.get(split + 1..).unwrap_or(&[]);
    let _ = gigascale::Model::from_parts("fuzz", &param, bin);
});
