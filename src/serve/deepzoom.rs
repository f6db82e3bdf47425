//! Deep zoom straight from the result's pyramid TIFF: a DZI descriptor (TileSize = the TIFF's
//! tile, Overlap 0, PNG) and its tiles. DZI level L of an image whose larger side needs M
//! halvings to reach one pixel is pyramid level M - L (both halve rounding up), and DZI tile
//! (x, y) is that level's TIFF tile (x, y), cropped at the edges; 16-bit samples are scaled
//! to 8 bits. Levels below the smallest stored one (which fits in one tile) are reduced on the
//! fly from it. A full-resolution 8-bit tile's pixels are exactly the TIFF's.

use super::reply::fail;
use super::state::{AppState, JobState};
use crate::error::{Error, Result};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tiff::decoder::{Decoder, DecodingResult};

/// A decoded tile or level: size, samples per pixel, 8-bit samples.
struct Pixels {
    w: usize,
    h: usize,
    spp: usize,
    data: Vec<u8>,
}

fn open(path: &std::path::Path) -> Result<Decoder<std::io::BufReader<std::fs::File>>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let d = Decoder::new(std::io::BufReader::new(f)).map_err(|e| Error::format(path, e.to_string()))?;
    // A level's tile offset table is the largest value read: 16 MiB holds a million tiles (65
    // gigapixels in 256 px tiles); the default (1 MiB) would refuse results past 8 gigapixels.
    let mut limits = tiff::decoder::Limits::default();
    limits.ifd_value_size = 16 << 20;
    Ok(d.with_limits(limits))
}

/// DZI's number of the full-resolution level: ceil(log2(max(w, h))).
fn max_level(w: u32, h: u32) -> u32 {
    let m = w.max(h).max(1);
    32 - (m - 1).leading_zeros()
}

pub(super) async fn descriptor(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(j) = s.job(&id).filter(|j| j.state == JobState::Done) else {
        return fail(StatusCode::NOT_FOUND, "no finished job with this id");
    };
    if !j.request.has_pyramid() {
        return fail(
            StatusCode::NOT_FOUND,
            "this result has no pyramid (a PNG or JPEG, or pyramid: false): download it",
        );
    }
    let path = s.output_path(&j);
    let tile = tokio::task::spawn_blocking(move || open(&path).map(|d| d.chunk_dimensions().0)).await;
    let Ok(Ok(tile)) = tile else { return fail(StatusCode::NOT_FOUND, "the result cannot be read") };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" \
         TileSize=\"{tile}\" Overlap=\"0\" Format=\"png\"><Size Width=\"{}\" Height=\"{}\"/></Image>\n",
        j.output[0], j.output[1]
    );
    ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

pub(super) async fn tile(
    State(s): State<Arc<AppState>>,
    Path((id, level, name)): Path<(String, u32, String)>,
) -> Response {
    let Some(j) = s.job(&id).filter(|j| j.state == JobState::Done) else {
        return fail(StatusCode::NOT_FOUND, "no finished job with this id");
    };
    let parsed = name.strip_suffix(".png").and_then(|n| n.split_once('_'));
    let Some((x, y)) = parsed.and_then(|(x, y)| Some((x.parse::<u32>().ok()?, y.parse::<u32>().ok()?))) else {
        return fail(StatusCode::NOT_FOUND, "tiles are named X_Y.png");
    };
    let max = max_level(j.output[0], j.output[1]);
    // Without a pyramid only the full-size level exists.
    if level > max || !j.request.has_pyramid() {
        return fail(StatusCode::NOT_FOUND, "no such level");
    }
    let Ok(_permit) = s.tiles_gate.acquire().await else { return fail(StatusCode::SERVICE_UNAVAILABLE, "stopping") };
    let path = s.output_path(&j);
    let r = tokio::task::spawn_blocking(move || render(&path, max - level, (x, y))).await;
    match r {
        Ok(Ok(Some(png))) => {
            ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=3600")], png)
                .into_response()
        }
        Ok(Ok(None)) => fail(StatusCode::NOT_FOUND, "no such tile"),
        Ok(Err(e)) => fail(StatusCode::INTERNAL_SERVER_ERROR, s.scrub(&e.to_string())),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, s.scrub(&e.to_string())),
    }
}

