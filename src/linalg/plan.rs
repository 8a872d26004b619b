//! How a GEMM is cut into dispatches on a device: blocks whose operand windows fit one
//! binding, and split-K slices where C has too few tiles to fill the GPU.

use super::gemm::Gemm;
use super::kernels::{Epilogue, GemmKernel, Params};
use crate::dtype::DType;
use crate::gpu::GpuDevice;
use crate::{Context, Error, Result};

/// Block sizes `(bm, bn, bk)` such that every operand's window fits one binding.
///
/// A row-major block spans (rows of the block) × (full stored row length) elements of its
/// buffer, so each operand caps the block along its stored row dimension: C caps bm; A caps
/// bm (or bk when transposed); B caps bk (or bn when transposed).
pub(super) fn plan_blocks(
    op: &'static str,
    g: Gemm,
    [tile_m, tile_n]: [usize; 2],
    k_step: usize,
    max_elements: u64,
) -> Result<[usize; 3]> {
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
    let mut bm = cap("output", g.n, g.m, tile_m)?;
    let (mut bn, mut bk) = (g.n, g.k);
    if g.transpose_a {
        bk = bk.min(cap("a", g.m, g.k, k_step)?);
    } else {
        bm = bm.min(cap("a", g.k, g.m, tile_m)?);
    }
    if g.transpose_b {
        bn = bn.min(cap("b", g.k, g.n, tile_n)?);
    } else {
        bk = bk.min(cap("b", g.n, g.k, k_step)?);
    }
    Ok([bm, bn, bk])
}

/// Split-K slices are at least this long, so that a slice's workgroup reads ≥ 16 k-steps of
/// A and B for each partial tile it writes: the partials then cost at most
/// 2·m·n/(256·(m+n)) of the operand traffic.
const MIN_SPLIT_K: usize = 256;

/// The length of the k-slices of a `[m, n]` product over `k` (k itself when unsplit): enough
/// slices to bring the workgroups (of `kernel`'s tiles) up to `below_tiles`, none shorter
/// than [`MIN_SPLIT_K`], and their `[splits, m, n]` partials within one binding of
/// `max_elements`.
fn split_k_chunk(
    kernel: &GemmKernel,
    [m, n, k]: [usize; 3],
    below_tiles: usize,
    max_elements: u64,
) -> usize {
    let tiles = m.div_ceil(kernel.tile[0]) * n.div_ceil(kernel.tile[1]);
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
    k.div_ceil(splits).next_multiple_of(kernel.k_step)
}

impl Gemm {
    /// How many slices of k the GPU path of [`matmul`](super::matmul) on `ctx` cuts this product into
    /// (split-K, see [`GpuOptions::split_k_below_tiles`](crate::GpuOptions::split_k_below_tiles));
    /// 1 when unsplit and on the CPU path. Products larger than one binding are counted per
    /// block, of which this is the first.
    pub fn k_slices(&self, ctx: &Context) -> usize {
        let planned = ctx.gpu_device().map(|gpu| {
            let form = super::tuned::chosen_form(gpu, "matmul", *self, [DType::F32; 2]);
            plan(gpu, "k_slices", &form.kernel(Epilogue::Store), *self)
        });
        match planned {
            Some(Ok(blocks)) => blocks.first().map_or(1, GemmBlock::splits),
            _ => 1,
        }
    }
}

/// One dispatch of the tiled kernel: rows `i0..i0+m`, columns `j0..j0+n`, k `k0..k0+k` of
/// the product, the k range cut into slices of `k_chunk`.
pub(super) struct GemmBlock {
    pub i0: usize,
    pub m: usize,
    pub j0: usize,
    pub n: usize,
    pub k0: usize,
    pub k: usize,
    pub k_chunk: usize,
}

impl GemmBlock {
    pub(super) fn splits(&self) -> usize {
        self.k.div_ceil(self.k_chunk.max(1)).max(1)
    }

    /// The block's uniforms for a kernel of `[rows, columns]` tiles, its operands from the
    /// windows' first elements `[a, b, c]`: C row-major with g's row length, k in slices of
    /// `k_chunk`, accumulating onto C after the first block of k. The row squares and the
    /// shift are off.
    pub(super) fn params(
        &self,
        g: Gemm,
        [tile_m, tile_n]: [usize; 2],
        [a_offset, b_offset, c_offset]: [u32; 3],
    ) -> Params {
        let tiles_n = self.n.div_ceil(tile_n);
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
            total_tiles: (self.m.div_ceil(tile_m) * tiles_n) as u32,
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
            a_vec4: 0,
            _pad: 0,
        }
    }

    /// `(first, count)` of the elements of A and of B that this block reads.
    pub(super) fn operand_spans(&self, g: Gemm) -> [(u64, u64); 2] {
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
pub(super) fn plan(
    gpu: &GpuDevice,
    op: &'static str,
    kernel: &GemmKernel,
    g: Gemm,
) -> Result<Vec<GemmBlock>> {
    let max_elements = gpu.binding.max_elements();
    let [bm, bn, bk] = plan_blocks(op, g, kernel.tile, kernel.k_step, max_elements)?;
    let split_below = match kernel.splits_k && bn == g.n {
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
                let k_chunk = split_k_chunk(kernel, [m, n, k], split_below, max_elements);
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
            let [bm, bn, bk] = plan_blocks("t", g, [64, 64], 16, max).unwrap();
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
            plan_blocks("t", g, [64, 64], 16, 10_000),
            Err(Error::TooLarge { arg: "a", .. })
        ));
    }
}
