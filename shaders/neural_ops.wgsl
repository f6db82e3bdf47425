// The neural engine's data movement and sums on the device, one output value per invocation.
// `p` holds each entry point's integer parameters; windows are (x0, y0, w, h) of a blob.

@group(0) @binding(0) var<storage, read> p: array<i32>;
@group(0) @binding(1) var<storage, read> a: array<i32>;
@group(0) @binding(2) var<storage, read> b: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<i32>;

// A deconvolution's phases into its cropped output: p = [s, cout, ox0, oy0, ow, oh, pad_x,
// pad_y, bx0, by0, bw, bh]; `a` is the phase convolution's output (channel (c·s + py)·s + px).
@compute @workgroup_size(64)
fn interleave(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    let ow = p[4]; let oh = p[5];
    if i >= p[1] * ow * oh { return; }
    let s = p[0];
    let c = i / (ow * oh); let oy = (i / ow) % oh; let ox = i % ow;
    let fy = p[3] + oy + p[7]; let fx = p[2] + ox + p[6];
    let plane = (c * s + fy % s) * s + fx % s;
    y[i] = a[(plane * p[11] + fy / s - p[9]) * p[10] + fx / s - p[8]];
}

// The input window's 16-bit samples, two to a word in `a`, widened to one word each and
// shifted left by p[1] (8 for 24-bit activations): p = [n, shift].
@compute @workgroup_size(64)
fn widen(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    if i >= p[0] { return; }
    let w = a[i / 2];
    y[i] = select((w << 16u) >> 16u, w >> 16u, (i & 1) == 1) << u32(p[1]);
}

// Depth to space by r: p = [r, out channels, in w, in h].
@compute @workgroup_size(64)
fn shuffle(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    let r = p[0]; let w = p[2] * r; let h = p[3] * r;
    if i >= p[1] * w * h { return; }
    let c = i / (w * h); let yy = (i / w) % h; let xx = i % w;
    y[i] = a[((c * r * r + (yy % r) * r + xx % r) * p[3] + yy / r) * p[2] + xx / r];
}

// Space to depth by s: p = [s, out channels, out w, out h, in w, in h, dx, dy]; output
// channel (c·s + i)·s + j at (y, x) is input channel c at (y·s + i + dy, x·s + j + dx) of the
// input's window.
@compute @workgroup_size(64)
fn unshuffle(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    let s = p[0]; let w = p[2]; let h = p[3];
    if i >= p[1] * w * h { return; }
    let oc = i / (w * h); let yy = (i / w) % h; let xx = i % w;
    let c = oc / (s * s); let r = (oc / s) % s; let q = oc % s;
    y[i] = a[(c * p[5] + yy * s + r + p[7]) * p[4] + xx * s + q + p[6]];
}

// A window of the input: p = [channels, out w, out h, in w, in h, dx, dy]; output (y, x) is
// input (y + dy, x + dx) of the input's window.
@compute @workgroup_size(64)
fn crop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    let w = p[1]; let h = p[2];
    if i >= p[0] * w * h { return; }
    let c = i / (w * h); let yy = (i / w) % h; let xx = i % w;
    y[i] = a[(c * p[4] + yy + p[6]) * p[3] + xx + p[5]];
}

// Nearest enlargement: p = [sh, sw, channels, in w, in h]. Invocation (x, y, z) copies input
// columns x, x + 64·groups.x, ... of rows y, y + groups.y, ... of channels z, z + groups.z, ...
// to their sh x sw output values each: no division (a value's output index divided out took
// five; realesrgan-x4plus's 36 passes 0.004 s where they took 0.014 s on an H100).
@compute @workgroup_size(64)
fn nearest(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let sh = p[0]; let sw = p[1]; let iw = p[3]; let ih = p[4];
    for (var c = i32(gid.z); c < p[2]; c += i32(g.z)) {
        for (var iy = i32(gid.y); iy < ih; iy += i32(g.y)) {
            for (var ix = i32(gid.x); ix < iw; ix += i32(g.x) * 64) {
                let v = a[(c * ih + iy) * iw + ix];
                for (var dy = 0; dy < sh; dy++) {
                    let o = ((c * ih + iy) * sh + dy) * iw * sw + ix * sw;
                    for (var dx = 0; dx < sw; dx++) { y[o + dx] = v; }
                }
            }
        }
    }
}

// Whether `i` is past the output window p[1..5] = (ox0, oy0, ow, oh) of p[0] channels.
fn past_window(i: i32) -> bool {
    return i >= p[0] * p[3] * p[4];
}

