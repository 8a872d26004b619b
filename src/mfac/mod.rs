//! M-FAC (Frantar, Kurtic, Alistarh 2021): products with the inverse of an empirical Fisher
//! `F = λ·I + (1/m)·Σ_i g_i g_iᵀ` of m gradients, never forming the d×d matrix.
//!
//! Both inverses go through the m×m matrix `M = m·I + G·Gᵀ/λ` (Woodbury): its LDLᵀ pivots are
//! the paper's `D_i` and `W = L⁻¹/λ` turns the gradients G into the paper's `v_i` (the rows of
//! `V = W·G`). The O(d·m²) work is GEMMs (`G·Gᵀ`, `W·G`), the O(m³) factorisation one
//! workgroup, and every product with F⁻¹ two coalesced passes over a `[m, d]` matrix.
//!
//! ```
//! use wgkernels::{mfac::StaticInverse, Context};
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?;
//! let grads = ctx.tensor(&[1.0, 0.0, 0.0, 0.0, 2.0, 0.0], &[2, 3])?; // m = 2, d = 3
//! let inverse = StaticInverse::new(&ctx, &grads, 0.5)?;
//! // F = 0.5·I + (g₁g₁ᵀ + g₂g₂ᵀ)/2 = diag(1, 2.5, 0.5)
//! let x = ctx.tensor(&[1.0, 1.0, 1.0], &[3])?;
//! let y = inverse.ihvp(&x)?.to_vec()?;
//! assert!((y[0] - 1.0).abs() < 1e-5 && (y[1] - 0.4).abs() < 1e-5 && (y[2] - 2.0).abs() < 1e-5);
//! # Ok(())
//! # }
//! ```

mod kernels;
pub mod reference;

use crate::context::Backend;
use crate::gpu::elementwise::{elementwise, Op};
use crate::gpu::pool::PooledBuffer;
use crate::tensor::Storage;
use crate::{linalg, Context, DType, Error, Result, Tensor};
use kernels::{Coefficients, Factorization};

fn check_damp(op: &'static str, damp: f32) -> Result<()> {
    if damp > 0.0 && damp.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            arg: "damp",
            message: format!("must be positive and finite, got {damp}"),
        })
    }
}

/// M-FAC reads its vectors and gradients as f32 only.
fn check_f32(op: &'static str, arg: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() == DType::F32 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            arg,
            message: format!("must be f32, got {}", t.dtype()),
        })
    }
}

/// `x` as `k` vectors of length d: `[d]` or `[k, d]`.
fn vectors(op: &'static str, ctx: &Context, x: &Tensor, d: usize) -> Result<usize> {
    ctx.check_owns(op, "x", x)?;
    check_f32(op, "x", x)?;
    match *x.shape() {
        [n] if n == d => Ok(1),
        [k, n] if n == d => Ok(k),
        _ => Err(Error::Shape {
            op,
            message: format!(
                "`x` must be [d] or [k, d] with d = {d}, got {:?}",
                x.shape()
            ),
        }),
    }
}

/// An f32 tensor around a device buffer this module computed.
fn device_tensor(ctx: &Context, buffer: PooledBuffer, shape: &[usize]) -> Tensor {
    Tensor::new(
        ctx.clone(),
        shape.to_vec(),
        DType::F32,
        Storage::Device(buffer),
    )
}

/// From this many gradients the Gram matrix `G·Gᵀ` is a tiled GEMM; below, the chunked
/// dot kernel. A GEMM of m×m outputs has only ⌈m/64⌉² workgroups, each walking all of d;
/// the dot kernel splits d across workgroups but walks the m gradients one at a time.
/// (lavapipe, d = 2^14: m = 16 takes 0.18 s by dots and 0.58 s by GEMM; m = 256 by dots,
/// 22.9 s.) Split-K GEMM would serve both.
const GRAM_BY_GEMM_FROM: usize = 128;

enum StaticState {
    Cpu(reference::StaticFactors),
    Gpu {
        v: Tensor,
        denominators: PooledBuffer,
    },
}

