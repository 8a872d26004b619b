//! [`BlockInverse`]: the block-diagonal inverse Fisher, one [`StaticInverse`] per block of
//! coordinates.

use super::{check_damp, check_f32, vectors, StaticInverse};
use crate::gpu::Recording;
use crate::{op, Context, Error, Result, Tensor};

/// Copies `rows × width` f32 values between row-major matrices given as
/// `(buffer, row length, first column)`, one copy command per row.
fn copy_block<'a>(
    recording: &mut Recording<'a>,
    (src, src_cols, src_c0): (&'a wgpu::Buffer, usize, usize),
    (dst, dst_cols, dst_c0): (&'a wgpu::Buffer, usize, usize),
    rows: usize,
    width: usize,
) {
    for r in 0..rows {
        let from = ((r * src_cols + src_c0) * 4) as u64;
        let to = ((r * dst_cols + dst_c0) * 4) as u64;
        recording.copy(src, from, dst, to, (width * 4) as u64);
    }
}

/// Columns `c0 .. c0 + width` of an f32 `[rows, cols]` tensor, as `[rows, width]`.
fn columns(ctx: &Context, t: &Tensor, c0: usize, width: usize) -> Result<Tensor> {
    let cols = t.shape().last().copied().unwrap_or(1);
    let rows = t.len() / cols;
    let cpu = || {
        let data = t
            .host()
            .chunks(cols)
            .flat_map(|r| r[c0..c0 + width].iter().map(|&x| x as f64))
            .collect();
        Ok([data])
    };
    let [out] = op::run(
        ctx,
        "mfac::BlockInverse (columns of a block)",
        [&[rows, width]],
        cpu,
        |gpu, [out]| {
            let mut recording = gpu.recording();
            copy_block(
                &mut recording,
                (t.buffer(), cols, c0),
                (out.buffer(), width, 0),
                rows,
                width,
            );
            recording.submit()
        },
    )?;
    Ok(out)
}

/// The block-diagonal inverse of the reference code's `blocksize`: the d coordinates split
/// into consecutive blocks of `block` (the last may be shorter), each with its own
/// `F_b = λ·I + (1/m)·Σ_i g_i[b] g_i[b]ᵀ` and its own [`StaticInverse`]. Memory and the
/// precompute drop from O(d·m²) to O(d·m·min(m, block)) of factor work per block; products
/// ignore the couplings between blocks, as the reference does for very large d.
///
/// Each block is a separate set of launches (and its slices of x are copied on the device),
/// so blocks should be large — thousands of coordinates, not tens.
pub struct BlockInverse {
    ctx: Context,
    d: usize,
    block: usize,
    blocks: Vec<StaticInverse>,
}

impl BlockInverse {
    /// Precomputes every block's factors for `grads [m, d]`, λ = `damp`.
    pub fn new(ctx: &Context, grads: &Tensor, damp: f32, block: usize) -> Result<BlockInverse> {
        const OP: &str = "mfac::BlockInverse::new";
        let _call = crate::call::Call::enter(OP);
        ctx.check_owns(OP, "grads", grads)?;
        check_f32(OP, "grads", grads)?;
        check_damp(OP, damp)?;
        let &[_, d] = grads.shape() else {
            return Err(Error::Shape {
                op: OP,
                message: format!("`grads` must be [m, d], got {:?}", grads.shape()),
            });
        };
        if block == 0 {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "block",
                message: "must be at least 1".into(),
            });
        }
        let blocks = (0..d)
            .step_by(block)
            .map(|c0| StaticInverse::new(ctx, &columns(ctx, grads, c0, block.min(d - c0))?, damp))
            .collect::<Result<Vec<_>>>()?;
        Ok(BlockInverse {
            ctx: ctx.clone(),
            d,
            block,
            blocks,
        })
    }

    /// The blocks' inverses, in order along d.
    pub fn blocks(&self) -> &[StaticInverse] {
        &self.blocks
    }

    /// Applies `per_block` to every block's columns of `x` (`[k, d]`) and assembles `[k, d]`.
    fn assemble(
        &self,
        shape: &[usize],
        k: usize,
        mut per_block: impl FnMut(usize, &StaticInverse) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let d = self.d;
        let parts = self
            .blocks
            .iter()
            .enumerate()
            .map(|(b, inverse)| per_block(b * self.block, inverse))
            .collect::<Result<Vec<_>>>()?;
        let width = |part: &Tensor| part.shape().last().copied().unwrap_or(1);
        let cpu = || {
            let mut out = vec![0.0f64; k * d];
            for (b, part) in parts.iter().enumerate() {
                let (c0, width) = (b * self.block, width(part));
                for (r, row) in part.host().chunks(width).enumerate() {
                    for (o, &v) in out[r * d + c0..r * d + c0 + width].iter_mut().zip(row) {
                        *o = v as f64;
                    }
                }
            }
            Ok([out])
        };
        let [out] = op::run(
            &self.ctx,
            "mfac::BlockInverse (blocks joined)",
            [shape],
            cpu,
            |gpu, [out]| {
                let mut recording = gpu.recording();
                for (b, part) in parts.iter().enumerate() {
                    let (c0, width) = (b * self.block, width(part));
                    let (from, to) = ((part.buffer(), width, 0), (out.buffer(), d, c0));
                    copy_block(&mut recording, from, to, k, width);
                }
                recording.submit()
            },
        )?;
        Ok(out)
    }

    /// `F⁻¹x` block by block, for `x [d]` or `[k, d]`; same shape out.
    pub fn ihvp(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "mfac::BlockInverse::ihvp";
        let _call = crate::call::Call::enter(OP);
        let k = vectors(OP, &self.ctx, x, self.d)?;
        self.assemble(x.shape(), k, |c0, inverse| {
            let width = inverse.dimension();
            inverse.ihvp(&columns(&self.ctx, x, c0, width)?)
        })
    }

    /// The diagonal of the block-diagonal F⁻¹: `[d]`.
    pub fn inverse_diagonal(&self) -> Result<Tensor> {
        let _call = crate::call::Call::enter("mfac::BlockInverse::inverse_diagonal");
        self.assemble(&[self.d], 1, |_, inverse| inverse.inverse_diagonal())
    }
}