// The window (x0, y0, w, h) at p[at..at + 4].
fn window_at(at: i32) -> vec4<i32> {
    return vec4<i32>(p[at], p[at + 1], p[at + 2], p[at + 3]);
}

// The offset of global position (gx, gy) of channel c in a blob's window w.
fn in_window(c: i32, gx: i32, gy: i32, w: vec4<i32>) -> i32 {
    return (c * w.w + gy - w.y) * w.z + gx - w.x;
}

// The values of `a` and `b` at output value `i` of the output window `out`: their own windows
// are `wa` and `wb` (each x0, y0, w, h).
fn pair_in(i: i32, out: vec4<i32>, wa: vec4<i32>, wb: vec4<i32>) -> vec2<i32> {
    let c = i / (out.z * out.w); let gy = out.y + (i / out.z) % out.w; let gx = out.x + i % out.z;
    return vec2<i32>(a[in_window(c, gx, gy, wa)], b[in_window(c, gx, gy, wb)]);
}

// `pair_in` with the output window p[1..5] and the inputs' windows p[at_a..at_a + 4] and
// p[at_b..at_b + 4].
fn pair_at(i: i32, at_a: i32, at_b: i32) -> vec2<i32> {
    return pair_in(i, window_at(1), window_at(at_a), window_at(at_b));
}

// Per channel, row and chunk of at most 16384 columns of a window of a blob, the sums of the
// window's values' upper 16 bits (signed, `v >> 16`) and lower 16 bits (`v & 0xffff`, as an
// unsigned word): an SE block's pooled blob summed on the device, exactly (each sum is under
// 2^31 in magnitude, or 2^32 unsigned); the host adds them up as 64-bit integers.
// p = [channels, rows, columns, chunks, dx, dy, blob w, blob h]: the window is `columns` x
// `rows` from (dx, dy) of the blob's own window. Value `2·j + part` of chunk `j`.
@compute @workgroup_size(64)
fn row_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    let rows = p[1]; let columns = p[2]; let chunks = p[3];
    if i >= p[0] * rows * chunks * 2 { return; }
    let j = i / 2; let upper = (i & 1) == 0;
    let chunk = j % chunks; let r = j / chunks;
    let row = ((r / rows) * p[7] + r % rows + p[5]) * p[6] + p[4];
    let end = min(columns, (chunk + 1) * 16384);
    var hi = 0; var lo = 0u;
    for (var x = chunk * 16384; x < end; x++) {
        let v = a[row + x];
        hi += v >> 16u;
        lo += u32(v) & 0xffffu;
    }
    y[i] = select(bitcast<i32>(lo), hi, upper);
}

// Two blobs weighted and summed over the output window: p = [channels, ox0, oy0, ow, oh,
// ax0, ay0, aw, ah, ka, sa, bx0, by0, bw, bh, kb, sb].
@compute @workgroup_size(64)
fn sum2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if past_window(i) { return; }
    let v = pair_at(i, 5, 11);
    y[i] = saturate16(shift_round(v.x * p[9], p[10]) + shift_round(v.y * p[15], p[16]));
}

// The product of two blobs over the output window: p = [channels, ox0, oy0, ow, oh, ax0,
// ay0, aw, ah, bx0, by0, bw, bh, shift] (`Exact::product`: under 2^30 in magnitude).
@compute @workgroup_size(64)
fn product(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if past_window(i) { return; }
    let v = pair_at(i, 5, 9);
    y[i] = saturate16(shift_round(v.x * v.y, p[13]));
}

// A per-channel affine layer: p = [values, plane]; `b` holds per channel a multiplier, an
// addend and a shift (`Exact::affine`: the sum stays under 2^30 in magnitude).
@compute @workgroup_size(64)
fn affine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if i >= p[0] { return; }
    let t = (i / p[1]) * 3;
    y[i] = saturate16(shift_round(a[i] * b[t] + b[t + 1], b[t + 2]));
}

// A function of every value, looked up: p = [values]; `b` is the table (65536 entries, the
// entry of value q at q + 32768: `Map::table`).
@compute @workgroup_size(64)
fn lookup(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if i >= p[0] { return; }
    y[i] = b[clamp(a[i], -32768, 32767) + 32768];
}

// One input of a channel concatenation, written into its channels of the output: p = [in
// channels, first out channel, out x0, out y0, out w, out h, in x0, in y0, in w, in h,
// shift]. (`y` is the whole output; each input is its own dispatch.)
@compute @workgroup_size(64)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let t = concat_at(i32(flat(gid, g)));
    if t.y >= 0 { y[t.y] = saturate16(shift_round(t.x, p[10])); }
}

