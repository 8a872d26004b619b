// The body of the spherical-grid Gaunt product, shared by gaunt_grid.wgsl (a row's stages in
// workgroup memory) and gaunt_grid_global.wgsl (in a storage scratch slice per row, for
// products too large for workgroup memory). The including file declares where a row's
// stages live: coefficient/set_coefficient (x1 then x2 at x2_place()), ring/set_ring (complex
// ring coefficients), product/set_product, begin_row (called first with the row) and sync
// (a barrier that orders those stores), binds x1, x2 (each with its read_ loader), tables
// and out after the uniform `p`, and includes so3/harmonic_index.inc.wgsl.

// #include "util/workgroup.inc.wgsl"

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
    scratch_stride: u32, // gaunt_grid_global.wgsl: f32s of scratch per row (0 here)
    rings_at: u32,       // …where a row's rings start in it, then its products
    products_at: u32,
}

const WORKGROUP: u32 = 64u; // lavapipe pays per invocation at every barrier; a GPU keeps 64-wide groups busy

@group(0) @binding(0) var<uniform> p: Params;
// The complex Fourier coefficient c_k of a ring series whose c_0.. are at rings[base..]:
// the series is real, so c_{−k} = conj(c_k).
fn ring_coefficient(base: u32, k: i32) -> vec2<f32> {
    let c = ring(base + u32(abs(k)));
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
        sum += vec2<f32>(tables[row + cosine] * coefficient(base + cosine),
                         tables[row + sine] * coefficient(base + sine));
    }
    // m = 0 has no sine: index(d, −0) repeats the cosine, which complex_coefficient drops.
    return sum;
}

// c_k of a ring of degree l whose c_0.. are at rings[first..], 0 past the degree.
fn ring_coefficient_or_zero(first: u32, l: i32, k: i32) -> vec2<f32> {
    let c = ring_coefficient(first, clamp(k, -l, l));
    return select(vec2<f32>(0.0, 0.0), c, abs(k) <= l);
}

fn complex_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row >= p.rows {
        return;
    }
    begin_row(row);
    let x2_row = select(row, row / p.channels, p.broadcast == 1u);
    let l1 = i32(p.l1);
    let l2 = i32(p.l2);
    let lo = i32(p.lmax_out);
    let d1 = (p.l1 + 1u) * (p.l1 + 1u);
    let d2 = (p.l2 + 1u) * (p.l2 + 1u);
    let d_out = (p.lmax_out + 1u) * (p.lmax_out + 1u);
    let d_table = (p.l_table + 1u) * (p.l_table + 1u);
    for (var e = lid; e < d1; e += WORKGROUP) {
        set_coefficient(e, read_x1(p.x1_offset + row * d1 + e));
    }
    for (var e = lid; e < d2; e += WORKGROUP) {
        set_coefficient(x2_place() + e, read_x2(p.x2_offset + x2_row * d2 + e));
    }
    sync();

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
            base = x2_place();
            ring = rings2;
            h = h2;
        }
        let even = parity_sum(i, base, k, l, k);
        let odd = parity_sum(i, base, k + 1, l, k);
        let mirror = p.n_beta - 1u - i;
        set_ring(ring + i * h + u32(k), complex_coefficient(even + odd, k));
        if mirror != i {
            set_ring(ring + mirror * h + u32(k), complex_coefficient(even - odd, k));
        }
    }
    sync();

    // The product along α on the rings' Fourier coefficients (ring_product in
    // src/so3/products/grid/plan.rs): e_k = Σ c1_{k1}·c2_{k−k1}, B[0] = e_0, B[k] = Re e_k, B[−k] = −Im e_k.
    // One thread per mirrored ring pair (i, i') and pair of outputs (k, k + 1): c2_{k+1−k1} is
    // the previous term's c2_{k−k1}, so each load serves two products. Stored as the
    // pair's sum and difference, B_i ± B_i', which is what the analysis weighs (a middle
    // ring is its own mirror: both are B_i).
    let wo = 2u * p.lmax_out + 1u;
    let blocks = p.lmax_out / 2u + 1u;
    for (var e = lid; e < pairs * blocks; e += WORKGROUP) {
        let i = e / blocks;
        let k = 2 * i32(e % blocks);
        let mirror = p.n_beta - 1u - i;
        let rings1 = array<u32, 2>(i * h1, mirror * h1);
        let rings2_of = array<u32, 2>(rings2 + i * h2, rings2 + mirror * h2);
        var low = array<vec2<f32>, 2>(vec2<f32>(0.0), vec2<f32>(0.0));  // e_k, ring i then i'
        var high = array<vec2<f32>, 2>(vec2<f32>(0.0), vec2<f32>(0.0)); // e_{k+1}
        var previous = array<vec2<f32>, 2>(vec2<f32>(0.0), vec2<f32>(0.0)); // c2_{k+1−k1}
        let start = max(-l1, k - l2);
        for (var r = 0; r < 2; r++) {
            previous[r] = ring_coefficient_or_zero(rings2_of[r], l2, k + 1 - start);
        }
        for (var k1 = start; k1 <= min(l1, k + 1 + l2); k1++) {
            for (var r = 0; r < 2; r++) {
                let c1 = ring_coefficient_or_zero(rings1[r], l1, k1);
                let c2 = ring_coefficient_or_zero(rings2_of[r], l2, k - k1);
                low[r] += complex_mul(c1, c2);
                high[r] += complex_mul(c1, previous[r]);
                previous[r] = c2;
            }
        }
        let sum_at = i * 2u * wo;
        let difference_at = sum_at + wo;
        for (var t = 0; t < 2; t++) {
            let kt = k + t;
            if kt > lo {
                break;
            }
            let a = select(low[0], high[0], t == 1);
            let b = select(low[1], high[1], t == 1);
            let plus = select(a + b, a, mirror == i);
            let minus = select(a - b, a, mirror == i);
            set_product(sum_at + u32(kt + lo), plus.x);
            set_product(difference_at + u32(kt + lo), minus.x);
            if kt > 0 {
                set_product(sum_at + u32(lo - kt), -plus.y);
                set_product(difference_at + u32(lo - kt), -minus.y);
            }
        }
    }
    sync();

    // Analysis in β.
    for (var lm = lid; lm < d_out; lm += WORKGROUP) {
        let lm_pair = degree_order(lm);
        let l = lm_pair.x;
        let m = lm_pair.y;
        // Mirrored rings share (w_i/2)·Θ_lm up to the parity sign (−1)^{l+m}: weigh the
        // pair's sum (even l + m) or difference (odd). The middle ring's "pair" is itself,
        // stored as B in both and weighed once.
        let column = u32(m + lo) + select(0u, wo, ((l + m) & 1) == 1);
        var sum = 0.0;
        for (var i = 0u; i < pairs; i++) {
            sum += tables[p.weighted_offset + i * d_table + lm] * product(i * 2u * wo + column);
        }
        out[p.out_offset + row * d_out + lm] = sum;
    }
}