/// The inverse of the Fisher of a fixed set of m f32 gradients, for pruning: precomputed in
/// O(d·m²), then `F⁻¹x` in O(d·m), its diagonal in O(d·m), one entry in O(m).
///
/// Accuracy: F's condition number is `κ = 1 + σ²_max/(m·λ)` (σ_max the largest singular value
/// of the gradients); in f32 the results carry relative errors of about `κ·1e-7` — the same
/// order as rounding the gradients themselves to f32 perturbs F⁻¹. Small λ with large
/// gradients (λ = 1e-5, |g| ~ 30) reaches κ ~ 1e8: then only the component of x outside the
/// gradients' span (scaled by 1/λ) is accurate.
pub struct StaticInverse {
    ctx: Context,
    d: usize,
    m: usize,
    damp: f32,
    state: StaticState,
}

impl StaticInverse {
    /// Precomputes the factors of `F = λ·I + (1/m)·Σ g_i g_iᵀ` for `grads [m, d]`, λ = `damp`.
    pub fn new(ctx: &Context, grads: &Tensor, damp: f32) -> Result<StaticInverse> {
        const OP: &str = "mfac::StaticInverse::new";
        ctx.check_owns(OP, "grads", grads)?;
        check_f32(OP, "grads", grads)?;
        check_damp(OP, damp)?;
        let &[m, d] = grads.shape() else {
            return Err(Error::Shape {
                op: OP,
                message: format!("`grads` must be [m, d], got {:?}", grads.shape()),
            });
        };
        let state = match &*ctx.backend {
            Backend::Cpu(_) => {
                StaticState::Cpu(reference::sherman_morrison(grads.host(), d, damp as f64))
            }
            Backend::Gpu(gpu) => {
                kernels::check_window_count(OP, gpu, m)?;
                let gram = if m >= GRAM_BY_GEMM_FROM {
                    linalg::matmul(ctx, grads, grads, false, true)?
                } else {
                    let gram = ctx.output(&[m, m])?;
                    let how = Coefficients::Gram {
                        gram: gram.buffer(),
                    };
                    kernels::coefficients(gpu, OP, grads, m, grads, how)?;
                    gram
                };
                let Factorization { w, denominators } =
                    kernels::factor(gpu, OP, gram.buffer(), m, m, damp)?;
                let w = device_tensor(ctx, w, &[m, m]);
                let v = linalg::matmul(ctx, &w, grads, false, false)?; // V = W·G, [m, d]
                StaticState::Gpu { v, denominators }
            }
        };
        Ok(StaticInverse {
            ctx: ctx.clone(),
            d,
            m,
            damp,
            state,
        })
    }

    /// The number of gradients m.
    pub fn len(&self) -> usize {
        self.m
    }

    /// Never true: there is at least one gradient.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `F⁻¹x = x/λ − Σ_i (v_iᵀx / D_i)·v_i` for `x [d]` or a batch `[k, d]`; same shape out.
    pub fn ihvp(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "mfac::StaticInverse::ihvp";
        let k = vectors(OP, &self.ctx, x, self.d)?;
        match &self.state {
            StaticState::Cpu(factors) => {
                let out = x
                    .host()
                    .chunks(self.d)
                    .flat_map(|x| factors.ihvp(x))
                    .collect();
                self.ctx.host_result(out, x.shape())
            }
            StaticState::Gpu { v, denominators } => {
                let gpu = self.ctx.gpu_device().ok_or(Error::NoAdapter)?;
                let how = Coefficients::Static {
                    denominators: denominators.buffer(),
                };
                let c = kernels::coefficients(gpu, OP, v, self.m, x, how)?
                    .ok_or_else(|| Error::Gpu("static coefficients missing".into()))?;
                let out = self.ctx.output(x.shape())?;
                kernels::combine(
                    gpu,
                    OP,
                    v,
                    self.m,
                    Some(x),
                    c.buffer(),
                    self.damp,
                    out.buffer(),
                    k,
                )?;
                Ok(out)
            }
        }
    }

    /// `[F⁻¹]_kk = 1/λ − Σ_i v_ik² / D_i` for every k: `[d]`.
    pub fn inverse_diagonal(&self) -> Result<Tensor> {
        const OP: &str = "mfac::StaticInverse::inverse_diagonal";
        match &self.state {
            StaticState::Cpu(factors) => {
                self.ctx.host_result(factors.inverse_diagonal(), &[self.d])
            }
            StaticState::Gpu { v, denominators } => {
                let gpu = self.ctx.gpu_device().ok_or(Error::NoAdapter)?;
                let out = self.ctx.output(&[self.d])?;
                let (dens, damp) = (denominators.buffer(), self.damp);
                kernels::combine(gpu, OP, v, self.m, None, dens, damp, out.buffer(), 1)?;
                Ok(out)
            }
        }
    }

