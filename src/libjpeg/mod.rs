//! What the JPEG decoder (`source/libjpeg.rs`) and encoder (`sink/jpeg_encoder.rs`) share
//! around libjpeg-turbo: its error manager made strict (`errors.rs`: errors unwind out of
//! libjpeg's callbacks and come back as values), the thread-local flag that keeps the quiet
//! panic hook silent meanwhile, and the APP1 prefix of XMP packets.

pub(crate) mod errors;

/// What starts an APP1 marker that holds XMP.
pub(crate) const XMP_PREFIX: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// Runs `f` with the quiet panic hook silenced on this thread (panics inside it are caught and
/// reported as errors by the caller).
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> T {
    IN_DECODER.with(|d| d.set(true));
    let r = f();
    IN_DECODER.with(|d| d.set(false));
    r
}

thread_local! {
    static IN_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is inside a third-party codec call (see [`quietly`]).
pub(crate) fn panicking_inside_decoder() -> bool {
    IN_DECODER.with(|d| d.get())
}
