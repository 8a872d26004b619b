// The Gaunt product on a spherical grid, separable form (see src/so3/grid.rs), one
// workgroup per (sample, channel) row:
//   A_i[m]   = Σ_l Θ_lm(β_i)·x_lm                       (both inputs, every ring i)
//   h_ij     = (Σ_m A1_i[m]·Φ_m(α_j)) · (Σ_m A2_i[m]·Φ_m(α_j))
//   B_i[m]   = (1/n_α)·Σ_j h_ij·Φ_m(α_j)
//   out_lm   = Σ_i (w_i/2)·Θ_lm(β_i)·B_i[m]
// O(L³) per row; every stage in workgroup memory. Sizes: l ≤ 16, n_β ≤ 23, n_α ≤ 45
// (l1 + l2 + lmax_out ≤ 44), checked by the host.

struct Params {
    rows: u32,           // n·c
    channels: u32,
    broadcast: u32,      // x2 is [n, 1, ·]
    l1: u32,
    l2: u32,
    lmax_out: u32,
    n_beta: u32,
    n_alpha: u32,
    l_table: u32,
    theta_offset: u32,   // Θ [n_β][dim(l_table)] in `tables`
    weighted_offset: u32,// (w_i/2)·Θ, same layout
    phi_offset: u32,     // Φ [n_α][2·l_table + 1]
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    _pad: u32,
}

const WORKGROUP: u32 = 256u;
const X2: u32 = 289u; // x2's place in `coefficients`: after dim(16) entries of x1

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read> tables: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> coefficients: array<f32, 578>; // x1, x2
var<workgroup> rings: array<f32, 1518>;       // A1, A2; later B
var<workgroup> grid: array<f32, 1035>;        // h

fn index(l: i32, m: i32) -> u32 {
    return u32(l * l + m + l);
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if row >= p.rows {
        return;
    }
    let x2_row = select(row, row / p.channels, p.broadcast == 1u);
    let l1 = i32(p.l1);
    let l2 = i32(p.l2);
    let lo = i32(p.lmax_out);
    let lt = i32(p.l_table);
    let d1 = (p.l1 + 1u) * (p.l1 + 1u);
    let d2 = (p.l2 + 1u) * (p.l2 + 1u);
    let d_out = (p.lmax_out + 1u) * (p.lmax_out + 1u);
    let d_table = (p.l_table + 1u) * (p.l_table + 1u);
    let phi_width = 2u * p.l_table + 1u;
    for (var e = lid; e < d1; e += WORKGROUP) {
        coefficients[e] = read_x1(p.x1_offset + row * d1 + e);
    }
    for (var e = lid; e < d2; e += WORKGROUP) {
        coefficients[X2 + e] = read_x2(p.x2_offset + x2_row * d2 + e);
    }
    workgroupBarrier();

    // Synthesis in β: A1 then A2, ring-major.
    let w1 = 2u * p.l1 + 1u;
    let w2 = 2u * p.l2 + 1u;
    let a2 = p.n_beta * w1;
    for (var e = lid; e < p.n_beta * (w1 + w2); e += WORKGROUP) {
        var i: u32;
        var m: i32;
        var l: i32;
        var base: u32;
        if e < a2 {
            i = e / w1;
            m = i32(e % w1) - l1;
            l = l1;
            base = 0u;
        } else {
            i = (e - a2) / w2;
            m = i32((e - a2) % w2) - l2;
            l = l2;
            base = X2;
        }
        var sum = 0.0;
        for (var k = abs(m); k <= l; k++) {
            let lm = index(k, m);
            sum += tables[p.theta_offset + i * d_table + lm] * coefficients[base + lm];
        }
        rings[e] = sum;
    }
    workgroupBarrier();

    // Synthesis in α and the product on the grid.
    for (var e = lid; e < p.n_beta * p.n_alpha; e += WORKGROUP) {
        let i = e / p.n_alpha;
        let phi_row = p.phi_offset + (e % p.n_alpha) * phi_width;
        var f1 = 0.0;
        for (var m = -l1; m <= l1; m++) {
            f1 += rings[i * w1 + u32(m + l1)] * tables[phi_row + u32(m + lt)];
        }
        var f2 = 0.0;
        for (var m = -l2; m <= l2; m++) {
            f2 += rings[a2 + i * w2 + u32(m + l2)] * tables[phi_row + u32(m + lt)];
        }
        grid[e] = f1 * f2;
    }
    workgroupBarrier();

    // Analysis in α: B_i[m] into `rings`.
    let wo = 2u * p.lmax_out + 1u;
    let inverse_n_alpha = 1.0 / f32(p.n_alpha);
    for (var e = lid; e < p.n_beta * wo; e += WORKGROUP) {
        let i = e / wo;
        let column = u32(i32(e % wo) - lo + lt);
        var sum = 0.0;
        for (var j = 0u; j < p.n_alpha; j++) {
            sum += grid[i * p.n_alpha + j] * tables[p.phi_offset + j * phi_width + column];
        }
        rings[e] = sum * inverse_n_alpha;
    }
    workgroupBarrier();

    // Analysis in β.
    for (var lm = lid; lm < d_out; lm += WORKGROUP) {
        var l = i32(sqrt(f32(lm)));
        if (l + 1) * (l + 1) <= i32(lm) {
            l += 1;
        }
        if l * l > i32(lm) {
            l -= 1;
        }
        let m = i32(lm) - l * l - l;
        var sum = 0.0;
        for (var i = 0u; i < p.n_beta; i++) {
            sum += tables[p.weighted_offset + i * d_table + lm] * rings[i * wo + u32(m + lo)];
        }
        out[p.out_offset + row * d_out + lm] = sum;
    }
}