    /// `[F⁻¹]_ij = δ_ij/λ − Σ_t v_ti v_tj / D_t`, in O(m) (one small kernel and a read back).
    pub fn inverse_entry(&self, i: usize, j: usize) -> Result<f32> {
        const OP: &str = "mfac::StaticInverse::inverse_entry";
        for (arg, index) in [("i", i), ("j", j)] {
            if index >= self.d {
                return Err(Error::InvalidArgument {
                    op: OP,
                    arg,
                    message: format!("is {index}, past d = {}", self.d),
                });
            }
        }
        match &self.state {
            StaticState::Cpu(factors) => Ok(factors.inverse_entry(i, j) as f32),
            StaticState::Gpu { v, denominators } => {
                let gpu = self.ctx.gpu_device().ok_or(Error::NoAdapter)?;
                let sum = kernels::entry_sum(gpu, OP, v, denominators.buffer(), (i, j))?;
                let diagonal = if i == j { 1.0 / self.damp as f64 } else { 0.0 };
                Ok((diagonal - sum) as f32)
            }
        }
    }
}

/// Copies `rows × width` f32 values between row-major matrices given as
/// `(buffer, row length, first column)`, one copy command per row.
fn copy_block(
    encoder: &mut wgpu::CommandEncoder,
    (src, src_cols, src_c0): (&wgpu::Buffer, usize, usize),
    (dst, dst_cols, dst_c0): (&wgpu::Buffer, usize, usize),
    rows: usize,
    width: usize,
) {
    for r in 0..rows {
        let from = ((r * src_cols + src_c0) * 4) as u64;
        let to = ((r * dst_cols + dst_c0) * 4) as u64;
        encoder.copy_buffer_to_buffer(src, from, dst, to, (width * 4) as u64);
    }
}

/// Columns `c0 .. c0 + width` of an f32 `[rows, cols]` tensor, as `[rows, width]`.
fn columns(ctx: &Context, t: &Tensor, c0: usize, width: usize) -> Result<Tensor> {
    let cols = t.shape().last().copied().unwrap_or(1);
    let rows = t.len() / cols;
    match &*ctx.backend {
        Backend::Cpu(_) => {
            let data: Vec<f32> = t
                .host()
                .chunks(cols)
                .flat_map(|r| r[c0..c0 + width].to_vec())
                .collect();
            ctx.tensor(&data, &[rows, width])
        }
        Backend::Gpu(gpu) => {
            let out = ctx.output(&[rows, width])?;
            gpu.submit(|encoder| {
                copy_block(
                    encoder,
                    (t.buffer(), cols, c0),
                    (out.buffer(), width, 0),
                    rows,
                    width,
                );
                Ok(())
            })?;
            Ok(out)
        }
    }
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
        match &*self.ctx.backend {
            Backend::Cpu(_) => {
                let mut out = vec![0.0f64; k * d];
                for (b, part) in parts.iter().enumerate() {
                    let (c0, width) = (b * self.block, part.shape().last().copied().unwrap_or(1));
                    for (r, row) in part.host().chunks(width).enumerate() {
                        for (o, &v) in out[r * d + c0..r * d + c0 + width].iter_mut().zip(row) {
                            *o = v as f64;
                        }
                    }
                }
                self.ctx.host_result(out, shape)
            }
            Backend::Gpu(gpu) => {
                let out = self.ctx.output(shape)?;
                gpu.submit(|encoder| {
                    for (b, part) in parts.iter().enumerate() {
                        let (c0, width) =
                            (b * self.block, part.shape().last().copied().unwrap_or(1));
                        let (from, to) = ((part.buffer(), width, 0), (out.buffer(), d, c0));
                        copy_block(encoder, from, to, k, width);
                    }
                    Ok(())
                })?;
                Ok(out)
            }
        }
    }

    /// `F⁻¹x` block by block, for `x [d]` or `[k, d]`; same shape out.
    pub fn ihvp(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "mfac::BlockInverse::ihvp";
        let k = vectors(OP, &self.ctx, x, self.d)?;
        self.assemble(x.shape(), k, |c0, inverse| {
            let width = inverse.d;
            inverse.ihvp(&columns(&self.ctx, x, c0, width)?)
        })
    }

    /// The diagonal of the block-diagonal F⁻¹: `[d]`.
    pub fn inverse_diagonal(&self) -> Result<Tensor> {
        self.assemble(&[self.d], 1, |_, inverse| inverse.inverse_diagonal())
    }
}