/// Tile `(x, y)` of pyramid level `k` (0 = full size) as PNG bytes; `None` if it does not exist.
fn render(path: &std::path::Path, k: u32, (x, y): (u32, u32)) -> Result<Option<Vec<u8>>> {
    let mut d = open(path)?;
    let bad = |e: tiff::TiffError| Error::format(path, e.to_string());
    let mut stored = 0;
    while stored < k && d.more_images() {
        d.next_image().map_err(bad)?;
        stored += 1;
    }
    let (w, h) = d.dimensions().map_err(bad)?;
    let (tw, th) = d.chunk_dimensions();
    let px = if stored == k {
        let (cols, rows) = (w.div_ceil(tw), h.div_ceil(th));
        if x >= cols || y >= rows {
            return Ok(None);
        }
        let i = y * cols + x;
        let (cw, ch) = d.chunk_data_dimensions(i);
        to_8bit(d.read_chunk(i).map_err(bad)?, cw as usize, ch as usize)?
    } else {
        // Below the smallest stored level, which must fit in one tile: reduced on the fly.
        if w > tw || h > th || (x, y) != (0, 0) {
            return Ok(None);
        }
        let mut p = to_8bit(d.read_image().map_err(bad)?, w as usize, h as usize)?;
        for _ in stored..k {
            p = halve(&p);
        }
        p
    };
    encode_png(&px).map(Some)
}

fn to_8bit(r: DecodingResult, w: usize, h: usize) -> Result<Pixels> {
    let data: Vec<u8> = match r {
        DecodingResult::U8(v) => v,
        DecodingResult::U16(v) => v.into_iter().map(|s| ((s as u32 * 255 + 32767) / 65535) as u8).collect(),
        _ => return Err(Error::Internal("unexpected sample type in a result".into())),
    };
    let spp = data.len() / (w * h).max(1);
    Ok(Pixels { w, h, spp, data })
}

/// The 2x2 reduction of an 8-bit image, as the pyramid's levels are made.
fn halve(p: &Pixels) -> Pixels {
    let (w, h) = (p.w.div_ceil(2), p.h.div_ceil(2));
    let layout = crate::Layout::new(channels(p.spp), crate::Depth::U8);
    let mut data = vec![0u8; w * h * p.spp];
    crate::sink::reduce(&p.data, p.w * p.spp, (p.w, p.h), layout, &mut data, w * p.spp);
    Pixels { w, h, spp: p.spp, data }
}

fn channels(spp: usize) -> crate::Channels {
    match spp {
        1 => crate::Channels::Gray,
        2 => crate::Channels::GrayAlpha,
        3 => crate::Channels::Rgb,
        _ => crate::Channels::Rgba,
    }
}

fn encode_png(p: &Pixels) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, p.w as u32, p.h as u32);
    e.set_color(match p.spp {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    });
    e.set_compression(png::Compression::Fast);
    let err = |e: png::EncodingError| Error::Internal(format!("png: {e}"));
    e.write_header().map_err(err)?.write_image_data(&p.data).map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn dzi_levels() {
        assert_eq!(max_level(1, 1), 0);
        assert_eq!(max_level(2, 1), 1);
        assert_eq!(max_level(256, 100), 8);
        assert_eq!(max_level(257, 100), 9);
        assert_eq!(max_level(30000, 45000), 16);
    }

    #[test]
    fn sixteen_bit_tiles_are_scaled_to_eight() {
        let p = to_8bit(DecodingResult::U16(vec![0, 128, 129, 32896, 65535, 65407]), 3, 2).unwrap();
        assert_eq!((p.w, p.h, p.spp), (3, 2, 1));
        assert_eq!(p.data, [0, 0, 1, 128, 255, 255]);
        let half = halve(&Pixels { w: 3, h: 1, spp: 1, data: vec![10, 20, 31] });
        assert_eq!((half.w, half.h, half.data), (2, 1, vec![15, 31]));
    }
}
