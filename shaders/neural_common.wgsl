// Shared by the neural engine's shaders: the exact engine's rounding (src/neural/exact.rs),
// in 32-bit integers only.

fn shift_round(a: i32, s: i32) -> i32 {
    if s >= 32 { return 0; }
    if s > 0 { return (a >> u32(s)) + ((a >> u32(s - 1)) & 1); }
    if s == 0 { return a; }
    let lim = 32767 >> u32(min(-s, 15));
    if a > lim { return 32767; }
    if a < -lim { return -32767; }
    return a << u32(-s);
}

fn saturate16(a: i32) -> i32 {
    return clamp(a, -32767, 32767);
}

// The largest magnitude of a 24-bit activation (src/neural/wide.rs).
const SAT24: i32 = 8388479;

// The upper part of a 24-bit value, `(v + 128) >> 8` (wide.rs's `hi`).
fn wide_hi(v: i32) -> i32 {
    return (v + 128) >> 8u;
}

// The upper (`upper`) or lower part (`v - 2^8·upper part`: wide.rs's `lo`) of a 24-bit value.
fn wide_part(v: i32, upper: bool) -> i32 {
    let h = wide_hi(v);
    return select(v - (h << 8u), h, upper);
}

// A 24-bit value shifted by `s` (wide.rs's `shift_round`, then saturated: the left shift's
// amount kept under 23, as there).
fn shift_wide(v: i32, s: i32) -> i32 {
    if s > 0 { return shift_round(v, s); }
    if s == 0 { return v; }
    let n = u32(min(-s, 22));
    let lim = SAT24 >> n;
    return select(select(v << n, SAT24, v > lim), -SAT24, v < -lim);
}

// A value as a convolution's split reads it: a 16-bit one shifted by `s` (part 0), or the
// upper (1) or lower (2) part of a 24-bit one shifted by `s` (`shift_wide`).
fn split_value(v: i32, s: i32, part: i32) -> i32 {
    if part == 0 { return saturate16(shift_round(v, s)); }
    return wide_part(shift_wide(v, s), part == 1);
}

// The flat index of this invocation over a 2-D grid of 64-wide workgroups.
fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}
