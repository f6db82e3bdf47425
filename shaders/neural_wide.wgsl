// 24-bit activations on the device (src/neural/wide.rs): the 64-bit steps of the CPU's
// arithmetic in pairs of 32-bit words, and the entry points that differ from 16 bits. Shares
// `p`, `a`, `b` and `y` with neural_ops.wgsl.

// Set (a pipeline constant) for a pass whose every finish and sum term the host found within
// the range of the 32-bit steps (`finished_narrow`, `term_narrow`; `finishes_fit_32_bits` and
// `terms_fit_32_bits` in src/gpu/neural_wide.rs): the pipelines so made hold no 64-bit steps
// for the finishes and the sums (a sum's values, as every 24-bit blob's, within ±SAT24).
override NARROW_STEPS: bool = false;

// A 64-bit integer: `hi · 2^32 + lo`.
struct L {
    hi: i32,
    lo: u32,
}

fn l_of(v: i32) -> L {
    return L(v >> 31u, bitcast<u32>(v));
}

fn l_add(x: L, z: L) -> L {
    let lo = x.lo + z.lo;
    return L(x.hi + z.hi + select(0, 1, lo < x.lo), lo);
}

fn l_neg(x: L) -> L {
    let lo = ~x.lo + 1u;
    return L(~x.hi + select(0, 1, lo == 0u), lo);
}

// `x · 2^n`, 0 <= n < 32.
fn l_shl(x: L, n: u32) -> L {
    if n == 0u { return x; }
    return L((x.hi << n) | bitcast<i32>(x.lo >> (32u - n)), x.lo << n);
}

// `x >> n` (arithmetic), 0 <= n < 64.
fn l_sar(x: L, n: u32) -> L {
    if n == 0u { return x; }
    if n < 32u { return L(x.hi >> n, (x.lo >> n) | (bitcast<u32>(x.hi) << (32u - n))); }
    return L(x.hi >> 31u, bitcast<u32>(x.hi >> min(n - 32u, 31u)));
}

// `u · v` for |u|, |v| < 2^31.
fn l_mul(u: i32, v: i32) -> L {
    let x = u32(abs(u));
    let z = u32(abs(v));
    let p00 = (x & 0xffffu) * (z & 0xffffu);
    let p01 = (x & 0xffffu) * (z >> 16u);
    let p10 = (x >> 16u) * (z & 0xffffu);
    let p11 = (x >> 16u) * (z >> 16u);
    let mid = p01 + p10;
    let mid_carry = select(0u, 1u, mid < p01);
    let lo = p00 + (mid << 16u);
    let hi = p11 + (mid >> 16u) + (mid_carry << 16u) + select(0u, 1u, lo < p00);
    let m = L(bitcast<i32>(hi), lo);
    if (u < 0) != (v < 0) { return l_neg(m); }
    return m;
}

// `shift_round` of wide.rs: `x / 2^s` rounded half up; `x · 2^-s` (x first kept within
// ±2^40) for s <= 0.
fn l_shift_round(x: L, s: i32) -> L {
    if s >= 63 { return L(0, 0u); }
    if s > 0 {
        let half = l_sar(x, u32(s - 1));
        return l_add(l_sar(x, u32(s)), L(0, half.lo & 1u));
    }
    var c = x;
    if x.hi > 256 || (x.hi == 256 && x.lo > 0u) { c = L(256, 0u); }
    if x.hi < -256 { c = L(-256, 0u); }
    return l_shl(c, u32(min(-s, 22)));
}

// `x` saturated to ±SAT24.
fn l_saturate(x: L) -> i32 {
    let v = bitcast<i32>(x.lo);
    if x.hi != (v >> 31u) { return select(-SAT24, SAT24, x.hi >= 0); }
    return clamp(v, -SAT24, SAT24);
}

// A negative value `v` times a slope `k` (15-bit fraction), rounded, saturated: wide.rs's
// `activate` then `saturate`, in 32-bit steps (`v = vq·2^15 + vr`); `lim` is `2^30 / |k|`.
fn activate_wide(v: L, k: i32, lim: i32) -> i32 {
    if k == 0 { return 0; }
    let q = l_sar(v, 15u);
    let vq = bitcast<i32>(q.lo);
    if q.hi != (vq >> 31u) { return select(SAT24, -SAT24, (q.hi < 0) != (k < 0)); }
    return activate_parts(vq, i32(v.lo & 0x7fffu), k, lim);
}

