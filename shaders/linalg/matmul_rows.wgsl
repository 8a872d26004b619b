// Register-blocked GEMM without workgroup memory, for devices that run invocations as the
// SIMD lanes of a CPU (lavapipe/llvmpipe): C = op(A) · op(B) (+ C when accumulating), with
// the uniforms, operands, split-K slices and edges of the tiled kernel (matmul.inc.wgsl).
//
// A workgroup of THREADS lanes owns ROWS rows × 4·THREADS·VECS columns of C. Lane t holds
// the vec4 columns 4·(t + j·THREADS), j < VECS, of each of the ROWS rows: ROWS·VECS vec4
// accumulators. A step of k reads VECS vec4 of op(B) per lane and one value of op(A) per
// row, the same in every lane, so each value of B feeds ROWS FMAs and no barrier is needed.
//
// Why this shape: on lavapipe (Mesa 22.3) a load costs about as much as tens of FMAs, whether
// or not its address differs between lanes, and workgroup memory is no faster than a buffer,
// so what counts is FMAs per load; accumulators that spill go to the stack, which costs less
// (measured on lavapipe at 512³: 64×64 workgroup tiles 0.9 GFLOP/s; 8 rows × 4 columns per
// lane 0.9; 32 × 32 per lane 5.4; with op(A) as vec4s, four steps written out, 7.5). On a GPU the same shape spills to slow memory: the tiled kernel is
// its default, and the tuner (src/gpu/tune.rs) measures both where asked.
//
// The lines that name an accumulator are written by the host for each size at the
// `// #rows:` marks (src/linalg/rows.rs): WGSL cannot size a private array by an override
// constant, and lavapipe does not unroll loops over large private arrays (the same kernel
// with loops over `array<vec4<f32>, 256>` measured 1.4 GFLOP/s). As stored here, with no
// rows, the file validates on its own.

// #include "util/workgroup.inc.wgsl"

// #include "linalg/gemm_operands.inc.wgsl"

// #rows: bindings

// op(A)'s binding again, as vec4s (load_a4): the kernel's last binding, 5 where the host
// adds a binding 4 (the row squares, E).
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;

override THREADS: u32 = 16u;
override ROWS: u32 = 1u;
override VECS: u32 = 1u;

// op(A)[row, kk], 0 past the last row.
fn load_a(row: u32, kk: u32) -> f32 {
    if row < p.m {
        return read_a(p.a_offset + row * p.a_stride_m + kk * p.a_stride_k);
    }
    return 0.0;
}

// op(B)[kk, col .. col+3], 0 past the last column. `inside`: the workgroup's columns all lie
// inside C (the same for every lane), so no column needs its own check.
fn load_b4(kk: u32, col: u32, inside: bool) -> vec4<f32> {
    let at = p.b_offset + kk * p.b_stride_k + col * p.b_stride_n;
    let s = p.b_stride_n;
    if inside {
        return vec4<f32>(read_b(at), read_b(at + s), read_b(at + 2u * s), read_b(at + 3u * s));
    }
    var v = vec4<f32>(0.0);
    for (var q = 0u; q < 4u; q++) {
        if col + q < p.n {
            v[q] = read_b(at + q * s);
        }
    }
    return v;
}

// op(A)[row, kk .. kk+3] through `a4`, 0 past the last row. Only where the host set
// p.a_vec4: A is f32 and row-major, its rows and this slice of k start at multiples of 4.
fn load_a4(row: u32, kk: u32) -> vec4<f32> {
    if row < p.m {
        return a4[(p.a_offset + row * p.a_stride_m + kk) / 4u];
    }
    return vec4<f32>(0.0);
}

@compute @workgroup_size(THREADS, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = workgroup_index(wid, nwg);
    if index >= p.total_tiles * p.splits {
        return;
    }
    let slice = slice_of(index);
    let split = slice.split;
    let tile = slice.tile;
    let k_begin = slice.k_begin;
    let k_end = slice.k_end;
    let row0 = (tile / p.tiles_n) * ROWS;
    let col0 = (tile % p.tiles_n) * (4u * THREADS * VECS);
    // Row squares: by one lane of the first column tile (each row once).
    let takes_squares = p.squares != 0u && col0 == 0u && lane == 0u;
    // Whether every column of the tile lies inside C: then op(B)'s loads skip their checks.
    let inside = col0 + 4u * THREADS * VECS <= p.n;
    // #rows: accumulators
    var kk = k_begin;
    // One uniform vec4 load of op(A) per row for four steps of k, where the layout allows:
    // on lavapipe a load costs about the same whatever its width.
    if p.a_vec4 != 0u {
        for (; kk + 4u <= k_end; kk += 4u) {
            // #rows: four k steps
        }
    }
    for (; kk < k_end; kk++) {
        // #rows: k step
    }
    // #rows: finish
}
