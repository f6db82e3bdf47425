//! Every CPU backend variant reproduces the scalar reference bit for bit, on every tile size,
//! and the reference itself is pinned by checksums (so a change to the arithmetic is seen).
use crate::util::*;
use gigascale::resample::{fast8, native, Rows, Scratch};
use gigascale::{Channels, Depth, Filter, Intermediate, Layout, Plan};

struct Bytes {
    rows: Vec<Vec<u8>>,
}
impl Rows for Bytes {
    fn row(&self, y: u32) -> &[u8] {
        &self.rows[y as usize]
    }
}

fn rows_of(img: &Img) -> Bytes {
    let b = img.bytes();
    let rb = img.w as usize * img.layout.bytes_per_pixel();
    Bytes { rows: b.chunks(rb).map(<[u8]>::to_vec).collect() }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Runs `f` on every tile of the plan and returns the concatenated tile buffers.
fn all_tiles(
    plan: &Plan,
    rows: &Bytes,
    f: fn(&Plan, &dyn Rows, &gigascale::TileJob, &mut Scratch, &mut [u8]),
) -> Vec<u8> {
    let mut s = Scratch::default();
    let mut out = Vec::new();
    let mut buf = vec![0xAAu8; plan.tile_bytes()];
    for i in 0..plan.tile_count() {
        f(plan, rows, &plan.tile(i), &mut s, &mut buf);
        out.extend_from_slice(&buf);
    }
    out
}

const MODES: [Intermediate; 2] = [Intermediate::Exact, Intermediate::Rounded];

#[test]
fn fast8_variants_equal_the_reference() {
    let mut rng = Rng(31);
    for channels in [Channels::Gray, Channels::Rgb] {
        for f in Filter::ALL {
            for (w, h, ow, oh) in [(23, 17, 345, 255), (90, 70, 27, 21), (40, 9, 100, 3), (5, 60, 80, 18)] {
                let img = random_img(&mut rng, w, h, Layout::new(channels, Depth::U8));
                let rows = rows_of(&img);
                for (tile, mode) in [16, 48, 256].into_iter().flat_map(|t| MODES.map(|m| (t, m))) {
                    let plan = Plan::new(w, h, ow, oh, f, img.layout, tile).unwrap().with_intermediate(mode);
                    assert!(fast8::supports(&plan));
                    let want = all_tiles(&plan, &rows, native::resample_tile);
                    assert!(
                        all_tiles(&plan, &rows, fast8::resample_tile_baseline) == want,
                        "baseline {f:?} {mode:?} {channels:?} {w}x{h}->{ow}x{oh} t{tile}"
                    );
                    assert!(
                        all_tiles(&plan, &rows, fast8::resample_tile) == want,
                        "{} {f:?} {mode:?} {channels:?} {w}x{h}->{ow}x{oh} t{tile}",
                        fast8::isa()
                    );
                }
            }
        }
    }
}

/// Checksums of the reference output (all tiles of a fixed job, per layout). If the arithmetic
/// contract changes on purpose, regenerate them with `--nocapture` and say why in the commit.
#[test]
fn reference_goldens() {
    use Intermediate::{Exact, Rounded};
    let cases: [(Channels, Depth, Intermediate, u64); 8] = [
        (Channels::Rgb, Depth::U8, Exact, 0x7d4420e6441d4b79),
        (Channels::GrayAlpha, Depth::U8, Exact, 0xf44f6992419beed9),
        (Channels::Rgba, Depth::U16, Exact, 0x185bcdc5481cae4a),
        (Channels::Gray, Depth::U16, Exact, 0xd5cbf84042829242),
        (Channels::Rgb, Depth::U8, Rounded, 0x66422093dcb71a08),
        (Channels::GrayAlpha, Depth::U8, Rounded, 0xda26becea4f72f05),
        (Channels::Rgba, Depth::U16, Rounded, 0x87e1c21c730bf0b5),
        (Channels::Gray, Depth::U16, Rounded, 0x416a4a533f528596),
    ];
    let mut report = String::new();
    let mut mismatch = false;
    for (ch, d, mode, want) in cases {
        let img = random_img(&mut Rng(2024), 37, 29, Layout::new(ch, d));
        let plan = Plan::new(37, 29, 111, 64, Filter::Lanczos3, img.layout, 32).unwrap().with_intermediate(mode);
        let got = fnv(&all_tiles(&plan, &rows_of(&img), native::resample_tile));
        report.push_str(&format!("({ch:?}, {d:?}, {mode:?}, {got:#018x}),\n"));
        mismatch |= got != want;
    }
    assert!(!mismatch, "reference checksums changed:\n{report}");
}