enum SlidingState {
    Cpu {
        ring: Vec<f32>,
        gram: Vec<f64>,
        factors: Option<reference::Factors>,
    },
    Gpu {
        ring: Tensor,
        gram: Tensor,
        factors: Option<Box<Factorization>>,
    },
}

/// The inverse Fisher of the last m pushed gradients (a ring buffer), for the optimizer:
/// `push` in O(d·m + m³) (one Gram row and column, then the m×m factorisation redone),
/// `ihvp` in O(d·m + m²). While fewer than m gradients were pushed, F averages over those
/// present; before any, `F = λ·I`. Any m ≥ 1.
pub struct SlidingInverse {
    ctx: Context,
    d: usize,
    m: usize,
    damp: f32,
    count: usize,
    next: usize,
    state: SlidingState,
}

impl SlidingInverse {
    /// An empty window of m gradients of length d, λ = `damp`.
    pub fn new(ctx: &Context, d: usize, m: usize, damp: f32) -> Result<SlidingInverse> {
        const OP: &str = "mfac::SlidingInverse::new";
        check_damp(OP, damp)?;
        for (arg, value) in [("d", d), ("m", m)] {
            if value == 0 {
                return Err(Error::InvalidArgument {
                    op: OP,
                    arg,
                    message: "must be at least 1".into(),
                });
            }
        }
        let state = match &*ctx.backend {
            Backend::Cpu(_) => SlidingState::Cpu {
                ring: vec![0.0; m * d],
                gram: vec![0.0; m * m],
                factors: None,
            },
            Backend::Gpu(gpu) => {
                kernels::check_window_count(OP, gpu, m)?;
                SlidingState::Gpu {
                    ring: ctx.zeros(&[m, d])?,
                    gram: ctx.zeros(&[m, m])?,
                    factors: None,
                }
            }
        };
        Ok(SlidingInverse {
            ctx: ctx.clone(),
            d,
            m,
            damp,
            count: 0,
            next: 0,
            state,
        })
    }

    /// Gradients in the window (at most m).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Pushes `grad [d]` (f32), replacing the oldest gradient once the window is full. On
    /// `Err` the window is unchanged. A gradient holding NaN or inf is taken as it is:
    /// products are then NaN until it leaves the window, m pushes later.
    pub fn push(&mut self, grad: &Tensor) -> Result<()> {
        const OP: &str = "mfac::SlidingInverse::push";
        self.ctx.check_owns(OP, "grad", grad)?;
        if grad.shape() != [self.d] {
            return Err(Error::Shape {
                op: OP,
                message: format!("`grad` must be [d] = [{}], got {:?}", self.d, grad.shape()),
            });
        }
        check_f32(OP, "grad", grad)?;
        let (d, m, slot) = (self.d, self.m, self.next);
        let count = (self.count + 1).min(m);
        match &mut self.state {
            SlidingState::Cpu {
                ring,
                gram,
                factors,
            } => {
                ring[slot * d..(slot + 1) * d].copy_from_slice(grad.host());
                for i in 0..count {
                    let dot: f64 = ring[i * d..(i + 1) * d]
                        .iter()
                        .zip(grad.host())
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum();
                    gram[slot * m + i] = dot;
                    gram[i * m + slot] = dot;
                }
                let leading: Vec<f64> = (0..count)
                    .flat_map(|i| gram[i * m..i * m + count].to_vec())
                    .collect();
                *factors = Some(reference::Factors::new(&leading, count, self.damp as f64));
            }
            SlidingState::Gpu {
                ring,
                gram,
                factors,
            } => {
                let gpu = self.ctx.gpu_device().ok_or(Error::NoAdapter)?;
                let bytes = (d * 4) as u64;
                gpu.submit(|encoder| {
                    encoder.copy_buffer_to_buffer(
                        grad.buffer(),
                        0,
                        ring.buffer(),
                        slot as u64 * bytes,
                        bytes,
                    );
                    Ok(())
                })?;
                let how = Coefficients::GramRow {
                    gram: gram.buffer(),
                    slot,
                    stride: m,
                };
                kernels::coefficients(gpu, OP, ring, count, grad, how)?;
                let factored = kernels::factor(gpu, OP, gram.buffer(), count, m, self.damp)?;
                *factors = Some(Box::new(factored));
            }
        }
        self.count = count;
        self.next = (slot + 1) % m;
        Ok(())
    }

