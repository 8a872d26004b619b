//! Degrees and coefficient axes: the largest degree, the width `(l+1)²` of a coefficient
//! axis, and the checks every SO(3) entry point makes of them.

use crate::{Error, Result};

/// Largest degree the SO(3) module accepts.
pub const MAX_L: usize = 24;

/// `(lmax+1)²`: coefficients of degrees 0..=lmax.
pub fn dim(lmax: usize) -> usize {
    (lmax + 1) * (lmax + 1)
}

/// `Ok` when degree `l` (the argument `arg` of `op`) is at most [`MAX_L`].
pub(crate) fn check_degree(op: &'static str, arg: &'static str, l: usize) -> Result<()> {
    if l > MAX_L {
        return Err(Error::InvalidArgument {
            op,
            arg,
            message: format!("must be at most {MAX_L}, got {l}"),
        });
    }
    Ok(())
}

/// The degree of a coefficient axis of `(l+1)²` entries: the last dimension of `shape`.
pub(crate) fn degree(op: &'static str, arg: &'static str, shape: &[usize]) -> Result<usize> {
    let d = *shape.last().unwrap_or(&0);
    let side = (d as f64).sqrt().round() as usize;
    if side == 0 || side * side != d {
        return Err(Error::Shape {
            op,
            message: format!(
                "the last dimension of `{arg}` {shape:?} must be (l+1)² for some l, got {d}"
            ),
        });
    }
    let l = side - 1;
    if l > MAX_L {
        return Err(Error::InvalidArgument {
            op,
            arg,
            message: format!("has degree {l} above {MAX_L}"),
        });
    }
    Ok(l)
}
