//! libjpeg's error manager, made strict: errors and warnings (corrupt data, a truncated file)
//! both end the decode with their message, instead of `exit()` or grey filler.
//!
//! libjpeg reports through C callbacks; ours unwind (`extern "C-unwind"`, which the `mozjpeg`
//! crates are built for) with a [`Failure`] payload that [`catch`] turns back into a value.
//! This is the only module that touches libjpeg's structures directly.

use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};
use std::ffi::CStr;
use std::os::raw::c_int;

/// Why a libjpeg call ended.
#[derive(Debug)]
pub(crate) enum Failure {
    /// libjpeg's own message (an error, or a warning made fatal).
    Libjpeg(String),
    /// The crate wrapping libjpeg reported an I/O or usage error.
    Io(String),
}

/// A fresh error manager whose error and warning callbacks unwind with a [`Failure`].
pub(crate) fn strict_error_mgr() -> jpeg_error_mgr {
    // SAFETY: `jpeg_error_mgr` is a C struct of integers, raw pointers and `Option`s of function
    // pointers, for all of which all-zero bytes are a valid value (0, null, `None`).
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `jpeg_std_error` only fills in the fields of the struct it is given, which is
    // alive and exclusively borrowed for the call; it stores no pointer to the struct itself,
    // so moving it afterwards (the decoder boxes it) is fine.
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(fatal);
    err.emit_message = Some(warning_is_fatal);
    err
}

/// Runs `f`, turning an unwind from the callbacks above (or any panic inside the decoder
/// crates) into a [`Failure`].
pub(crate) fn catch<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    match super::quietly(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) {
        Ok(r) => r,
        Err(payload) => match payload.downcast::<Failure>() {
            Ok(failure) => Err(*failure),
            Err(other) => {
                let msg = other
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| other.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "decoder rejected the data (internal panic)".into());
                Err(Failure::Libjpeg(msg))
            }
        },
    }
}

/// Ends the libjpeg call in progress with `failure` (from inside one of libjpeg's callbacks).
/// `resume_unwind` does not run the panic hook: nothing is printed, [`catch`] gets the value.
pub(crate) fn fail(failure: Failure) -> ! {
    std::panic::resume_unwind(Box::new(failure))
}

/// libjpeg's `error_exit`: ends the call in progress with the library's message.
///
/// # Safety
/// Called by libjpeg only, with a `cinfo` whose `err` is a manager [`strict_error_mgr`] made.
unsafe extern "C-unwind" fn fatal(cinfo: &mut jpeg_common_struct) {
    fail(Failure::Libjpeg(message(cinfo)))
}

/// libjpeg's `emit_message`: a warning (corrupt or truncated data) ends the call as an error;
/// trace messages are ignored.
///
/// # Safety
/// As [`fatal`].
unsafe extern "C-unwind" fn warning_is_fatal(cinfo: &mut jpeg_common_struct, level: c_int) {
    // Level -1 is a warning (corrupt or missing data); levels >= 0 are trace messages.
    if level < 0 {
        fail(Failure::Libjpeg(message(cinfo)))
    }
}

/// libjpeg's message for the current code, with its parameters filled in.
fn message(cinfo: &jpeg_common_struct) -> String {
    if cinfo.err.is_null() {
        return "libjpeg error".into();
    }
    // SAFETY: `cinfo.err` points to the error manager this decoder was created with; the
    // decoder owns it (boxed) for as long as `cinfo` exists, and we only read it.
    let err = unsafe { &*cinfo.err };
    let code = err.msg_code;
    if err.jpeg_message_table.is_null() || code < 0 || code > err.last_jpeg_message {
        return format!("libjpeg error {code}");
    }
    // SAFETY: `jpeg_std_error` points `jpeg_message_table` at libjpeg's static table of
    // `last_jpeg_message + 1` entries (checked above), each null or a static C string.
    let entry = unsafe { *err.jpeg_message_table.add(code as usize) };
    if entry.is_null() {
        return format!("libjpeg error {code}");
    }
    // SAFETY: a non-null entry of the table is a NUL-terminated static string.
    let fmt = unsafe { CStr::from_ptr(entry) }.to_string_lossy();
    let words = &err.msg_parm._bindgen_data_;
    let ints: Vec<i32> = words[..8].iter().map(|&w| w as i32).collect();
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).take_while(|&b| b != 0).collect();
    fill_in(&fmt, &ints, &String::from_utf8_lossy(&bytes))
}

/// Substitutes printf conversions: integers in order for `%d %u %x %c`, the string for `%s`.
fn fill_in(fmt: &str, ints: &[i32], text: &str) -> String {
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut next_int = ints.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags and width, then the conversion.
        while chars.peek().is_some_and(|c| c.is_ascii_digit() || "-+ #.l".contains(*c)) {
            chars.next();
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s') => out.push_str(text),
            Some('x') | Some('X') => out.push_str(&format!("{:x}", next_int.next().copied().unwrap_or(0))),
            Some(_) => out.push_str(&next_int.next().copied().unwrap_or(0).to_string()),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn printf_conversions_are_filled_in() {
        assert_eq!(fill_in("Bogus marker length", &[], ""), "Bogus marker length");
        assert_eq!(fill_in("Invalid component ID %d in SOS", &[7], ""), "Invalid component ID 7 in SOS");
        assert_eq!(fill_in("Unsupported marker type 0x%02x", &[0xc3], ""), "Unsupported marker type 0xc3");
        assert_eq!(fill_in("%ux%u, %s, 100%%", &[3, 4], "x"), "3x4, x, 100%");
    }
}