// `activate_wide` of `vq·2^15 + vr` (vr in [0, 2^15)) where `vq` fits 32 bits.
fn activate_parts(vq: i32, vr: i32, k: i32, lim: i32) -> i32 {
    if k == 0 { return 0; }
    if vq > lim || vq < -lim { return select(SAT24, -SAT24, (vq < 0) != (k < 0)); }
    return clamp(vq * k + ((vr * k + 16384) >> 15u), -SAT24, SAT24);
}

// Values a `finish_wide` workgroup takes of its channel's plane per step (four an invocation).
const FINISH_RUN: i32 = 256;

// What `finished` needs of an output channel: its words at p[t..t + 5] (bias >> 32,
// bias & (2^32 - 1), shift, slope, whether there is a slope), and for its 32-bit steps
// (`finished_narrow`) `bias >> 8` plus the rounding's half over 2^8 (`bh`) and `bias & 255`
// (`bl`).
struct Finish {
    bias: L,
    shift: i32,
    k: i32,
    lim: i32,
    slope: bool,
    bh: i32,
    bl: i32,
}

fn finish_words(t: i32) -> Finish {
    let k = p[t + 3];
    let bias = L(p[t], bitcast<u32>(p[t + 1]));
    let s = p[t + 2];
    let bh = bitcast<i32>(l_add(l_sar(bias, 8u), L(0, 1u << u32(clamp(s - 9, 0, 31)))).lo);
    let lim = 1073741824 / max(abs(k), 1);
    return Finish(bias, s, k, lim, p[t + 4] != 0, bh, i32(bias.lo & 255u));
}

// A convolution's output value from its two raw sums: `hi` over the upper parts of its input,
// `lo` over the lower, and its channel's words `f`.
fn finished(hi: i32, lo: i32, f: Finish) -> i32 {
    if NARROW_STEPS { return finished_narrow(hi, lo, f); }
    let x = l_add(l_add(l_shl(l_of(hi), 8u), l_of(lo)), f.bias);
    let v = l_shift_round(x, f.shift);
    if v.hi < 0 && f.slope {
        return activate_wide(v, f.k, f.lim);
    }
    return l_saturate(v);
}

// `finished` in 32-bit steps (every channel's shift from 9 to 38, `bh` within ±(2^30 - 2^24);
// realesrgan-x4plus's shifts are 12-18, its biases within ±2^37): with `s` the shift,
// `x + 2^(s-1) = 2^8·(hi + c) + r` where `c = (lo >> 8) + (bias >> 8) + 2^(s-9) + carry`
// (within ±2^30) and r in [0, 2^8), so the rounded value is `(hi + c) >> (s - 8)`: a 33-bit
// sum, its low word wrapped and its sign taken apart, shifted by at least 1 into 32 bits.
fn finished_narrow(hi: i32, lo: i32, f: Finish) -> i32 {
    let c = (lo >> 8u) + f.bh + (((lo & 255) + f.bl) >> 8u);
    let t = hi + c;
    let negative = select(t < 0, hi < 0, (hi < 0) == (c < 0));
    let n = u32(f.shift - 8);
    let v = bitcast<i32>((bitcast<u32>(t) >> n) | select(0u, ~0u << (32u - n), negative));
    if v < 0 && f.slope { return activate_parts(v >> 15u, v & 0x7fff, f.k, f.lim); }
    return clamp(v, -SAT24, SAT24);
}

// A convolution's output from its two raw sums (`finished`): p = [plane, channels, then per
// output channel its five words (`finish_words`)]. Workgroup (x, y) finishes runs x,
// x + groups.x, ... of FINISH_RUN values of channels y, y + groups.y, ...: each channel's words
// read once, no division a value; an invocation's four values' sums loaded before the first is
// finished (`raw_sums`): realesrgan-x4plus's 349 passes 0.057 s where they took 0.061 s on an
// H100.
@compute @workgroup_size(64)
fn finish_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32,
               @builtin(num_workgroups) g: vec3<u32>) {
    let plane = p[0];
    for (var c = i32(wg.y); c < p[1]; c += i32(g.y)) {
        let f = finish_words(2 + c * 5);
        for (var run = i32(wg.x) * FINISH_RUN; run < plane; run += i32(g.x) * FINISH_RUN) {
            let r = raw_sums(c, plane, run + i32(l));
            if r.inside.x { y[r.at.x] = finished(r.hi.x, r.lo.x, f); }
            if r.inside.y { y[r.at.y] = finished(r.hi.y, r.lo.y, f); }
            if r.inside.z { y[r.at.z] = finished(r.hi.z, r.lo.z, f); }
            if r.inside.w { y[r.at.w] = finished(r.hi.w, r.lo.w, f); }
        }
    }
}

