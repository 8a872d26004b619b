// Largest finite |k| of every head, as the bits of a non-negative f32 (which order like u32),
// for the norm-aware map's key scale. The cube in φ_k(k) = relu(±k)³ overflows f32 from
// |k| ≈ 7e12 (and its sums sooner); the kernels instead cube k·2^-e with 2^-e ≤ 1/max|k|,
// an exact power of two that cancels between numerator and denominator (only ε moves, to
// ε·2^-3e). The buffer must start zeroed. NaN and ±inf are skipped here: they reach the
// output through the attention sums themselves, in the rows they touch.

// #include "util/workgroup.inc.wgsl"

struct Params {
    heads: u32,
    head_len: u32,      // n·dk elements per head
    groups_per_head: u32,
    k_offset: u32,
    first_head: u32,    // index of this launch's first head in key_max
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WORKGROUP: u32 = 256u;
const PER_THREAD: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
fn read_k(i: u32) -> f32 { return k[i]; }
@group(0) @binding(2) var<storage, read_write> key_max: array<atomic<u32>>;

var<workgroup> partial: array<f32, WORKGROUP>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.heads * p.groups_per_head {
        return;
    }
    let head = group / p.groups_per_head;
    let first = (group % p.groups_per_head) * WORKGROUP * PER_THREAD;
    var m = 0.0;
    for (var t = 0u; t < PER_THREAD; t++) {
        let i = first + t * WORKGROUP + lid;
        if i < p.head_len {
            let a = abs(read_k(p.k_offset + head * p.head_len + i));
            // NaN (tested by its bits: compilers may fold x != x) and inf are skipped.
            let finite = (bitcast<u32>(a) & 0x7fffffffu) < 0x7f800000u;
            if finite && a > m {
                m = a;
            }
        }
    }
    partial[lid] = m;
    workgroupBarrier();
    for (var width = WORKGROUP / 2u; width > 0u; width /= 2u) {
        if lid < width {
            partial[lid] = max(partial[lid], partial[lid + width]);
        }
        workgroupBarrier();
    }
    if lid == 0u {
        atomicMax(&key_max[p.first_head + head], bitcast<u32>(partial[0]));
    }
}
