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

// Nearest enlargement: p = [sh, sw, channels, in w, in h].
@compute @workgroup_size(64)
fn nearest(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    _ = b[0];
    let i = i32(flat(gid, g));
    let w = p[3] * p[1]; let h = p[4] * p[0];
    if i >= p[2] * w * h { return; }
    let c = i / (w * h); let yy = (i / w) % h; let xx = i % w;
    y[i] = a[(c * p[4] + yy / p[0]) * p[3] + xx / p[1]];
}

// Two blobs weighted and summed over the output window: p = [channels, ox0, oy0, ow, oh,
// ax0, ay0, aw, ah, ka, sa, bx0, by0, bw, bh, kb, sb].
@compute @workgroup_size(64)
fn sum2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = i32(flat(gid, g));
    let ow = p[3]; let oh = p[4];
    if i >= p[0] * ow * oh { return; }
    let c = i / (ow * oh); let gy = p[2] + (i / ow) % oh; let gx = p[1] + i % ow;
    let va = a[(c * p[8] + gy - p[6]) * p[7] + gx - p[5]];
    let vb = b[(c * p[14] + gy - p[12]) * p[13] + gx - p[11]];
    y[i] = saturate16(shift_round(va * p[9], p[10]) + shift_round(vb * p[15], p[16]));
}
