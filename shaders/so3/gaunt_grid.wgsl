// The Gaunt product on a spherical grid, separable form (see src/so3/grid.rs), one
// workgroup per (sample, channel) row:
//   A_i[m]   = Σ_l Θ_lm(β_i)·x_lm                       (both inputs, every Gauss–Legendre ring i)
//   B_i[m]   = (1/2π)∫ (Σ A1_i Φ)(Σ A2_i Φ)·Φ_m dα     (the product along the ring, exact,
//                                                       as a convolution of Fourier coefficients)
//   out_lm   = Σ_i (w_i/2)·Θ_lm(β_i)·B_i[m]
// O(L³) per row; every stage in workgroup memory. Sizes (checked by the host): l1, l2 ≤ 16,
// n_β·(2·l1 + 2·l2 + 2) ≤ 1518, n_β·(2·lmax_out + 1) ≤ 1035.

struct Params {
    rows: u32,           // n·c
    channels: u32,
    broadcast: u32,      // x2 is [n, 1, ·]
    l1: u32,
    l2: u32,
    lmax_out: u32,
    n_beta: u32,
    l_table: u32,
    theta_offset: u32,   // Θ [n_β][dim(l_table)] in `tables`
    weighted_offset: u32,// (w_i/2)·Θ, same layout
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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
var<workgroup> rings: array<f32, 1518>;       // A1, A2
var<workgroup> products: array<f32, 1035>;    // B

// The complex Fourier coefficient c_k of the ring series Σ_m A[m]·Φ_m(α) stored at
// rings[base + m + l], m = −l..=l.
fn ring_coefficient(base: u32, l: i32, k: i32) -> vec2<f32> {
    if k == 0 {
        return vec2<f32>(rings[base + u32(l)], 0.0);
    }
    let a = abs(k);
    let cosine = rings[base + u32(l + a)];
    let sine = rings[base + u32(l - a)];
    return select(vec2<f32>(0.5 * cosine, 0.5 * sine), vec2<f32>(0.5 * cosine, -0.5 * sine), k > 0);
}

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

    // The product along α, ring by ring, on the rings' Fourier coefficients (ring_product
    // in src/so3/grid.rs): c_0 = A[0], c_{±k} = (A[k] ∓ i·A[−k])/2, e_k = Σ c1_{k1}·c2_{k−k1},
    // B[0] = e_0, B[k] = Re e_k, B[−k] = −Im e_k. One thread per (ring, k ≥ 0).
    let wo = 2u * p.lmax_out + 1u;
    for (var e = lid; e < p.n_beta * (p.lmax_out + 1u); e += WORKGROUP) {
        let i = e / (p.lmax_out + 1u);
        let k = i32(e % (p.lmax_out + 1u));
        var product = vec2<f32>(0.0, 0.0);
        for (var k1 = max(-l1, k - l2); k1 <= min(l1, k + l2); k1++) {
            let c1 = ring_coefficient(i * w1, l1, k1);
            let c2 = ring_coefficient(a2 + i * w2, l2, k - k1);
            product += vec2<f32>(c1.x * c2.x - c1.y * c2.y, c1.x * c2.y + c1.y * c2.x);
        }
        products[i * wo + u32(k + lo)] = product.x;
        if k > 0 {
            products[i * wo + u32(lo - k)] = -product.y;
        }
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
            sum += tables[p.weighted_offset + i * d_table + lm] * products[i * wo + u32(m + lo)];
        }
        out[p.out_offset + row * d_out + lm] = sum;
    }
}
