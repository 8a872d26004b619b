// Linear attention backward, last pass: the gradients of q and k from those of their
// features (d_phi_q = ∂L/∂φ_q(q), d_phi_k = ∂L/∂φ_k(k·σ)), one row per (head, position).
//   elu+1:       ∂x = d·(1 if x > 0 else eˣ)
//   keys:        ∂k_g = 3σ·(d⁺_g·relu(k_g σ)² − d⁻_g·relu(−k_g σ)²)
//   queries:     with r = ‖q‖, u_f = relu(±q)/r, a_f = u_f^p, p = 3·(0.5 + tanh r),
//                ∂q_g = (±p·d_g·u_g^(p−1) − (q_g/r)·(p·Σ_f d_f a_f − 3·sech²(r)·r·Σ_f d_f a_f ln u_f)) / r
// as reference::query_features_backward; 0 for a zero query. The sums over f are reduced
// over the row's 32 lanes.

// #include "util/workgroup.inc.wgsl"

// #include "attention/features.inc.wgsl"

struct Params {
    rows: u32,
    n: u32,
    dk: u32,
    features: u32,
    norm_aware: u32,
    q_offset: u32,
    k_offset: u32,
    dq_offset: u32,
    dk_offset: u32,
    scale_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

const ROWS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
fn read_q(i: u32) -> f32 { return q[i]; }
@group(0) @binding(2) var<storage, read> k: array<f32>;
fn read_k(i: u32) -> f32 { return k[i]; }
@group(0) @binding(3) var<storage, read> key_max: array<u32>;
@group(0) @binding(4) var<storage, read> d_phi_q: array<f32>;
@group(0) @binding(5) var<storage, read> d_phi_k: array<f32>;
@group(0) @binding(6) var<storage, read_write> dq: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;

// #include "attention/row_lanes.inc.wgsl"

// #include "attention/row_norm.inc.wgsl"

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group * ROWS >= p.rows {
        return;
    }
    let row = group * ROWS + lid / ROW_LANES;
    let lane = lid % ROW_LANES;
    let valid = row < p.rows;
    let q_row = p.q_offset + row * p.dk;
    let k_row = p.k_offset + row * p.dk;
    let d_row = row * p.features;

    if p.norm_aware == 0u {
        if valid {
            for (var g = lane; g < p.dk; g += ROW_LANES) {
                dq[p.dq_offset + row * p.dk + g] = d_phi_q[d_row + g] * elu_slope(read_q(q_row + g));
                dk[p.dk_offset + row * p.dk + g] = d_phi_k[d_row + g] * elu_slope(read_k(k_row + g));
            }
        }
        return;
    }

    let norm = row_query_norm(valid, q_row, lid);
    // Σ_f d_f a_f and Σ_f d_f a_f ln u_f over the active features.
    var t1 = 0.0;
    var t2 = 0.0;
    if valid && norm.largest > 0.0 {
        for (var f = lane; f < p.features; f += ROW_LANES) {
            let x = read_q(q_row + f % p.dk);
            let y = select(-x, x, f < p.dk);
            if y > 0.0 {
                let u = y / norm.largest / norm.root;
                let a = pow(u, norm.power);
                t1 += d_phi_q[d_row + f] * a;
                t2 += d_phi_q[d_row + f] * a * log(u);
            }
        }
    }
    let sums = row_sums(lid, vec2<f32>(t1, t2));
    t1 = sums.x;
    t2 = sums.y;
    if !valid {
        return;
    }

    let r = norm.largest * norm.root;
    let th = tanh(min(r, 20.0));
    let sech2 = 1.0 - th * th;
    // sech² is 0 in f32 long before r could be inf, and 0·inf would be NaN.
    let tail = select(0.0, 3.0 * sech2 * r * t2, sech2 > 0.0);
    let scale = power_of_two_below(bitcast<f32>(key_max[p.scale_offset + row / p.n]));
    for (var g = lane; g < p.dk; g += ROW_LANES) {
        let x = read_q(q_row + g);
        var grad = 0.0;
        if norm.largest > 0.0 {
            let u = abs(x) / norm.largest / norm.root;
            var direct = 0.0;
            if x > 0.0 {
                direct = norm.power * d_phi_q[d_row + g] * pow(u, norm.power - 1.0);
            } else if x < 0.0 {
                direct = -norm.power * d_phi_q[d_row + p.dk + g] * pow(u, norm.power - 1.0);
            }
            let unit = x / norm.largest / norm.root;
            grad = (direct - unit * (norm.power * t1 - tail)) / norm.largest / norm.root;
        }
        grad = select(grad, x, is_nan(x));
        dq[p.dq_offset + row * p.dk + g] = grad;

        let y = read_k(k_row + g) * scale;
        let pos = relu(y);
        let neg = relu(-y);
        let slope = d_phi_k[d_row + g] * pos * pos - d_phi_k[d_row + p.dk + g] * neg * neg;
        dk[p.dk_offset + row * p.dk + g] = 3.0 * slope * scale;
    }
}