    /// `F⁻¹x = x/λ − Gᵀ·Wᵀ·diag(D)⁻¹·W·G·x` over the gradients in the window, for `x [d]` or
    /// `[k, d]`; same shape out.
    pub fn ihvp(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "mfac::SlidingInverse::ihvp";
        let k = vectors(OP, &self.ctx, x, self.d)?;
        let (d, count, damp) = (self.d, self.count, self.damp);
        match &self.state {
            SlidingState::Cpu { ring, factors, .. } => {
                let out = x
                    .host()
                    .chunks(d)
                    .flat_map(|x| match factors {
                        Some(f) => {
                            reference::woodbury_ihvp(&ring[..count * d], d, f, x, damp as f64)
                        }
                        None => x.iter().map(|&x| x as f64 / damp as f64).collect(),
                    })
                    .collect();
                self.ctx.host_result(out, x.shape())
            }
            SlidingState::Gpu { ring, factors, .. } => {
                let gpu = self.ctx.gpu_device().ok_or(Error::NoAdapter)?;
                let out = self.ctx.output(x.shape())?;
                let Some(factors) = factors else {
                    elementwise(gpu, Op::Scale(1.0 / damp), x, None, &out, k, d)?;
                    return Ok(out);
                };
                let c = kernels::coefficients(
                    gpu,
                    OP,
                    ring,
                    count,
                    x,
                    Coefficients::Woodbury(factors),
                )?
                .ok_or_else(|| Error::Gpu("Woodbury coefficients missing".into()))?;
                kernels::combine(
                    gpu,
                    OP,
                    ring,
                    count,
                    Some(x),
                    c.buffer(),
                    damp,
                    out.buffer(),
                    k,
                )?;
                Ok(out)
            }
        }
    }
}

/// Hyperparameters of [`Mfac`], with the reference implementation's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MfacConfig {
    /// Learning rate (default 1e-3).
    pub lr: f32,
    /// Momentum μ of the preconditioned step (default 0).
    pub momentum: f32,
    /// Weight decay added to the gradient (default 0).
    pub weight_decay: f32,
    /// Gradients in the sliding window, m (default 1024).
    pub window: usize,
    /// λ (default 1e-5).
    pub damp: f32,
}

impl Default for MfacConfig {
    fn default() -> Self {
        MfacConfig {
            lr: 1e-3,
            momentum: 0.0,
            weight_decay: 0.0,
            window: 1024,
            damp: 1e-5,
        }
    }
}

/// The M-FAC optimizer: `g ← grad + wd·params`; push g into the window; `u = F⁻¹g`;
/// `v ← μ·v + (1−μ)·u` (v starts at 0); `params ← params − lr·v`.
pub struct Mfac {
    ctx: Context,
    d: usize,
    config: MfacConfig,
    window: SlidingInverse,
    velocity: Option<Tensor>,
}

impl Mfac {
    /// An optimizer for `d` parameters.
    pub fn new(ctx: &Context, d: usize, config: MfacConfig) -> Result<Mfac> {
        const OP: &str = "mfac::Mfac::new";
        for (arg, value) in [
            ("lr", config.lr),
            ("momentum", config.momentum),
            ("weight_decay", config.weight_decay),
        ] {
            if !value.is_finite() {
                return Err(Error::InvalidArgument {
                    op: OP,
                    arg,
                    message: format!("must be finite, got {value}"),
                });
            }
        }
        Ok(Mfac {
            ctx: ctx.clone(),
            d,
            config,
            window: SlidingInverse::new(ctx, d, config.window, config.damp)?,
            velocity: None,
        })
    }

    /// The window of gradients the preconditioner uses.
    pub fn window(&self) -> &SlidingInverse {
        &self.window
    }

