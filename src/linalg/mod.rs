//! Dense linear algebra the kernel families share: a tiled, register-blocked GEMM.
//!
//! ```
//! use wgkernels::{linalg, Context};
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?;
//! let x = ctx.tensor(&[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let w = ctx.tensor(&[1.0, 1.0, 0.0, 2.0], &[2, 2])?;
//! let y = linalg::matmul(&ctx, &x, &w, false, true)?; // x · wᵀ
//! assert_eq!(y.to_vec()?, vec![3.0, 4.0, 7.0, 8.0]);
//! # Ok(())
//! # }
//! ```

pub(crate) mod elementwise;
pub(crate) mod reduce;
pub mod reference;
mod shifted;

pub(crate) use shifted::shifted_row_squares;

use crate::gpu::{shader, Bound, GpuDevice, Shader};
use crate::{op, Context, Error, Result, Tensor};

/// Dimensions of `C[m,n] = op(A)[m,k] · op(B)[k,n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// `A` is stored `[k, m]`.
    pub transpose_a: bool,
    /// `B` is stored `[n, k]`.
    pub transpose_b: bool,
}

impl Gemm {
    /// The dimensions of `op(a) · op(b)` for stored shapes `a` and `b`; `Err` unless both are
    /// 2-D with matching inner dimensions.
    pub fn of(
        op: &'static str,
        a: &[usize],
        b: &[usize],
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Gemm> {
        let (&[ar, ac], &[br, bc]) = (a, b) else {
            return Err(Error::Shape {
                op,
                message: format!("`a` {a:?} and `b` {b:?} must both be 2-D"),
            });
        };
        let (m, k) = if transpose_a { (ac, ar) } else { (ar, ac) };
        let (kb, n) = if transpose_b { (bc, br) } else { (br, bc) };
        if k != kb {
            return Err(Error::Shape {
                op,
                message: format!(
                    "inner dimensions differ: op(a) is [{m}, {k}] (a {a:?}, transpose_a = \
                     {transpose_a}) but op(b) is [{kb}, {n}] (b {b:?}, transpose_b = {transpose_b})"
                ),
            });
        }
        Ok(Gemm {
            m,
            k,
            n,
            transpose_a,
            transpose_b,
        })
    }

    /// Multiply-adds performed: `m·n·k`.
    pub fn fmas(&self) -> u64 {
        (self.m * self.n * self.k) as u64
    }

    /// Where `op(A)[i, kk]` is stored in A.
    fn a_index(&self, i: usize, kk: usize) -> usize {
        let (stride_m, stride_k) = self.a_strides();
        i * stride_m + kk * stride_k
    }

    /// Where `op(B)[kk, j]` is stored in B.
    fn b_index(&self, kk: usize, j: usize) -> usize {
        let (stride_k, stride_n) = self.b_strides();
        kk * stride_k + j * stride_n
    }

    /// `(stride of i, stride of k)` of `op(A)` in A: how the shaders express the transpose.
    fn a_strides(&self) -> (usize, usize) {
        if self.transpose_a {
            (1, self.m)
        } else {
            (self.k, 1)
        }
    }

    /// `(stride of k, stride of j)` of `op(B)` in B.
    fn b_strides(&self) -> (usize, usize) {
        if self.transpose_b {
            (1, self.k)
        } else {
            (self.n, 1)
        }
    }
}

/// `C = op(A) · op(B)` with a tiled, register-blocked kernel: `C[i,j] = Σ_k op(A)[i,k]·op(B)[k,j]`,
/// where `op(A) = Aᵀ` when `transpose_a` (A stored `[k,m]`) and likewise for B.
///
/// A and B may be stored as f16 or bf16 ([`DType`](crate::DType)); they are widened as they
/// are read and accumulated in f32, and C is f32.
///
/// Matrices larger than one storage binding are split into blocks of rows or columns (and of
/// k, accumulating) that fit. On the CPU path this is [`reference::matmul`] rounded to f32.
pub fn matmul(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor> {
    run(ctx, "matmul", &TILED, a, b, transpose_a, transpose_b)
}

/// [`matmul`] and the row sums of squares of `op(A)`, `squares[i] = Σ_k op(A)[i,k]²` (`[m]`),
/// in one pass over A: the squares are summed from the A tiles the GEMM already holds in
/// workgroup memory. DoRA's factored norm takes `‖W_j‖²` and `U = W·Aᵀ` from it.
pub(crate) fn matmul_row_squares(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<[Tensor; 2]> {
    const OP: &str = "matmul_row_squares";
    ctx.check_owns(OP, "a", a)?;
    ctx.check_owns(OP, "b", b)?;
    let g = Gemm::of(OP, a.shape(), b.shape(), transpose_a, transpose_b)?;
    let cpu = || {
        let squares = reference::row_squares(a.host(), g);
        Ok([reference::matmul(a.host(), b.host(), g), squares])
    };
    op::run(ctx, OP, [&[g.m, g.n], &[g.m]], cpu, |gpu, [c, squares]| {
        let kernel = &TILED_ROW_SQUARES;
        launch(
            gpu,
            OP,
            kernel,
            g,
            [a, b],
            c.buffer(),
            Some(squares.buffer()),
        )
    })
}

/// The same product with one thread per output and no data reuse: the baseline that
/// [`matmul`] is benchmarked against.
pub fn matmul_naive(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor> {
    run(ctx, "matmul_naive", &NAIVE, a, b, transpose_a, transpose_b)
}

/// A GEMM shader and the edge of the square tile of C that one workgroup computes.
struct GemmKernel {
    shader: Shader,
    tile: usize,
}

const TILED: GemmKernel = GemmKernel {
    shader: shader!("linalg/matmul.wgsl"),
    tile: 64,
};
const TILED_ROW_SQUARES: GemmKernel = GemmKernel {
    shader: shader!("linalg/matmul_row_squares.wgsl"),
    tile: 64,
};
const NAIVE: GemmKernel = GemmKernel {
    shader: shader!("linalg/matmul_naive.wgsl"),
    tile: 16,
};
/// K-step of the tiled kernel; k-blocks are cut at multiples of it.
const K_STEP: usize = 16;

fn run(
    ctx: &Context,
    op: &'static str,
    kernel: &GemmKernel,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor> {
    ctx.check_owns(op, "a", a)?;
    ctx.check_owns(op, "b", b)?;
    let g = Gemm::of(op, a.shape(), b.shape(), transpose_a, transpose_b)?;
    let [c] = op::run(
        ctx,
        op,
        [&[g.m, g.n]],
        || Ok([reference::matmul(a.host(), b.host(), g)]),
        |gpu, [c]| launch(gpu, op, kernel, g, [a, b], c.buffer(), None),
    )?;
    Ok(c)
}

/// Uniforms of both GEMM shaders.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    tiles_n: u32,
    a_offset: u32,
    a_stride_m: u32,
    a_stride_k: u32,
    accumulate: u32,
    b_offset: u32,
    b_stride_k: u32,
    b_stride_n: u32,
    total_tiles: u32,
    c_offset: u32,
    c_stride_m: u32,
    squares_offset: u32,
    squares: u32,
    splits: u32,
    k_chunk: u32,
    c_split_stride: u32,
    squares_split_stride: u32,
    e_offset: u32,
    scale: f32,
    _pad: [u32; 2],
}

/// Block sizes `(bm, bn, bk)` such that every operand's window fits one binding.
///
/// A row-major block spans (rows of the block) × (full stored row length) elements of its
/// buffer, so each operand caps the block along its stored row dimension: C caps bm; A caps
/// bm (or bk when transposed); B caps bk (or bn when transposed).
fn plan_blocks(op: &'static str, g: Gemm, tile: usize, max_elements: u64) -> Result<[usize; 3]> {
    let cap = |arg: &'static str, row_len: usize, rows: usize, step: usize| -> Result<usize> {
        let fit = (max_elements / row_len as u64) as usize;
        if fit == 0 {
            return Err(Error::TooLarge {
                op,
                arg,
                bytes: row_len as u64 * 4,
                limit: max_elements * 4,
            });
        }
        // Cut at whole tiles where the binding allows, so blocks do not add partial tiles.
        Ok(if fit >= rows || fit < step {
            fit.min(rows)
        } else {
            fit - fit % step
        })
    };
    let mut bm = cap("output", g.n, g.m, tile)?;
    let (mut bn, mut bk) = (g.n, g.k);
    if g.transpose_a {
        bk = bk.min(cap("a", g.m, g.k, K_STEP)?);
    } else {
        bm = bm.min(cap("a", g.k, g.m, tile)?);
    }
    if g.transpose_b {
        bn = bn.min(cap("b", g.k, g.n, tile)?);
    } else {
        bk = bk.min(cap("b", g.n, g.k, K_STEP)?);
    }
    Ok([bm, bn, bk])
}

/// Split-K slices are at least this long, so that a slice's workgroup reads ≥ 16 k-steps of
/// A and B for each partial tile it writes: the partials then cost at most
/// 2·m·n/(256·(m+n)) of the operand traffic.
const MIN_SPLIT_K: usize = 256;

/// The length of the k-slices of a `[m, n]` product over `k` (k itself when unsplit): enough
/// slices to bring the workgroups up to `below_tiles`, none shorter than [`MIN_SPLIT_K`],
/// and their `[splits, m, n]` partials within one binding of `max_elements`.
fn split_k_chunk(m: usize, n: usize, k: usize, below_tiles: usize, max_elements: u64) -> usize {
    let tiles = m.div_ceil(TILED.tile) * n.div_ceil(TILED.tile);
    if tiles == 0 || tiles >= below_tiles {
        return k;
    }
    let splits = below_tiles
        .div_ceil(tiles)
        .min(k / MIN_SPLIT_K)
        .min((max_elements / (m * n) as u64) as usize);
    if splits < 2 {
        return k;
    }
    k.div_ceil(splits).next_multiple_of(K_STEP)
}

impl Gemm {
    /// The tiled kernel's 64×64 tiles of C, `⌈m/64⌉·⌈n/64⌉`: its workgroups per slice of k.
    ///
    /// ```
    /// use wgkernels::linalg::Gemm;
    /// let g = Gemm::of("example", &[100, 8], &[8, 130], false, false)?; // C is 100×130
    /// assert_eq!(g.tiles(), 2 * 3);
    /// # Ok::<(), wgkernels::Error>(())
    /// ```
    pub fn tiles(&self) -> usize {
        self.m.div_ceil(TILED.tile) * self.n.div_ceil(TILED.tile)
    }

    /// How many slices of k the GPU path of [`matmul`] on `ctx` cuts this product into
    /// (split-K, see [`GpuOptions::split_k_below_tiles`](crate::GpuOptions::split_k_below_tiles));
    /// 1 when unsplit and on the CPU path. Products larger than one binding are counted per
    /// block, of which this is the first.
    pub fn k_slices(&self, ctx: &Context) -> usize {
        let planned = ctx
            .gpu_device()
            .map(|gpu| plan(gpu, "k_slices", &TILED, *self));
        match planned {
            Some(Ok(blocks)) => blocks.first().map_or(1, GemmBlock::splits),
            _ => 1,
        }
    }
}

/// One dispatch of the tiled kernel: rows `i0..i0+m`, columns `j0..j0+n`, k `k0..k0+k` of
/// the product, the k range cut into slices of `k_chunk`.
struct GemmBlock {
    i0: usize,
    m: usize,
    j0: usize,
    n: usize,
    k0: usize,
    k: usize,
    k_chunk: usize,
}

impl GemmBlock {
    fn splits(&self) -> usize {
        self.k.div_ceil(self.k_chunk.max(1)).max(1)
    }

    /// The block's uniforms for a kernel of `tile`×`tile` tiles, its operands from the
    /// windows' first elements `[a, b, c]`: C row-major with g's row length, k in slices of
    /// `k_chunk`, accumulating onto C after the first block of k. The row squares and the
    /// shift are off.
    fn params(&self, g: Gemm, tile: usize, [a_offset, b_offset, c_offset]: [u32; 3]) -> Params {
        let tiles_n = self.n.div_ceil(tile);
        let (a_stride_m, a_stride_k) = g.a_strides();
        let (b_stride_k, b_stride_n) = g.b_strides();
        Params {
            m: self.m as u32,
            n: self.n as u32,
            k: self.k as u32,
            tiles_n: tiles_n as u32,
            a_offset,
            a_stride_m: a_stride_m as u32,
            a_stride_k: a_stride_k as u32,
            accumulate: (self.k0 > 0) as u32,
            b_offset,
            b_stride_k: b_stride_k as u32,
            b_stride_n: b_stride_n as u32,
            total_tiles: (self.m.div_ceil(tile) * tiles_n) as u32,
            c_offset,
            c_stride_m: g.n as u32,
            squares_offset: 0,
            squares: 0,
            splits: self.splits() as u32,
            k_chunk: self.k_chunk as u32,
            c_split_stride: (self.m * self.n) as u32,
            squares_split_stride: self.m as u32,
            e_offset: 0,
            scale: 0.0,
            _pad: [0; 2],
        }
    }

    /// `(first, count)` of the elements of A and of B that this block reads.
    fn operand_spans(&self, g: Gemm) -> [(u64, u64); 2] {
        let GemmBlock {
            i0,
            m,
            j0,
            n,
            k0,
            k,
            ..
        } = *self;
        let span = |first: usize, last: usize| (first as u64, (last - first + 1) as u64);
        [
            span(g.a_index(i0, k0), g.a_index(i0 + m - 1, k0 + k - 1)),
            span(g.b_index(k0, j0), g.b_index(k0 + k - 1, j0 + n - 1)),
        ]
    }
}

/// The dispatches of `op(A)·op(B)` on this device: blocks of (m, n, k) whose operand windows
/// fit one binding, each block's k cut into split-K slices where C has too few tiles. Split-K
/// only for the tiled kernel, and only where a block spans C's full rows, so that its
/// partials sum into one contiguous window of C.
fn plan(gpu: &GpuDevice, op: &'static str, kernel: &GemmKernel, g: Gemm) -> Result<Vec<GemmBlock>> {
    let max_elements = gpu.binding.max_elements();
    let [bm, bn, bk] = plan_blocks(op, g, kernel.tile, max_elements)?;
    let split_below = match kernel.tile == TILED.tile && bn == g.n {
        true => gpu.split_k_below_tiles as usize,
        false => 0,
    };
    let mut blocks = Vec::new();
    for i0 in (0..g.m).step_by(bm) {
        let m = bm.min(g.m - i0);
        for j0 in (0..g.n).step_by(bn) {
            let n = bn.min(g.n - j0);
            for k0 in (0..g.k).step_by(bk) {
                let k = bk.min(g.k - k0);
                let k_chunk = split_k_chunk(m, n, k, split_below, max_elements);
                blocks.push(GemmBlock {
                    i0,
                    m,
                    j0,
                    n,
                    k0,
                    k,
                    k_chunk,
                });
            }
        }
    }
    Ok(blocks)
}

fn launch(
    gpu: &GpuDevice,
    op: &'static str,
    kernel: &GemmKernel,
    g: Gemm,
    [a_tensor, b_tensor]: [&Tensor; 2],
    c: &wgpu::Buffer,
    squares: Option<&wgpu::Buffer>,
) -> Result<()> {
    let (a, b) = (a_tensor.buffer(), b_tensor.buffer());
    let (a_dtype, b_dtype) = (a_tensor.dtype(), b_tensor.dtype());
    let operands = [("a", a_dtype), ("b", b_dtype)];
    let pipeline = match squares {
        Some(_) => gpu.kernel_with(&kernel.shader, &operands, &[("ROW_SQUARES", 1.0)])?,
        None => gpu.kernel_for(&kernel.shader, &operands)?,
    };
    let limits = gpu.binding;
    let mut blocks = plan(gpu, op, kernel, g)?;
    // The partial products of split blocks (and their row squares), one scratch reused by
    // every block. Where it cannot be allocated the product runs unsplit: split-K is a
    // speed-up, never a requirement.
    let most = |width: usize| {
        let split = blocks.iter().filter(|b| b.splits() > 1);
        split.map(|b| b.splits() * b.m * width).max()
    };
    let partials = most(g.n).and_then(|len| {
        let c_partials = gpu.storage(len).ok()?;
        let squares_partials = match squares {
            Some(_) => Some(gpu.storage(most(1)?).ok()?),
            None => None,
        };
        Some((c_partials, squares_partials))
    });
    let sum = match partials {
        Some(_) => Some(reduce::SumSlices::new(gpu)?),
        None => {
            blocks.iter_mut().for_each(|block| block.k_chunk = block.k);
            None
        }
    };

    // One dispatch per block of (m, n, k) (and one sum per split block), in one submission.
    let mut recording = gpu.recording();
    for block in &blocks {
        let GemmBlock {
            i0, m, j0, n, k0, ..
        } = *block;
        let splits = block.splits();
        let [(fa, na), (fb, nb)] = block.operand_spans(g);
        let (fc, nc) = (
            (i0 * g.n + j0) as u64,
            ((m - 1) * g.n + n) as u64, // rows i0 .. i0+m, columns j0 .. j0+n
        );
        let wa = limits.window_of(op, "a", a_dtype, fa, na, a.size())?;
        let wb = limits.window_of(op, "b", b_dtype, fb, nb, b.size())?;
        let wc = limits.window(op, "output", fc, nc, c.size())?;
        let mut params = block.params(g, kernel.tile, [wa.skip, wb.skip, wc.skip]);
        // Taken by the first block of columns only (each row once).
        params.squares = (squares.is_some() && j0 == 0) as u32;
        let mut bindings = vec![
            Bound::window(a, wa),
            Bound::window(b, wb),
            Bound::window(c, wc),
        ];
        let ws = match squares {
            Some(squares) => {
                Some(limits.window(op, "output", i0 as u64, m as u64, squares.size())?)
            }
            None => None,
        };
        match (&partials, &sum, splits) {
            (Some((c_partials, squares_partials)), Some(sum), 2..) => {
                // Each slice into its own partial, then C (+)= Σ_s partial_s in increasing s.
                let (c_partials, cells) = (c_partials.buffer(), (splits * m * n) as u64);
                let wp = limits.window(op, "output", 0, cells, c_partials.size())?;
                params.c_offset = wp.skip;
                params.accumulate = 0;
                bindings[2] = Bound::window(c_partials, wp);
                let mut sums = vec![(Bound::window(c_partials, wp), Bound::window(c, wc), m * n)];
                if let (Some(ws), Some(squares), Some(sq_partials)) =
                    (ws, squares, squares_partials)
                {
                    let sq_partials = sq_partials.buffer();
                    let wq =
                        limits.window(op, "output", 0, (splits * m) as u64, sq_partials.size())?;
                    params.squares_offset = wq.skip;
                    bindings.push(Bound::window(sq_partials, wq));
                    if j0 == 0 {
                        sums.push((
                            Bound::window(sq_partials, wq),
                            Bound::window(squares, ws),
                            m,
                        ));
                    }
                }
                recording.dispatch(
                    &pipeline,
                    &params,
                    &bindings,
                    params.total_tiles * params.splits,
                )?;
                for (from, to, inner) in sums {
                    sum.record(&mut recording, from, to, [splits, inner], k0 > 0)?;
                }
            }
            _ => {
                if let (Some(ws), Some(squares)) = (ws, squares) {
                    params.squares_offset = ws.skip;
                    bindings.push(Bound::window(squares, ws));
                }
                recording.dispatch(&pipeline, &params, &bindings, params.total_tiles)?;
            }
        }
    }
    recording.submit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemm(m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Gemm {
        Gemm {
            m,
            k,
            n,
            transpose_a: ta,
            transpose_b: tb,
        }
    }

    #[test]
    fn blocks_fit_the_binding_along_each_stored_row_dimension() {
        let max = 10_000;
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let g = gemm(1000, 300, 200, ta, tb);
            let [bm, bn, bk] = plan_blocks("t", g, 64, max).unwrap();
            assert!(bm * g.n <= max as usize, "C rows");
            let a_rows = if ta { bk * g.m } else { bm * g.k };
            let b_rows = if tb { bn * g.k } else { bk * g.n };
            assert!(
                a_rows <= max as usize && b_rows <= max as usize,
                "{ta} {tb}"
            );
            assert!(bm >= 1 && bn >= 1 && bk >= 1);
        }
    }

    #[test]
    fn a_row_longer_than_a_binding_cannot_be_split() {
        let g = gemm(4, 20_000, 4, false, false);
        assert!(matches!(
            plan_blocks("t", g, 64, 10_000),
            Err(Error::TooLarge { arg: "a", .. })
        ));
    }
    /// The row sums of squares of op(A) beside C, on both paths, where the GEMM is split into
    /// blocks of rows, of columns and of k (4 KiB bindings), and where k is cut into split-K
    /// slices (forced, with and without 16 KiB bindings): the squares are taken once per row
    /// and accumulated over the k-blocks and slices. Fresh inputs; bound 1e-5 (f32 sums of
    /// ≤ 1300 squares, ≈ √k·2⁻²⁴).
    #[test]
    fn row_squares_come_with_the_product_on_both_paths() {
        let gpu = |max_binding_bytes, split_k_below_tiles| {
            crate::context::test_gpu(crate::GpuOptions {
                max_binding_bytes,
                split_k_below_tiles,
                poison_outputs: true,
                ..Default::default()
            })
        };
        let short = [
            (1, 1, 1, false, false),
            (70, 300, 9, true, false),
            (65, 13, 130, false, true),
        ];
        let long = [(70, 1300, 9, true, false), (65, 600, 13, false, true)];
        // Split slices inside k-blocks (C and the squares accumulate over the blocks).
        let blocked = [(5, 3000, 3, false, false), (1, 5000, 2, true, false)];
        let contexts = [
            (Some(Context::cpu()), &short[..]),
            (gpu(Some(4096), None), &short[..]),
            (gpu(None, Some(u32::MAX)), &long[..]),
            (gpu(Some(16384), Some(u32::MAX)), &blocked[..]),
        ];
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |t| t.as_nanos() as u64);
        let mut state = seed | 1;
        let mut uniform = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
                })
                .collect()
        };
        for (ctx, shapes) in contexts {
            let Some(ctx) = ctx else { continue };
            for &(m, k, n, ta, tb) in shapes {
                let a_host = uniform(m * k);
                let b_host = uniform(k * n);
                let a_shape = if ta { [k, m] } else { [m, k] };
                let b_shape = if tb { [n, k] } else { [k, n] };
                let a = ctx.tensor(&a_host, &a_shape).unwrap();
                let b = ctx.tensor(&b_host, &b_shape).unwrap();
                let [c, squares] = matmul_row_squares(&ctx, &a, &b, ta, tb).unwrap();
                let g = gemm(m, k, n, ta, tb);
                assert!(
                    k < 512 || g.k_slices(&ctx) > 1 || !ctx.is_gpu(),
                    "not split"
                );
                let want_c = reference::matmul(&a_host, &b_host, g);
                let want = reference::row_squares(&a_host, g);
                let err_c = crate::compare::relative_error(&c.to_vec().unwrap(), &want_c);
                let err = crate::compare::relative_error(&squares.to_vec().unwrap(), &want);
                let name = ctx.device_name();
                assert!(
                    err_c < 1e-5 && err < 1e-5,
                    "{name} seed {seed} {m}×{k}×{n}: {err_c:e} {err:e}"
                );
            }
        }
    }
}
