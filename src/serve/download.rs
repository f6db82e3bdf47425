//! File downloads with RFC 9110's semantics: a strong ETag; `If-None-Match` (`*`, lists,
//! weak comparison: 304); one byte range (206), a range past the end (416), and anything
//! else in `Range` (other units, several ranges, bad syntax) ignored (200); `If-Range` with
//! a stale or weak validator or a date also gives the whole file (200); `Content-Disposition`
//! with an ASCII `filename` and the exact name as RFC 8187's `filename*`.

use super::reply::fail;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// The whole file (no header, or one the server ignores).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A well-formed single range that starts past the end (416).
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range) against `len`.
fn range(h: &str, len: u64) -> Ranged {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ranged::Whole };
    let Some((a, b)) = spec.split_once('-') else { return Ranged::Whole };
    let (a, b) = (a.trim(), b.trim());
    let num =
        |v: &str| (!v.is_empty() && v.bytes().all(|c| c.is_ascii_digit())).then(|| v.parse::<u64>().ok()).flatten();
    match (a, b) {
        ("", n) => match num(n) {
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if len == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part(len.saturating_sub(n), len - 1),
            None => Ranged::Whole,
        },
        (a, b) => {
            let (Some(start), end) = (num(a), if b.is_empty() { Some(u64::MAX) } else { num(b) }) else {
                return Ranged::Whole;
            };
            match end {
                Some(end) if end < start => Ranged::Whole,
                Some(_) if start >= len => Ranged::Unsatisfiable,
                Some(end) => Ranged::Part(start, end.min(len - 1)),
                None => Ranged::Whole,
            }
        }
    }
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison; `*` matches any).
fn none_match(value: &str, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    value.trim() == "*" || value.split(',').any(|t| opaque(t) == opaque(etag))
}

/// The `Content-Disposition` of a download named `name`: an ASCII fallback and the exact
/// name percent-encoded as UTF-8 (RFC 6266, RFC 8187).
fn disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Serves `path` with an ETag (size and modification time), `If-None-Match` (304), a single
/// Range (206 / 416), and `Content-Disposition: attachment; filename=name`.
pub(super) async fn serve_file(
    path: &std::path::Path,
    headers: &HeaderMap,
    name: &str,
    mime: &'static str,
) -> Response {
    let Ok(mut f) = tokio::fs::File::open(path).await else { return fail(StatusCode::NOT_FOUND, "file gone") };
    let Ok(meta) = f.metadata().await else { return fail(StatusCode::NOT_FOUND, "file gone") };
    let len = meta.len();
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let etag = format!("\"{len:x}-{mtime:x}\"");
    let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if text(header::IF_NONE_MATCH).is_some_and(|v| none_match(v, &etag)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    // If-Range: the range only while the client's copy is this one (strong comparison; a
    // date is never taken as proof, as no Last-Modified is sent).
    let current = text(header::IF_RANGE).is_none_or(|v| v.trim() == etag);
    let asked = text(header::RANGE).filter(|_| current);
    let (status, start, end) = match asked.map_or(Ranged::Whole, |r| range(r, len)) {
        Ranged::Whole => (StatusCode::OK, 0, len.saturating_sub(1)),
        Ranged::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Ranged::Unsatisfiable => {
            let mut r = fail(StatusCode::RANGE_NOT_SATISFIABLE, "bad range");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    if f.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, "seek");
    }
    let count = if len == 0 { 0 } else { end - start + 1 };
    let stream = tokio_read_stream(f.take(count));
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, mime)
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag)
        .header(header::CONTENT_DISPOSITION, disposition(name));
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    b.body(Body::from_stream(stream)).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The bytes of `r` as a stream of 256 KiB chunks.
fn tokio_read_stream<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 256 << 10];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ranges_as_rfc_9110_says() {
        use Ranged::*;
        assert_eq!(range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(range("bytes=90-", 100), Part(90, 99));
        assert_eq!(range("bytes=-10", 100), Part(90, 99));
        assert_eq!(range("bytes=-500", 100), Part(0, 99));
        assert_eq!(range("bytes=50-500", 100), Part(50, 99));
        for unsatisfiable in ["bytes=100-", "bytes=100-200", "bytes=-0"] {
            assert_eq!(range(unsatisfiable, 100), Unsatisfiable, "{unsatisfiable}");
        }
        for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=a-b", "bytes=-", "bytes=1", "bytes=+1-2"] {
            assert_eq!(range(ignored, 100), Whole, "{ignored}");
        }
    }

    #[test]
    fn validators_compare_as_rfc_9110_says() {
        let etag = "\"1f-2a\"";
        for yes in ["\"1f-2a\"", "W/\"1f-2a\"", "*", "\"x\", \"1f-2a\"", " \"zz\" ,W/\"1f-2a\" "] {
            assert!(none_match(yes, etag), "{yes}");
        }
        assert!(!none_match("\"1f-2b\"", etag));
        let d = disposition("Café_2x_lanczos3.tif");
        assert_eq!(d, "attachment; filename=\"Caf__2x_lanczos3.tif\"; filename*=UTF-8''Caf%C3%A9_2x_lanczos3.tif");
    }
}
