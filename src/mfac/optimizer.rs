//! [`Mfac`]: the M-FAC optimizer over a [`SlidingInverse`].

use super::SlidingInverse;
use crate::linalg::elementwise::{elementwise, Op};
use crate::{Context, Error, Result, Tensor};

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
        let _call = crate::call::Call::enter(OP);
        let invalid = |arg, message: String| {
            Err(Error::InvalidArgument {
                op: OP,
                arg,
                message,
            })
        };
        // A step size must be positive, momentum a fraction, decay a shrinkage: a negative
        // lr or decay would ascend, momentum ≥ 1 would never forget.
        if !(config.lr > 0.0 && config.lr.is_finite()) {
            return invalid(
                "lr",
                format!("must be positive and finite, got {}", config.lr),
            );
        }
        if !(0.0..1.0).contains(&config.momentum) {
            return invalid(
                "momentum",
                format!("must be in [0, 1), got {}", config.momentum),
            );
        }
        if !(config.weight_decay >= 0.0 && config.weight_decay.is_finite()) {
            return invalid(
                "weight_decay",
                format!(
                    "must be non-negative and finite, got {}",
                    config.weight_decay
                ),
            );
        }
        if config.window == 0 {
            return invalid("window", "must be at least 1".into());
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
        let _call = crate::call::Call::enter(OP);
        for (arg, t) in [("params", &*params), ("grad", grad)] {
            self.ctx.check_owns(OP, arg, t)?;
            if t.shape() != [self.d] {
                return Err(Error::Shape {
                    op: OP,
                    message: format!("`{arg}` must be [d] = [{}], got {:?}", self.d, t.shape()),
                });
            }
            // f32 whatever the weight decay (the window keeps f32 gradients).
            super::check_f32(OP, arg, t)?;
        }
        let MfacConfig {
            lr,
            momentum,
            weight_decay,
            ..
        } = self.config;
        let d = self.d;
        // out = α·x + β·y (f64 on the CPU path).
        let axpby = |alpha: f32, x: &Tensor, beta: f32, y: &Tensor| {
            elementwise(&self.ctx, Op::Axpby(alpha, beta), x, Some(y), [1, d], &[d])
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
