// The Gaunt product by the 2D-Fourier route (the body and its formulas:
// gaunt_fourier.inc.wgsl, gaunt_fourier.wgsl) for FFT grids past what workgroup memory holds
// (FFT_CAPACITY entries): each row keeps its grid in its own slice of a storage scratch
// buffer, p.scratch_stride f32s (n_u·n_v complex entries as pairs of f32) per row of the
// launch. The same arithmetic in the same order as gaunt_fourier.wgsl.

// #include "so3/gaunt_fourier.inc.wgsl"

// #include "so3/harmonic_index.inc.wgsl"

@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(4) var<storage, read> tables: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> twiddles: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> positions: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

var<private> slot: u32; // this row's slice of `scratch`

fn begin_row(row: u32) { slot = row * p.scratch_stride; }
fn spectrum_at(i: u32) -> vec2<f32> {
    let at = slot + 2u * i;
    return vec2<f32>(scratch[at], scratch[at + 1u]);
}
fn set_spectrum(i: u32, v: vec2<f32>) {
    let at = slot + 2u * i;
    scratch[at] = v.x;
    scratch[at + 1u] = v.y;
}
fn spectrum_barrier() { storageBarrier(); }
