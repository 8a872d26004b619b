// The Gaunt product on a spherical grid, separable form (see src/so3/grid.rs), one
// workgroup per (sample, channel) row:
//   A_i[m]   = Σ_l Θ_lm(β_i)·x_lm                       (both inputs, every Gauss–Legendre ring i)
//   B_i[m]   = (1/2π)∫ (Σ A1_i Φ)(Σ A2_i Φ)·Φ_m dα     (the product along the ring, exact,
//                                                       as a convolution of Fourier coefficients)
//   out_lm   = Σ_i (w_i/2)·Θ_lm(β_i)·B_i[m]
// O(L³) per row; every stage in workgroup memory. The Gauss–Legendre rings come in mirrored
// pairs (cos β_{n−1−i} = −cos β_i) and Θ_lm(π − β) = (−1)^{l+m}·Θ_lm(β), so both Legendre
// steps run over half the rings: A_i, A_mirror = E ± O (the sums over even and odd l + m),
// and the analysis adds B_i + (−1)^{l+m}·B_mirror. Sizes (checked by the host): l1, l2 ≤ 16,
// n_β·(l1 + l2 + 2) ≤ 759, n_β·(2·lmax_out + 1) ≤ 1035.

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
var<workgroup> rings: array<vec2<f32>, 759>;  // c_k, k ≥ 0, of every ring of x1, then of x2
var<workgroup> products: array<f32, 1035>;    // B

// The complex Fourier coefficient c_k of a ring series whose c_0.. are at rings[base..]:
// the series is real, so c_{−k} = conj(c_k).
fn ring_coefficient(base: u32, k: i32) -> vec2<f32> {
    let c = rings[base + u32(abs(k))];
    return select(c, vec2<f32>(c.x, -c.y), k < 0);
}

// c_k of Σ_m A[m]·Φ_m from (A[k], A[−k]): c_0 = A[0], c_k = (A[k] − i·A[−k])/2.
fn complex_coefficient(a: vec2<f32>, k: i32) -> vec2<f32> {
    return select(0.5 * vec2<f32>(a.x, -a.y), vec2<f32>(a.x, 0.0), k == 0);
}

// (Σ Θ_{d,k}·x_{d,k}, Σ Θ_{d,−k}·x_{d,−k}) over d = first, first + 2, … ≤ l on ring i: one
// parity class of the Legendre sums for A[k] and A[−k].
fn parity_sum(i: u32, base: u32, first: i32, l: i32, k: i32) -> vec2<f32> {
    let row = p.theta_offset + i * (p.l_table + 1u) * (p.l_table + 1u);
    var sum = vec2<f32>(0.0, 0.0);
    for (var d = first; d <= l; d += 2) {
        let cosine = index(d, k);
        let sine = index(d, -k);
        sum += vec2<f32>(tables[row + cosine] * coefficients[base + cosine],
                         tables[row + sine] * coefficients[base + sine]);
    }
    // m = 0 has no sine: index(d, −0) repeats the cosine, which complex_coefficient drops.
    return sum;
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

    // Synthesis in β for a ring and its mirror at once, stored as complex ring coefficients
    // c_k, k ≥ 0: A1 then A2, ring-major. One thread per (ring pair, input, k).
    let h1 = p.l1 + 1u;
    let h2 = p.l2 + 1u;
    let pairs = (p.n_beta + 1u) / 2u;
    let second = pairs * h1;      // first work item of x2
    let rings2 = p.n_beta * h1;   // x2's rings in `rings`
    for (var e = lid; e < pairs * (h1 + h2); e += WORKGROUP) {
        var i: u32;
        var k: i32;
        var l: i32;
        var base: u32;
        var ring: u32;
        var h: u32;
        if e < second {
            i = e / h1;
            k = i32(e % h1);
            l = l1;
            base = 0u;
            ring = 0u;
            h = h1;
        } else {
            i = (e - second) / h2;
            k = i32((e - second) % h2);
            l = l2;
            base = X2;
            ring = rings2;
            h = h2;
        }
        let even = parity_sum(i, base, k, l, k);
        let odd = parity_sum(i, base, k + 1, l, k);
        let mirror = p.n_beta - 1u - i;
        rings[ring + i * h + u32(k)] = complex_coefficient(even + odd, k);
        if mirror != i {
            rings[ring + mirror * h + u32(k)] = complex_coefficient(even - odd, k);
        }
    }
    workgroupBarrier();

    // The product along α, ring by ring, on the rings' Fourier coefficients (ring_product
    // in src/so3/grid.rs): e_k = Σ c1_{k1}·c2_{k−k1}, B[0] = e_0, B[k] = Re e_k,
    // B[−k] = −Im e_k. One thread per (ring, k ≥ 0).
    let wo = 2u * p.lmax_out + 1u;
    for (var e = lid; e < p.n_beta * (p.lmax_out + 1u); e += WORKGROUP) {
        let i = e / (p.lmax_out + 1u);
        let k = i32(e % (p.lmax_out + 1u));
        var product = vec2<f32>(0.0, 0.0);
        for (var k1 = max(-l1, k - l2); k1 <= min(l1, k + l2); k1++) {
            let c1 = ring_coefficient(i * h1, k1);
            let c2 = ring_coefficient(rings2 + i * h2, k - k1);
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
        // Mirrored rings share (w_i/2)·Θ_lm up to the parity sign (−1)^{l+m}.
        let parity = select(1.0, -1.0, ((l + m) & 1) == 1);
        let column = u32(m + lo);
        var sum = 0.0;
        for (var i = 0u; i < p.n_beta / 2u; i++) {
            let mirrored = products[i * wo + column] + parity * products[(p.n_beta - 1u - i) * wo + column];
            sum += tables[p.weighted_offset + i * d_table + lm] * mirrored;
        }
        if p.n_beta % 2u == 1u {
            let middle = p.n_beta / 2u;
            sum += tables[p.weighted_offset + middle * d_table + lm] * products[middle * wo + column];
        }
        out[p.out_offset + row * d_out + lm] = sum;
    }
}
