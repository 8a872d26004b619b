// The Gaunt product on a spherical grid, separable form (see src/so3/products/grid/plan.rs), one
// workgroup per (sample, channel) row:
//   A_i[m]   = Σ_l Θ_lm(β_i)·x_lm                       (both inputs, every Gauss–Legendre ring i)
//   B_i[m]   = (1/2π)∫ (Σ A1_i Φ)(Σ A2_i Φ)·Φ_m dα     (the product along the ring, exact,
//                                                       as a convolution of Fourier coefficients)
//   out_lm   = Σ_i (w_i/2)·Θ_lm(β_i)·B_i[m]
// O(L³) per row; every stage in workgroup memory. The Gauss–Legendre rings come in mirrored
// pairs (cos β_{n−1−i} = −cos β_i) and Θ_lm(π − β) = (−1)^{l+m}·Θ_lm(β), so both Legendre
// steps run over half the rings: A_i, A_mirror = E ± O (the sums over even and odd l + m),
// and the analysis weighs B_i + (−1)^{l+m}·B_mirror. Sizes (checked by the host from the
// constants below): l1, l2 ≤ MAX_DEGREE, n_β·(l1 + l2 + 2) ≤ RINGS,
// 2·⌈n_β/2⌉·(2·lmax_out + 1) ≤ PRODUCTS.

// #include "so3/gaunt_grid.inc.wgsl"

// #include "so3/harmonic_index.inc.wgsl"

const MAX_DEGREE: u32 = 16u; // of either input
const X2: u32 = 289u; // x2's place in `coefficients`: after dim(MAX_DEGREE) entries of x1
const COEFFICIENTS: u32 = 578u; // 2·X2
const RINGS: u32 = 759u; // complex c_k, k ≥ 0, of both inputs on every ring: n_β·(l1 + l2 + 2)
const PRODUCTS: u32 = 1035u; // 2·⌈n_β/2⌉·(2·lmax_out + 1)

@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read> tables: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> coefficients: array<f32, COEFFICIENTS>; // x1, x2
var<workgroup> rings: array<vec2<f32>, RINGS>;  // c_k, k ≥ 0, of every ring of x1, then of x2
var<workgroup> products: array<f32, PRODUCTS>;  // B_i ± B_i' per mirrored pair

fn begin_row(row: u32) {}
fn x2_place() -> u32 { return X2; }
fn coefficient(i: u32) -> f32 { return coefficients[i]; }
fn set_coefficient(i: u32, v: f32) { coefficients[i] = v; }
fn ring(i: u32) -> vec2<f32> { return rings[i]; }
fn set_ring(i: u32, v: vec2<f32>) { rings[i] = v; }
fn product(i: u32) -> f32 { return products[i]; }
fn set_product(i: u32, v: f32) { products[i] = v; }
fn sync() { workgroupBarrier(); }
