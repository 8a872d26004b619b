// M-FAC's m×m step, in one workgroup: with c gradients and their Gram matrix G·Gᵀ,
//   M = c·I + G·Gᵀ/λ = L·diag(D)·Lᵀ   (L unit lower triangular, right-looking LDLᵀ)
//   W = L⁻¹/λ                        (forward substitution, one column per thread)
// so that F⁻¹ = I/λ − Gᵀ·Wᵀ·diag(D)⁻¹·W·G (Woodbury). D_i equals the paper's
// D_i = c + g_iᵀ F_{i−1}⁻¹ g_i, and the rows of W·G are its v_i. O(c³); M is symmetric
// positive definite (c > 0, λ > 0), so no pivoting. Reads the leading c×c block of a Gram
// matrix stored with row stride `stride` (the sliding window's ring has m ≥ c slots).

struct Params {
    count: u32,    // c
    stride: u32,
    damp: f32,     // λ
    _pad: u32,
}

const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gram: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;         // [c, c]: M, then L
@group(0) @binding(3) var<storage, read_write> w: array<f32>;            // [c, c]: L⁻¹/λ
@group(0) @binding(4) var<storage, read_write> denominators: array<f32>; // [c]: D

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let c = p.count;
    for (var e = lid; e < c * c; e += WORKGROUP) {
        let i = e / c;
        let j = e % c;
        work[e] = gram[i * p.stride + j] / p.damp + select(0.0, f32(c), i == j);
    }
    storageBarrier();
    workgroupBarrier();

    for (var k = 0u; k < c; k++) {
        let pivot = work[k * c + k];
        // Trailing lower triangle: M_ij −= M_ik·M_jk / D_k (column k still unscaled).
        let rows = c - k - 1u;
        for (var e = lid; e < rows * rows; e += WORKGROUP) {
            let i = k + 1u + e / rows;
            let j = k + 1u + e % rows;
            if j <= i {
                work[i * c + j] -= work[i * c + k] * work[j * c + k] / pivot;
            }
        }
        storageBarrier();
        workgroupBarrier();
        for (var i = k + 1u + lid; i < c; i += WORKGROUP) {
            work[i * c + k] /= pivot;
        }
        if lid == 0u {
            denominators[k] = pivot;
        }
        storageBarrier();
        workgroupBarrier();
    }

    // Column j of L⁻¹: x_j = 1, x_i = −Σ_{j ≤ t < i} L_it x_t. Columns are independent.
    for (var j = lid; j < c; j += WORKGROUP) {
        for (var i = 0u; i < j; i++) {
            w[i * c + j] = 0.0;
        }
        w[j * c + j] = 1.0;
        for (var i = j + 1u; i < c; i++) {
            var s = 0.0;
            for (var t = j; t < i; t++) {
                s += work[i * c + t] * w[t * c + j];
            }
            w[i * c + j] = -s;
        }
        for (var i = j; i < c; i++) {
            w[i * c + j] /= p.damp;
        }
    }
}
