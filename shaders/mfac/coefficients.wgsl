// From the chunked dot products a = R·x (dots.wgsl) to the coefficients c of
//   F⁻¹x = x/λ − Σ_i c_i R_i
// static (R = V):          c_i = a_i / D_i
// Woodbury (R = G):        c = Wᵀ·diag(D)⁻¹·W·a      (W = L⁻¹/λ lower triangular, factor.wgsl)
// gram update (push):      a is the new Gram row: written to row and column `slot`.
// gram (static):           vector v is gradient v: a is row v of the Gram matrix G·Gᵀ.
// One workgroup per vector; O(m²) for Woodbury.

// #include "util/workgroup.inc.wgsl"

struct Params {
    count: u32,      // gradients in use (rows of R)
    chunks: u32,
    mode: u32,       // 0 static, 1 Woodbury, 2 gram update, 3 gram
    slot: u32,       // gram update: the row and column written
    stride: u32,     // gram update: row stride of the Gram matrix
    all_rows: u32,   // rows of the partial sums
    vectors: u32,
    _pad: u32,
}

const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> denominators: array<f32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>; // [k][2][count]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;     // [k][count], or the Gram

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let v = workgroup_index(wid, nwg);
    if v >= p.vectors {
        return;
    }
    let c = p.count;
    let a = v * 2u * c;      // a in scratch
    let y = a + c;           // diag(D)⁻¹·W·a in scratch
    for (var i = lid; i < c; i += WORKGROUP) {
        var sum = 0.0;
        for (var chunk = 0u; chunk < p.chunks; chunk++) {
            sum += partial[(v * p.chunks + chunk) * p.all_rows + i];
        }
        if p.mode == 0u {
            out[v * c + i] = sum / denominators[i];
        } else if p.mode == 1u {
            scratch[a + i] = sum;
        } else if p.mode == 2u {
            out[p.slot * p.stride + i] = sum;
            out[i * p.stride + p.slot] = sum;
        } else {
            out[v * p.stride + i] = sum;
        }
    }
    if p.mode != 1u {
        return;
    }
    storageBarrier();
    workgroupBarrier();
    for (var i = lid; i < c; i += WORKGROUP) {
        var sum = 0.0;
        for (var j = 0u; j <= i; j++) {
            sum += w[i * c + j] * scratch[a + j];
        }
        scratch[y + i] = sum / denominators[i];
    }
    storageBarrier();
    workgroupBarrier();
    for (var j = lid; j < c; j += WORKGROUP) {
        var sum = 0.0;
        for (var i = j; i < c; i++) {
            sum += w[i * c + j] * scratch[y + i];
        }
        out[v * c + j] = sum;
    }
}
