//! The shape of a GEMM, `C[m,n] = op(A)[m,k]·op(B)[k,n]`: its checks, its strides, and the
//! tiles of C it gives the tiled kernel.

use super::kernels::TILE;
use crate::{Error, Result};

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
    pub(super) fn a_index(&self, i: usize, kk: usize) -> usize {
        let (stride_m, stride_k) = self.a_strides();
        i * stride_m + kk * stride_k
    }

    /// Where `op(B)[kk, j]` is stored in B.
    pub(super) fn b_index(&self, kk: usize, j: usize) -> usize {
        let (stride_k, stride_n) = self.b_strides();
        kk * stride_k + j * stride_n
    }

    /// `(stride of i, stride of k)` of `op(A)` in A: how the shaders express the transpose.
    pub(super) fn a_strides(&self) -> (usize, usize) {
        if self.transpose_a {
            (1, self.m)
        } else {
            (self.k, 1)
        }
    }

    /// `(stride of k, stride of j)` of `op(B)` in B.
    pub(super) fn b_strides(&self) -> (usize, usize) {
        if self.transpose_b {
            (1, self.k)
        } else {
            (self.n, 1)
        }
    }

    /// The tiled kernel's 64×64 tiles of C, `⌈m/64⌉·⌈n/64⌉`: its workgroups per slice of k.
    ///
    /// ```
    /// use wgkernels::linalg::Gemm;
    /// let g = Gemm::of("example", &[100, 8], &[8, 130], false, false)?; // C is 100×130
    /// assert_eq!(g.tiles(), 2 * 3);
    /// # Ok::<(), wgkernels::Error>(())
    /// ```
    pub fn tiles(&self) -> usize {
        self.m.div_ceil(TILE) * self.n.div_ceil(TILE)
    }
}