// An invocation's four values of a FINISH_RUN (64 apart, from plane offset `o`) of channel `c`:
// whether each is inside the plane, its index, and its two raw sums.
struct RawSums {
    inside: vec4<bool>,
    at: vec4<i32>,
    hi: vec4<i32>,
    lo: vec4<i32>,
}

// The raw sums of `finish_wide` and `finish_sum_wide`, all four values' loaded before any of them is
// finished (an index past the plane loads value 0 of the channel, not kept).
fn raw_sums(c: i32, plane: i32, o: i32) -> RawSums {
    let at = vec4<i32>(o) + vec4<i32>(0, 64, 128, 192);
    let inside = at < vec4<i32>(plane);
    let i = vec4<i32>(c * plane) + select(vec4<i32>(0), at, inside);
    return RawSums(inside, i, vec4<i32>(a[i.x], a[i.y], a[i.z], a[i.w]), vec4<i32>(b[i.x], b[i.y], b[i.z], b[i.w]));
}

// The other blobs of the sums a convolution's output feeds (`finish_sum_wide`): the first
// sum's, and the second's (the first's output feeds it alone; bound again where there is none).
@group(0) @binding(4) var<storage, read> summed: array<i32>;
@group(0) @binding(5) var<storage, read> summed_next: array<i32>;

// `v · k` for a sum's coefficient |k| <= 2^15 (any v): `v = 2^16·vh + vl` (vl in [0, 2^16)), two
// 32-bit products that cannot overflow (|vh·k| <= 2^30, |vl·k| < 2^31), where `l_mul` takes
// four and a negation (with `finish_sum_wide`'s rows stepped, not divided: its 70 passes in
// realesrgan-x4plus 0.048 s where they took 0.055 s on an H100, docs/benchmarks.md 2026-12-06 (16)).
fn l_mul_coef(v: i32, k: i32) -> L {
    let high = (v >> 16u) * k;
    return l_add(L(high >> 16u, bitcast<u32>(high) << 16u), l_of((v & 0xffff) * k));
}

// A sum's term: `shift_round(v · k, s)`.
fn sum_term(v: i32, k: i32, s: i32) -> L {
    return l_shift_round(l_mul_coef(v, k), s);
}

// Values `v` and `w` summed with terms `t` (`(k, s)` of each), saturated to ±SAT24: the sums
// of `sum2_wide` and `finish_sum_wide`, in 32-bit steps (`term_narrow`: every term's
// coefficient within ±2^15, its shift from 10 to 40; realesrgan-x4plus's coefficients are 0.2
// and 1, its shifts 12-17) where `NARROW_STEPS`: the values are a 24-bit blob's, within ±SAT24.
fn sum_pair(v: i32, w: i32, t: vec4<i32>) -> i32 {
    if NARROW_STEPS {
        return clamp(term_narrow(v, t.x, t.y) + term_narrow(w, t.z, t.w), -SAT24, SAT24);
    }
    return l_saturate(l_add(sum_term(v, t.x, t.y), sum_term(w, t.z, t.w)));
}

// `sum_term` in 32-bit steps (|k| <= 2^15, 10 <= s <= 40, |v| < 2^24): `v · k = 2^16·a + b` with
// `a = (v >> 16)·k` and `b = (v & 0xffff)·k` (each within 32 bits), the rounding's floors taken
// in turn; the term is within ±2^29, so two of them sum in 32 bits.
fn term_narrow(v: i32, k: i32, s: i32) -> i32 {
    let a = (v >> 16u) * k;
    let b = (v & 0xffff) * k;
    if s <= 16 {
        let n = u32(s);
        return (a << (16u - n)) + (b >> n) + (((b & ((1 << n) - 1)) + (1 << (n - 1u))) >> n);
    }
    return (a + (b >> 16u) + (1 << u32(s - 17))) >> u32(s - 16);
}

