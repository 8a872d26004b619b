//! Clebsch–Gordan coefficients in the real basis of e3nn-jax (`clebsch_gordan(l1, l2, l3)`):
//! the SU(2) coefficients (Condon–Shortley, exact from the `wigners` crate) turned real by
//! the complex↔real change of basis with its `(−i)^l` factor, Frobenius norm 1.

use std::sync::Arc;

use num_complex::Complex64;

use super::degrees::MAX_L;
use super::memo::Memo;

/// `Q` with `Y_complex = Q · Y_real` for degree l: rows indexed by complex m, columns by the
/// real index `m + l`, times `(−i)^l`, which makes the coefficients below real.
pub(crate) fn change_basis_real_to_complex(l: usize) -> Vec<Complex64> {
    let n = 2 * l + 1;
    let li = l as i64;
    let mut q = vec![Complex64::new(0.0, 0.0); n * n];
    let at = |m: i64, column: i64| ((li + m) as usize) * n + (li + column) as usize;
    let h = std::f64::consts::FRAC_1_SQRT_2;
    for m in -li..0 {
        q[at(m, m.abs())] = Complex64::new(h, 0.0);
        q[at(m, -m.abs())] = Complex64::new(0.0, -h);
    }
    q[at(0, 0)] = Complex64::new(1.0, 0.0);
    for m in 1..=li {
        let sign = if m % 2 == 0 { 1.0 } else { -1.0 };
        q[at(m, m)] = Complex64::new(sign * h, 0.0);
        q[at(m, -m)] = Complex64::new(0.0, sign * h);
    }
    let phase = Complex64::new(0.0, -1.0).powu(l as u32);
    q.iter().map(|&v| v * phase).collect()
}

/// SU(2) coefficients `⟨l1 m1 l2 m2 | l3 m3⟩ / √(2l3+1)`, indexed `[m1+l1][m2+l2][m3+l3]`.
fn su2_clebsch_gordan(l1: usize, l2: usize, l3: usize) -> Vec<f64> {
    let (n1, n2, n3) = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1);
    let mut c = vec![0.0; n1 * n2 * n3];
    let (a, b, d) = (l1 as i32, l2 as i32, l3 as i32);
    for m1 in -a..=a {
        for m2 in -b..=b {
            let m3 = m1 + m2;
            if m3.abs() <= d {
                let value = wigners::clebsch_gordan(l1 as u32, m1, l2 as u32, m2, l3 as u32, m3);
                c[((m1 + a) as usize * n2 + (m2 + b) as usize) * n3 + (m3 + d) as usize] =
                    value / (n3 as f64).sqrt();
            }
        }
    }
    c
}

/// The real coefficients `C[i][j][k]` (`(2l1+1)×(2l2+1)×(2l3+1)`, row-major), zero unless
/// `|l1−l2| ≤ l3 ≤ l1+l2`: `C_real[j,l,m] = Σ Q1[i,j]·Q2[k,l]·conj(Q3[n,m])·C_su2[i,k,n]`.
fn compute(l1: usize, l2: usize, l3: usize) -> Vec<f64> {
    let (n1, n2, n3) = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1);
    if l3 < l1.abs_diff(l2) || l3 > l1 + l2 {
        return vec![0.0; n1 * n2 * n3];
    }
    let su2 = su2_clebsch_gordan(l1, l2, l3);
    let (q1, q2, q3) = (
        change_basis_real_to_complex(l1),
        change_basis_real_to_complex(l2),
        change_basis_real_to_complex(l3),
    );
    let mut out = vec![0.0; n1 * n2 * n3];
    for j in 0..n1 {
        for l in 0..n2 {
            for m in 0..n3 {
                let mut sum = Complex64::new(0.0, 0.0);
                for i in 0..n1 {
                    for k in 0..n2 {
                        for n in 0..n3 {
                            let c = su2[(i * n2 + k) * n3 + n];
                            if c != 0.0 {
                                sum += q1[i * n1 + j] * q2[k * n2 + l] * q3[n * n3 + m].conj() * c;
                            }
                        }
                    }
                }
                debug_assert!(sum.im.abs() < 1e-10, "({l1},{l2},{l3}) not real: {sum}");
                out[(j * n2 + l) * n3 + m] = sum.re;
            }
        }
    }
    out
}

/// Real Clebsch–Gordan coefficients of e3nn-jax for `l1 ⊗ l2 → l3`, shape
/// `[2l1+1][2l2+1][2l3+1]` row-major, computed once per triple and cached. Degrees above
/// [`MAX_L`] give `None`.
pub fn clebsch_gordan(l1: usize, l2: usize, l3: usize) -> Option<Arc<Vec<f64>>> {
    if l1.max(l2).max(l3) > MAX_L {
        return None;
    }
    static CACHE: Memo<(usize, usize, usize), Vec<f64>> = Memo::new();
    Some(CACHE.get_or_build((l1, l2, l3), || compute(l1, l2, l3)))
}
