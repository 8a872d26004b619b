// The Gaunt product on a spherical grid (the body and its stages: gaunt_grid.inc.wgsl), for
// products whose stages do not fit workgroup memory (gaunt_grid.wgsl's limits): each row keeps
// them in its own slice of a storage scratch buffer, p.scratch_stride f32s per row of the
// launch — x1's and x2's coefficients, then (at p.rings_at) the rings' complex coefficients as
// pairs of f32, then (at p.products_at) the products. The same arithmetic in the same order
// as gaunt_grid.wgsl, so the two give the same bits; only the memory (and speed) differ.

// #include "so3/gaunt_grid.inc.wgsl"

// #include "so3/harmonic_index.inc.wgsl"

@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(4) var<storage, read> tables: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<private> slot: u32; // this row's slice of `scratch`

fn begin_row(row: u32) { slot = row * p.scratch_stride; }
fn x2_place() -> u32 { return (p.l1 + 1u) * (p.l1 + 1u); }
fn coefficient(i: u32) -> f32 { return scratch[slot + i]; }
fn set_coefficient(i: u32, v: f32) { scratch[slot + i] = v; }
fn ring(i: u32) -> vec2<f32> {
    let at = slot + p.rings_at + 2u * i;
    return vec2<f32>(scratch[at], scratch[at + 1u]);
}
fn set_ring(i: u32, v: vec2<f32>) {
    let at = slot + p.rings_at + 2u * i;
    scratch[at] = v.x;
    scratch[at + 1u] = v.y;
}
fn product(i: u32) -> f32 { return scratch[slot + p.products_at + i]; }
fn set_product(i: u32, v: f32) { scratch[slot + p.products_at + i] = v; }
fn sync() { storageBarrier(); }