// `finish_wide`, each output then summed with the first sum's other blob's value, and that
// sum with the second's where there is one (p[6] sums), as `sum2_wide` sums (each term
// `shift_round(v · k, s)`, each sum saturated to ±SAT24): the convolution's output, and the
// first sum's where there are two, are never written. p = [plane, channels, the convolution's
// window (x0, y0, w, h; the sums'), sums, then per sum the other blob's window and the terms
// (k, shift) of the value summed and of the other blob's; then from p[23] `finish_words`' five
// per output channel]; the grid as `finish_wide`'s.
@compute @workgroup_size(64)
fn finish_sum_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32,
                   @builtin(num_workgroups) g: vec3<u32>) {
    let plane = p[0];
    let out = window_at(2);
    let two = p[6] > 1;
    let w1 = window_at(7);
    let t1 = window_at(11);
    let w2 = window_at(15);
    let t2 = window_at(19);
    for (var c = i32(wg.y); c < p[1]; c += i32(g.y)) {
        let f = finish_words(23 + c * 5);
        for (var run = i32(wg.x) * FINISH_RUN; run < plane; run += i32(g.x) * FINISH_RUN) {
            // As `finish_wide`, every load first (`raw_sums`); the values' columns and rows
            // divided once a run, then stepped 64 values on.
            let o = run + i32(l);
            let r = raw_sums(c, plane, o);
            let q0 = vec2<i32>(o % out.z, o / out.z);
            let q1 = step_on(q0, out.z);
            let q2 = step_on(q1, out.z);
            let q3 = step_on(q2, out.z);
            let at1 = select(vec4<i32>(0), summed_at(c, out, w1, q0, q1, q2, q3), r.inside);
            let s1 = vec4<i32>(summed[at1.x], summed[at1.y], summed[at1.z], summed[at1.w]);
            var s2 = vec4<i32>(0);
            if two {
                let at2 = select(vec4<i32>(0), summed_at(c, out, w2, q0, q1, q2, q3), r.inside);
                s2 = vec4<i32>(summed_next[at2.x], summed_next[at2.y], summed_next[at2.z], summed_next[at2.w]);
            }
            let v = vec4<i32>(
                sums_of(finished(r.hi.x, r.lo.x, f), s1.x, s2.x, t1, t2, two),
                sums_of(finished(r.hi.y, r.lo.y, f), s1.y, s2.y, t1, t2, two),
                sums_of(finished(r.hi.z, r.lo.z, f), s1.z, s2.z, t1, t2, two),
                sums_of(finished(r.hi.w, r.lo.w, f), s1.w, s2.w, t1, t2, two),
            );
            if r.inside.x { y[r.at.x] = v.x; }
            if r.inside.y { y[r.at.y] = v.y; }
            if r.inside.z { y[r.at.z] = v.z; }
            if r.inside.w { y[r.at.w] = v.w; }
        }
    }
}

// Column and row `q` of a window `w` wide stepped 64 values on.
fn step_on(q: vec2<i32>, w: i32) -> vec2<i32> {
    var r = q + vec2<i32>(64, 0);
    while r.x >= w { r = vec2<i32>(r.x - w, r.y + 1); }
    return r;
}

// The offsets in blob window `wb` of channel `c` at columns and rows `q0..q3` of window `out`.
fn summed_at(c: i32, out: vec4<i32>, wb: vec4<i32>, q0: vec2<i32>, q1: vec2<i32>, q2: vec2<i32>,
             q3: vec2<i32>) -> vec4<i32> {
    return vec4<i32>(in_window(c, out.x + q0.x, out.y + q0.y, wb), in_window(c, out.x + q1.x, out.y + q1.y, wb),
                     in_window(c, out.x + q2.x, out.y + q2.y, wb), in_window(c, out.x + q3.x, out.y + q3.y, wb));
}

// A convolution's output value `v` summed with the first sum's other value `s1` (terms `t1`),
// and that sum with the second's `s2` (terms `t2`) where there are `two`.
fn sums_of(v: i32, s1: i32, s2: i32, t1: vec4<i32>, t2: vec4<i32>, two: bool) -> i32 {
    var r = sum_pair(v, s1, t1);
    if two {
        r = sum_pair(r, s2, t2);
    }
    return r;
}