// Invocation `i` of `concat`: its input's value and that value's index in the output (-1
// past the input's values).
fn concat_at(i: i32) -> vec2<i32> {
    let ow = p[4]; let oh = p[5];
    if i >= p[0] * ow * oh { return vec2<i32>(0, -1); }
    let c = i / (ow * oh); let yy = (i / ow) % oh; let xx = i % ow;
    return vec2<i32>(a[(c * p[9] + p[3] + yy - p[7]) * p[8] + p[2] + xx - p[6]], ((p[1] + c) * oh + yy) * ow + xx);
}

// A bicubic resize (src/neural/resize.rs): p = [channels, out w, out h, in x0, in y0, in w,
// in h, shift]; `b` holds, per output column and then per output row, four global source
// indices and their four 12-bit weights. Rows first, each rounded back to the input's scale.
@compute @workgroup_size(64)
fn resize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    if i >= p[0] * p[1] * p[2] { return; }
    let cx = resize_column(i); let cy = resize_row(i);
    var v = 0;
    for (var k = 0; k < 4; k++) {
        let row = resize_source(i, cy, k);
        var s = 0;
        for (var j = 0; j < 4; j++) { s += a[row + b[cx + j]] * b[cx + 4 + j]; }
        v += shift_round(s, 12) * b[cy + 4 + k];
    }
    y[i] = saturate16(shift_round(v, 12 + p[7]));
}

// Output value `i` of `resize`: where its column's taps start in `b`, where its row's do, and
// where tap `k` of its row starts in `a` (for row taps at `cy`).
fn resize_column(i: i32) -> i32 {
    return (i % p[1]) * 8;
}
fn resize_row(i: i32) -> i32 {
    return (p[1] + (i / p[1]) % p[2]) * 8;
}
fn resize_source(i: i32, cy: i32, k: i32) -> i32 {
    return (i / (p[1] * p[2]) * p[6] + b[cy + k] - p[4]) * p[5] - p[3];
}

// The network's output as samples (`Samples::convert` in src/neural/stage.rs): p = [x, y,
// blob w, blob plane, w, h, exponent, max, grey, bytes per sample, words, big-endian, wide]
// (wide: 24-bit values, narrowed to their upper 16 bits first). One invocation packs four
// bytes of the `h` rows of `w` pixels (1 or 3 samples each).
@compute @workgroup_size(64)
fn samples(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    if i >= p[10] { return; }
    let ch = select(3, 1, p[8] != 0);
    let bps = p[9];
    let total = p[4] * p[5] * ch * bps;
    var word = 0u;
    for (var k = 0; k < 4; k++) {
        let byte = i * 4 + k;
        if byte >= total { break; }
        let s = byte / bps;
        let v = sample(s / ch, s % ch, ch);
        // The store keeps samples in the host's byte order.
        let shift = select(byte % bps, bps - 1 - byte % bps, p[11] != 0);
        word |= ((v >> u32(8 * shift)) & 0xffu) << u32(8 * k);
    }
    y[i] = bitcast<i32>(word);
}

// Channel `c` of pixel `px` of the crop (the rounded mean of the three for grey).
fn sample(px: i32, c: i32, ch: i32) -> u32 {
    let at = (p[1] + px / p[4]) * p[2] + p[0] + px % p[4];
    if ch == 3 { return from_fixed(a[c * p[3] + at]); }
    return (from_fixed(a[at]) + from_fixed(a[p[3] + at]) + from_fixed(a[2 * p[3] + at]) + 1u) / 3u;
}

// `stage::from_fixed`: the 16-bit value q / 2^e as a sample of 0..=max, rounded half up.
// (2·q·max + 2^e) >> (e + 1) == (q·max + 2^(e-1)) >> e, and q·max < 2^31.
fn from_fixed(wide: i32) -> u32 {
    let v = select(wide, wide_hi(wide), p[12] != 0);
    let q = u32(max((v << 16u) >> 16u, 0));
    let m = u32(p[7]);
    let e = p[6];
    let qm = q * m;
    var r: u32;
    if e >= 32 {
        r = 0u;
    } else if e > 0 {
        r = (qm + (1u << u32(e - 1))) >> u32(e);
    } else if e == 0 {
        r = qm;
    } else if -e >= 31 || qm > (m >> u32(-e)) {
        r = select(m, 0u, qm == 0u);
    } else {
        r = qm << u32(-e);
    }
    return min(r, m);
}