    /// One step: `params` (`[d]`) is replaced by the updated parameters. On a bad argument
    /// (`Err` before any work) neither `params` nor the optimizer changed.
    ///
    /// In f32 the step carries the relative error of [`SlidingInverse::ihvp`] on a vector in
    /// the window's span — about `κ·1e-7`, `κ = 1 + |g|²/(m·λ)`: keep λ within a few orders
    /// of magnitude of `|g|²/m` for steps accurate to ~1e-4.
    pub fn step(&mut self, params: &mut Tensor, grad: &Tensor) -> Result<()> {
        const OP: &str = "mfac::Mfac::step";
        for (arg, t) in [("params", &*params), ("grad", grad)] {
            self.ctx.check_owns(OP, arg, t)?;
            if t.shape() != [self.d] {
                return Err(Error::Shape {
                    op: OP,
                    message: format!("`{arg}` must be [d] = [{}], got {:?}", self.d, t.shape()),
                });
            }
        }
        let MfacConfig {
            lr,
            momentum,
            weight_decay,
            ..
        } = self.config;
        let d = self.d;
        // out = α·x + β·y, on whichever path the context runs.
        let axpby = |alpha: f32, x: &Tensor, beta: f32, y: &Tensor| -> Result<Tensor> {
            match &*self.ctx.backend {
                Backend::Cpu(_) => {
                    let out = x
                        .host()
                        .iter()
                        .zip(y.host())
                        .map(|(&x, &y)| alpha as f64 * x as f64 + beta as f64 * y as f64)
                        .collect();
                    self.ctx.host_result(out, &[d])
                }
                Backend::Gpu(gpu) => {
                    let out = self.ctx.output(&[d])?;
                    elementwise(gpu, Op::Axpby(alpha, beta), x, Some(y), &out, 1, d)?;
                    Ok(out)
                }
            }
        };
        let decayed;
        let g = if weight_decay == 0.0 {
            grad
        } else {
            decayed = axpby(1.0, grad, weight_decay, params)?;
            &decayed
        };
        self.window.push(g)?;
        let u = self.window.ihvp(g)?;
        let velocity = match &self.velocity {
            Some(v) => axpby(momentum, v, 1.0 - momentum, &u)?,
            None => axpby(0.0, &u, 1.0 - momentum, &u)?,
        };
        *params = axpby(1.0, params, -lr, &velocity)?;
        self.velocity = Some(velocity);
        Ok(())
    }
}

/// OBS saliency of every weight under a static inverse: `ρ_k = w_k² / (2·[F⁻¹]_kk)`.
pub fn obs_scores(inverse: &StaticInverse, weights: &Tensor) -> Result<Vec<f32>> {
    const OP: &str = "mfac::obs_scores";
    inverse.ctx.check_owns(OP, "weights", weights)?;
    if weights.shape() != [inverse.d] {
        return Err(Error::Shape {
            op: OP,
            message: format!(
                "`weights` must be [d] = [{}], got {:?}",
                inverse.d,
                weights.shape()
            ),
        });
    }
    let diagonal = inverse.inverse_diagonal()?.to_vec()?;
    let w = weights.to_vec()?;
    Ok(w.iter()
        .zip(&diagonal)
        .map(|(&w, &h)| ((w as f64).powi(2) / (2.0 * h as f64)) as f32)
        .collect())
}

/// One OBS pruning step, as the reference code does it: the `count` nonzero weights of
/// lowest [`obs_scores`] are removed and the rest corrected by `δw = F⁻¹·t`,
/// `t_k = −w_k/[F⁻¹]_kk` on the removed k (each removal's own correction, summed); removed
/// weights, and weights that were already 0, are 0 afterwards. Returns the new weights and
/// the removed indices (ascending score).
///
/// Summing single-weight corrections is accurate while the removed weights are few and
/// weakly coupled through F⁻¹; prune gradually (several small steps), as the paper does —
/// `examples/mfac.rs` shows one step of many weights overshooting.
pub fn prune(
    inverse: &StaticInverse,
    weights: &Tensor,
    count: usize,
) -> Result<(Tensor, Vec<usize>)> {
    const OP: &str = "mfac::prune";
    if count > inverse.d {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "count",
            message: format!("is {count}, more than the d = {} weights", inverse.d),
        });
    }
    let scores = obs_scores(inverse, weights)?;
    let w = weights.to_vec()?;
    let mut order: Vec<usize> = (0..inverse.d).filter(|&k| w[k] != 0.0).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order.truncate(count);
    let diagonal = inverse.inverse_diagonal()?.to_vec()?;
    let mut t = vec![0.0f32; inverse.d];
    for &k in &order {
        t[k] = -w[k] / diagonal[k];
    }
    let correction = inverse
        .ihvp(&inverse.ctx.tensor(&t, &[inverse.d])?)?
        .to_vec()?;
    let mut pruned: Vec<f32> = w
        .iter()
        .zip(&correction)
        .map(|(&w, c)| if w == 0.0 { 0.0 } else { w + c })
        .collect();
    for &k in &order {
        pruned[k] = 0.0;
    }
    Ok((inverse.ctx.tensor(&pruned, &[inverse.d])?, order))
}