// The upper (p[1] = 1: `(v + 128) >> 8`) or lower (p[1] = 0: `v - 2^8·upper`) part of every
// value: p = [values, which].
@compute @workgroup_size(64)
fn part(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    if i >= p[0] { return; }
    y[i] = wide_part(a[i], p[1] != 0);
}

// Values a `sum2_wide` workgroup takes (four an invocation, 64 apart).
const SUM2_RUN: i32 = 256;

// As `sum2` of neural_ops.wgsl, in 64 bits: each term `shift_round(v · k, s)`, the sum
// saturated to ±SAT24; `pair_at`'s windows. Workgroup `w` takes values `SUM2_RUN·w ..`: the
// parameters, each a load from their storage buffer, are read once for four values, not for
// each.
@compute @workgroup_size(64)
fn sum2_wide(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let n = p[0] * p[3] * p[4];
    let out = window_at(1);
    let wa = window_at(5);
    let wb = window_at(11);
    let terms = vec4<i32>(p[9], p[10], p[15], p[16]);
    let f = i32(flat(gid, g));
    let first = (f / 64) * SUM2_RUN + f % 64;
    for (var j = 0; j < SUM2_RUN; j += 64) {
        let i = first + j;
        if i >= n { return; }
        let v = pair_in(i, out, wa, wb);
        y[i] = sum_pair(v.x, v.y, terms);
    }
}

// As `concat` of neural_ops.wgsl, each value shifted in 64 bits and saturated to ±SAT24.
@compute @workgroup_size(64)
fn concat_wide(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let t = concat_at(i32(flat(gid, g)));
    if t.y >= 0 { y[t.y] = l_saturate(l_shift_round(l_of(t.x), p[10])); }
}

// As `affine` of neural_ops.wgsl, in 64 bits: `v · m + a · 2^8`, shifted, saturated.
@compute @workgroup_size(64)
fn affine_wide(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if i >= p[0] { return; }
    let t = (i / p[1]) * 3;
    let x = l_add(l_mul(a[i], b[t]), l_shl(l_of(b[t + 1]), 8u));
    y[i] = l_saturate(l_shift_round(x, b[t + 2]));
}

// As wide.rs's `lookup`: the 24-bit table read at the upper part and interpolated on the lower
// part, in 32 bits (a difference of entries times |lo| <= 128 stays under 2^31).
@compute @workgroup_size(64)
fn lookup_wide(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if i >= p[0] { return; }
    let v = a[i];
    let h = clamp(wide_hi(v), -32768, 32767);
    let lo = v - (h << 8u);
    let t0 = b[h + 32768];
    let moved = (b[clamp(h + sign(lo), -32768, 32767) + 32768] - t0) * abs(lo);
    y[i] = t0 + (moved >> 8u) + ((moved >> 7u) & 1);
}

// As `product` of neural_ops.wgsl, in 64 bits (the shift includes the extra 8 bits).
@compute @workgroup_size(64)
fn product_wide(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if past_window(i) { return; }
    let v = pair_at(i, 5, 9);
    y[i] = l_saturate(l_shift_round(l_mul(v.x, v.y), p[13]));
}

// As `resize` of neural_ops.wgsl, in 64 bits: each row's sum rounded back to the input's scale
// (it fits 32 bits again: the weights' magnitudes sum to under 1.45), the vertical sum shifted
// to the output's, saturated.
@compute @workgroup_size(64)
fn resize_wide(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if i >= p[0] * p[1] * p[2] { return; }
    let cx = resize_column(i); let cy = resize_row(i);
    var v = L(0, 0u);
    for (var k = 0; k < 4; k++) {
        let row = resize_source(i, cy, k);
        var s = L(0, 0u);
        for (var j = 0; j < 4; j++) { s = l_add(s, l_mul(a[row + b[cx + j]], b[cx + 4 + j])); }
        v = l_add(v, l_mul(bitcast<i32>(l_shift_round(s, 12).lo), b[cy + 4 + k]));
    }
    y[i] = l_saturate(l_shift_round(v, 12 + p[7]));
}
