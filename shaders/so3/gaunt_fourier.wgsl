// The Gaunt product by the 2D-Fourier route (Luo et al.; see src/so3/products/fourier/plan.rs), one
// workgroup per (sample, channel) row, the whole product in one FFT grid:
//   X_uv   = Σ_lm x_lm·t^{lm}_u·a^m_v     both inputs, each scaled to unit size by a power
//                                         of two, packed as Z = X1 + i·X2
//   f1 + i·f2 = inverse FFT of Z          (f1, f2 real: their spectra are Hermitian)
//   H      = forward FFT of f1·f2         (the 2D convolution X1 ∗ X2, scaled by n_u·n_v)
//   out_lm = ½·Re or Im Σ_u H_{u,m}·K^{lm}_u   (m ≥ 0 or m < 0; K the half-period
//            projection, 1/(n_u·n_v) folded in)
// Zero-padded to n_u ≥ 2(l1 + l2) + 1 (every u of the product is needed: the projection
// runs over half a period in β) and n_v ≥ l1 + l2 + lmax_out + 1 (aliases land outside
// |v| ≤ lmax_out). O(L³) per row, or O(L² log L) in the transforms.

// #include "so3/gaunt_fourier.inc.wgsl"

// #include "so3/harmonic_index.inc.wgsl"

// #include "so3/spectrum_workgroup.inc.wgsl"

@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read> tables: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> twiddles: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> positions: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

fn begin_row(row: u32) {}
