// The body of dots.wgsl and dots_vec4.wgsl: parameters, partial sums and the entry point.
// The includer binds R (1) and x (2) in its own view and defines
//   alias Lane = f32 or vec4<f32>;  const WIDTH: u32 = coordinates per Lane;
//   fn r_load(index) -> Lane, fn x_load(index) -> Lane   (indices in Lanes)
//   fn lane_total(a: Lane) -> f32                         (the sum of a Lane's coordinates)
//
// A workgroup covers 8 rows × one chunk. Each lane walks the chunk WORKGROUP Lanes apart and
// covers all 8 rows of its coordinates, so that one load of x serves 8 rows. Then the
// workgroup adds its lanes per row: first the 8 lane groups, then 32 lanes by one lane.

struct Params {
    rows: u32,         // rows of R in this launch
    d: u32,
    vectors: u32,      // k
    chunk_len: u32,    // a multiple of WORKGROUP · WIDTH
    chunks: u32,
    row_blocks: u32,   // ceil(rows / 8)
    row0: u32,         // index of this launch's first row among all rows
    all_rows: u32,     // rows of the partial sums
    r_offset: u32,
    x_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

var<workgroup> row_lanes: array<f32, 2048>; // [row][lane]
var<workgroup> row_groups: array<f32, 256>; // [row][lane % 32]

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.row_blocks * p.chunks {
        return;
    }
    let chunk = group / p.row_blocks;
    let i0 = (group % p.row_blocks) * 8u;
    let first = chunk * p.chunk_len / WIDTH;
    let last = min(p.d, (chunk + 1u) * p.chunk_len) / WIDTH;
    // Rows past the last read the last row, and their sums are dropped.
    var r_row: array<u32, 8>;
    for (var k = 0u; k < 8u; k++) {
        r_row[k] = (p.r_offset + min(i0 + k, p.rows - 1u) * p.d) / WIDTH;
    }
    for (var v = 0u; v < p.vectors; v++) {
        let x_row = (p.x_offset + v * p.d) / WIDTH;
        var acc: array<Lane, 8>;
        for (var t = first + lid; t < last; t += WORKGROUP) {
            let xt = x_load(x_row + t);
            for (var k = 0u; k < 8u; k++) {
                acc[k] = fma(r_load(r_row[k] + t), xt, acc[k]);
            }
        }
        for (var k = 0u; k < 8u; k++) {
            row_lanes[k * WORKGROUP + lid] = lane_total(acc[k]);
        }
        workgroupBarrier();
        // Lane lid adds row lid / 32's lanes lid % 32 + 32g over the 8 groups g.
        let k = lid / 32u;
        var sum = 0.0;
        for (var g = 0u; g < 8u; g++) {
            sum += row_lanes[k * WORKGROUP + g * 32u + lid % 32u];
        }
        row_groups[lid] = sum;
        workgroupBarrier();
        if lid % 32u == 0u && i0 + k < p.rows {
            var total = 0.0;
            for (var l = 0u; l < 32u; l++) {
                total += row_groups[lid + l];
            }
            partial[(v * p.chunks + chunk) * p.all_rows + p.row0 + i0 + k] = total;
        }
        workgroupBarrier();
    }
}
