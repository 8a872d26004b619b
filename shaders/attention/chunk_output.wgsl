// The output of the chunked product of chunked.inc.wgsl for a chunk of 32 rows of a head and
// 32 columns:
//   out_i = x_iᵀ S_chunk + Σ_{j ∈ chunk ∩ J(i)} (x_i·y_j) w_j
// with S_chunk from state_scan.wgsl: all rows (mode 0, no block term), the rows before the
// chunk (mode 1) or after it (mode 2); the masked block covers the chunk's own rows. As
// linear_output.wgsl without feature map or normaliser. Masked entries are dropped, not
// multiplied by 0, so that a NaN in a row outside J(i) stays out of out_i.

// #include "attention/chunked.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> x_tile: array<f32, 1024>; // [row][inner]
var<workgroup> y_tile: array<f32, 1024>; // [key][inner], then A [row][key]
var<workgroup> s_tile: array<f32, 1024>; // S [inner][column], then w [key][column]

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.total_groups {
        return;
    }
    let chunks = (p.n + TILE - 1u) / TILE;
    let ct = group % p.column_tiles;
    let chunk = (group / p.column_tiles) % chunks;
    let head = group / (p.column_tiles * chunks);
    let row = lid / LANES;
    let lane = lid % LANES;
    let i = chunk * TILE + row;
    let masked = p.mode != 0u;
    let state_base = (head * p.splits + select(0u, chunk, masked)) * p.inner * p.columns;

    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var block = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // A[row][lane + 8t]
    for (var it = 0u; it < p.inner_tiles; it++) {
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let d = it * TILE + e % TILE;
            let r = chunk * TILE + e / TILE; // row of x and of y alike
            var a = 0.0;
            if r < p.n && d < p.inner {
                a = x[(head * p.n + r) * p.x_stride + d];
            }
            x_tile[e] = a;
            let sd = it * TILE + e / TILE;
            let c = ct * TILE + e % TILE;
            var s = 0.0;
            if sd < p.inner && c < p.columns {
                s = state[state_base + sd * p.columns + c];
            }
            s_tile[e] = s;
            if masked {
                var b = 0.0;
                if r < p.n && d < p.inner {
                    b = y[(head * p.n + r) * p.y_stride + d];
                }
                y_tile[e] = b;
            }
        }
        workgroupBarrier();
        for (var d = 0u; d < TILE; d++) {
            let a = x_tile[row * TILE + d];
            for (var t = 0u; t < 4u; t++) {
                acc[t] += a * s_tile[d * TILE + lane + LANES * t];
            }
            if masked {
                for (var t = 0u; t < 4u; t++) {
                    block[t] += a * y_tile[(lane + LANES * t) * TILE + d];
                }
            }
        }
        workgroupBarrier();
    }

    if masked {
        for (var t = 0u; t < 4u; t++) {
            y_tile[row * TILE + lane + LANES * t] = block[t];
        }
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let j = chunk * TILE + e / TILE;
            let c = ct * TILE + e % TILE;
            var b = 0.0;
            if j < p.n && c < p.columns {
                b = w[(head * p.n + j) * p.w_stride + c];
            }
            s_tile[e] = b;
        }
        workgroupBarrier();
        let causal = p.mode == 1u;
        for (var key = 0u; key < TILE; key++) {
            let keep = select(key >= row, key <= row, causal);
            let a = y_tile[row * TILE + key];
            for (var t = 0u; t < 4u; t++) {
                acc[t] += select(0.0, a * s_tile[key * TILE + lane + LANES * t], keep);
            }
        }
    }

    if i < p.n {
        for (var t = 0u; t < 4u; t++) {
            let c = ct * TILE + lane + LANES * t;
            if c < p.columns {
                out[p.out_offset + (head * p.n + i) * p.out_stride + c] = acc[t];
            }
        }
    }
}
