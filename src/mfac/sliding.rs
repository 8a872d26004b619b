//! [`SlidingInverse`]: the inverse Fisher of the last m gradients, for the optimizer.

use super::kernels::{self, Coefficients, Factorization};
use super::{check_damp, check_f32, reference, vectors};
use crate::linalg::elementwise::{elementwise, Op};
use crate::op::{self, Resident};
use crate::{Context, Error, Result, Tensor};

/// The window on the CPU path: the gradients, their Gram matrix and its factors in f64.
struct HostWindow {
    ring: Vec<f32>,
    gram: Vec<f64>,
    factors: Option<reference::Factors>,
}

/// The window on the device.
struct DeviceWindow {
    ring: Tensor,
    gram: Tensor,
    factors: Option<Box<Factorization>>,
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
    state: Resident<HostWindow, DeviceWindow>,
}

impl SlidingInverse {
    /// An empty window of m gradients of length d, λ = `damp`.
    pub fn new(ctx: &Context, d: usize, m: usize, damp: f32) -> Result<SlidingInverse> {
        const OP: &str = "mfac::SlidingInverse::new";
        let _call = crate::call::Call::enter(OP);
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
        let ring_len = crate::tensor::element_count(OP, "m", &[m, d])?;
        let gram_len = crate::tensor::element_count(OP, "m", &[m, m])?;
        let state = Resident::new(
            ctx,
            || {
                // The ring (f32) and the Gram matrix (f64): a request the allocator refuses is
                // an Err, not an abort.
                fn zeros<T: Clone + Default>(len: usize) -> Result<Vec<T>> {
                    let mut v = op::host_vec(OP, "m", len)?;
                    v.resize(len, T::default());
                    Ok(v)
                }
                Ok(HostWindow {
                    ring: zeros(ring_len)?,
                    gram: zeros(gram_len)?,
                    factors: None,
                })
            },
            |gpu| {
                kernels::check_window_count(OP, gpu, m)?;
                Ok(DeviceWindow {
                    ring: ctx.zeros(&[m, d])?,
                    gram: ctx.zeros(&[m, m])?,
                    factors: None,
                })
            },
        )?;
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
        let _call = crate::call::Call::enter(OP);
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
        let damp = self.damp;
        self.state.with_mut(
            &self.ctx,
            |HostWindow {
                 ring,
                 gram,
                 factors,
             }| {
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
                *factors = Some(reference::Factors::new(&leading, count, damp as f64));
                Ok(())
            },
            |DeviceWindow {
                 ring,
                 gram,
                 factors,
             },
             gpu| {
                let bytes = (d * 4) as u64;
                let mut recording = gpu.recording();
                recording.copy(grad.buffer(), 0, ring.buffer(), slot as u64 * bytes, bytes);
                recording.submit()?;
                let how = Coefficients::GramRow {
                    gram: gram.buffer(),
                    slot,
                    stride: m,
                };
                kernels::coefficients(gpu, OP, ring, count, grad, how)?;
                let factored = kernels::factor(gpu, OP, gram.buffer(), count, m, damp)?;
                *factors = Some(Box::new(factored));
                Ok(())
            },
        )?;
        self.count = count;
        self.next = (slot + 1) % m;
        Ok(())
    }

    /// `F⁻¹x = x/λ − Gᵀ·Wᵀ·diag(D)⁻¹·W·G·x` over the gradients in the window, for `x [d]` or
    /// `[k, d]`; same shape out.
    pub fn ihvp(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "mfac::SlidingInverse::ihvp";
        let _call = crate::call::Call::enter(OP);
        let k = vectors(OP, &self.ctx, x, self.d)?;
        let (d, count, damp) = (self.d, self.count, self.damp);
        self.state.with(
            &self.ctx,
            |HostWindow { ring, factors, .. }| {
                op::reserve(OP, "x", x.len())?;
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
            },
            |DeviceWindow { ring, factors, .. }, gpu| {
                let Some(factors) = factors else {
                    return elementwise(
                        &self.ctx,
                        Op::Scale(1.0 / damp),
                        x,
                        None,
                        [k, d],
                        x.shape(),
                    );
                };
                let how = Coefficients::Woodbury(factors);
                let c = kernels::coefficients(gpu, OP, ring, count, x, how)?
                    .ok_or_else(|| Error::gpu("Woodbury coefficients missing"))?;
                let out = gpu.output(x.shape())?;
                let (c, out_buffer) = (c.buffer(), out.buffer());
                kernels::combine(gpu, OP, ring, count, Some(x), c, damp, out_buffer, k)?;
                Ok(out)
            },
        )
    }
}
