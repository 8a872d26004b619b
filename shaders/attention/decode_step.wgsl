// One step of recurrent (decoding) linear attention for every head: with the new token's
// q, k, v,
//   S ← S + φ_k(k) vᵀ,   z ← z + φ_k(k),   out = φ_q(q)ᵀS / (φ_q(q)·z + ε_t)
// in O(features · dv) per head: the same function as causal linear attention at position t.
// State per head: [features][dv + 1] (column dv is z), then the key-scale exponent e: for the
// norm-aware map S and z are kept scaled by 2^-3e, e growing with the largest |k| seen
// (see key_max.wgsl; here it is a running maximum, and a larger key rescales the state by an
// exact power of two). The state is double-buffered (read state_in, write state_out) so that
// the workgroups of one head never see each other's writes.
//
// A workgroup owns 256 columns of one head; features go through workgroup memory 256 at a time.

// #include "util/workgroup.inc.wgsl"

struct Params {
    heads: u32,
    dk: u32,
    dv: u32,
    features: u32,
    norm_aware: u32,
    count: u32,       // keys attended, this token included
    col_blocks: u32,
    eps: f32,
}

const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
// #include "attention/qkv.inc.wgsl"
@group(0) @binding(4) var<storage, read> state_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> state_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> largest_q: array<f32, WORKGROUP>;
var<workgroup> ssq_q: array<f32, WORKGROUP>;
var<workgroup> largest_k: array<f32, WORKGROUP>;
var<workgroup> phi_q: array<f32, WORKGROUP>;
var<workgroup> phi_k: array<f32, WORKGROUP>;
// #include "util/workgroup_sum.inc.wgsl"

// #include "attention/features.inc.wgsl"

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.heads * p.col_blocks {
        return;
    }
    let head = group / p.col_blocks;
    let c = (group % p.col_blocks) * WORKGROUP + lid; // column of S; c == dv is z
    let width = p.dv + 1u;
    let state_len = p.features * width + 1u;
    let base = head * state_len;

    // ‖q‖ (as max and scaled sum of squares) and the largest finite |k| of this token.
    var mq = 0.0;
    var sq = 0.0;
    var mk = 0.0;
    for (var d = lid; d < p.dk; d += WORKGROUP) {
        let a = abs(read_q(head * p.dk + d));
        let one = ssq_of(a);
        let parts = combine_ssq(mq, sq, one.x, one.y);
        mq = parts.x;
        sq = parts.y;
        let b = abs(read_k(head * p.dk + d));
        if (bitcast<u32>(b) & 0x7fffffffu) < 0x7f800000u && b > mk {
            mk = b;
        }
    }
    largest_q[lid] = mq;
    ssq_q[lid] = sq;
    largest_k[lid] = mk;
    workgroupBarrier();
    for (var w = WORKGROUP / 2u; w > 0u; w /= 2u) {
        if lid < w {
            let parts = combine_ssq(largest_q[lid], ssq_q[lid], largest_q[lid + w], ssq_q[lid + w]);
            largest_q[lid] = parts.x;
            ssq_q[lid] = parts.y;
            largest_k[lid] = max(largest_k[lid], largest_k[lid + w]);
        }
        workgroupBarrier();
    }
    let q_largest = largest_q[0];
    let q_root = sqrt(ssq_q[0]);
    let power = 3.0 * (0.5 + tanh(min(q_largest * q_root, 20.0)));

    // The key scale 2^-e: e only grows; the old state is rescaled by 2^-3(e_new − e_old).
    let e_old = i32(state_in[base + state_len - 1u]);
    var e_new = e_old;
    if p.norm_aware == 1u && largest_k[0] > 1.0 {
        e_new = max(e_old, frexp(largest_k[0]).exp);
    }
    let factor = ldexp(1.0, 3 * (e_old - e_new));
    let scale = ldexp(1.0, -e_new);

    var x = 1.0; // column dv of [v, 1] accumulates z
    if c < p.dv {
        x = read_v(head * p.dv + c);
    }
    var numerator = 0.0;
    var denominator_part = 0.0;
    for (var f0 = 0u; f0 < p.features; f0 += WORKGROUP) {
        let f = f0 + lid;
        var a = 0.0;
        var b = 0.0;
        if f < p.features {
            let d = f % p.dk;
            let xq = read_q(head * p.dk + d);
            let xk = read_k(head * p.dk + d);
            if p.norm_aware == 0u {
                a = elu_plus_one(xq);
                b = elu_plus_one(xk);
            } else {
                let yq = select(-xq, xq, f < p.dk);
                if q_largest > 0.0 && yq > 0.0 {
                    a = pow(yq / q_largest / q_root, power);
                } else if is_nan(yq) {
                    a = yq;
                }
                let yk = relu(select(-xk, xk, f < p.dk) * scale);
                b = yk * yk * yk;
            }
            denominator_part += a * (factor * state_in[base + f * width + p.dv] + b);
        }
        phi_q[lid] = a;
        phi_k[lid] = b;
        workgroupBarrier();
        if c <= p.dv {
            let slab = min(WORKGROUP, p.features - f0);
            for (var j = 0u; j < slab; j++) {
                let i = base + (f0 + j) * width + c;
                let s = factor * state_in[i] + phi_k[j] * x;
                state_out[i] = s;
                numerator += phi_q[j] * s;
            }
        }
        workgroupBarrier();
    }

    let denominator = workgroup_sum(lid, denominator_part);
    if c < p.dv {
        let eps = select(p.eps, p.eps * f32(p.count), p.norm_aware == 1u) * scale * scale * scale;
        out[head * p.dv + c] = numerator / max(denominator + eps, 1.1754944e-38);
    }
    if c == 0u {
        state_out[base + state_len - 1u] = f32(e_new);
    }
}
