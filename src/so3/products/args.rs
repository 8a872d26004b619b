//! The argument checks the products share: inputs, path weights and upstream gradients.

use crate::so3::degrees::{check_degree, degree};
use crate::{Context, Error, Result, Tensor};

/// Checks `x1 [n,c,(l1+1)²]`, `x2 [n,c or 1,(l2+1)²]`; returns `(n, c, l1, l2, broadcast)`.
pub(crate) fn product_args(
    ctx: &Context,
    op: &'static str,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
) -> Result<(usize, usize, usize, usize, bool)> {
    ctx.check_owns(op, "x1", x1)?;
    ctx.check_owns(op, "x2", x2)?;
    let (&[n, c, _], &[n2, c2, _]) = (x1.shape(), x2.shape()) else {
        return Err(Error::Shape {
            op,
            message: format!(
                "`x1` {:?} and `x2` {:?} must be [n, c, (l+1)²]",
                x1.shape(),
                x2.shape()
            ),
        });
    };
    if n2 != n || (c2 != c && c2 != 1) {
        return Err(Error::Shape {
            op,
            message: format!(
                "`x2` {:?} must be [n, c, ·] or [n, 1, ·] for `x1` {:?}",
                x2.shape(),
                x1.shape()
            ),
        });
    }
    check_degree(op, "lmax_out", lmax_out)?;
    let l1 = degree(op, "x1", x1.shape())?;
    let l2 = degree(op, "x2", x2.shape())?;
    Ok((n, c, l1, l2, c2 == 1 && c != 1))
}

/// Checks `weights [n, c, P]` or `[1, c, P]` for P = [`paths`](super::tables::paths)`(l1, l2, lmax_out).len()`;
/// returns whether they are shared by the samples.
pub(crate) fn weight_args(
    ctx: &Context,
    op: &'static str,
    weights: &Tensor,
    [n, c]: [usize; 2],
    count: usize,
) -> Result<bool> {
    ctx.check_owns(op, "weights", weights)?;
    match *weights.shape() {
        [wn, wc, p] if (wn == n || wn == 1) && wc == c && p == count => Ok(wn == 1 && n != 1),
        _ => Err(Error::Shape {
            op,
            message: format!(
                "`weights` {:?} must be [n, c, P] or [1, c, P] = [{n} or 1, {c}, {count}] \
                 ({count} paths, see so3::paths)",
                weights.shape()
            ),
        }),
    }
}

/// Checks that `d_out` has the product's output shape.
pub(crate) fn check_d_out(
    ctx: &Context,
    op: &'static str,
    d_out: &Tensor,
    shape: [usize; 3],
) -> Result<()> {
    let what = "the output's shape [n, c, (lmax_out+1)²]";
    ctx.check_shape(op, "d_out", d_out, &shape, what)
}
