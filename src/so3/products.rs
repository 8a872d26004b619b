//! Sparse bilinear products of coefficient vectors: the Clebsch–Gordan tensor product and the
//! direct Gaunt product share one form,
//! `out[i3] = Σ_(i1,i2) T[i1,i2,i3]·x1[i1]·x2[i2]` (flat indices `l² + m + l`),
//! with `T` the CG coefficients of every allowed path, or the Gaunt coefficients
//! `(1/4π)∫ Y_i1·Y_i2·Y_i3 dΩ`.

use std::sync::Arc;

use super::cg::clebsch_gordan;
use super::memo::Memo;
use super::quadrature::sphere_rule;
use super::reference::{dim, spherical_harmonics_f64};

/// Which coefficients a product uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coefficients {
    /// e3nn-jax `clebsch_gordan(l1, l2, l3)` on every path `|l1−l2| ≤ l3 ≤ l1+l2`, weight 1.
    ClebschGordan,
    /// `(1/4π)∫ Y_l1m1·Y_l2m2·Y_l3m3 dΩ`: zero unless l1+l2+l3 is even.
    Gaunt,
}

/// Nonzero terms of a product, grouped by output index: the terms of `out[i3]` are
/// `terms[starts[i3]..starts[i3+1]]`, each `(i1, i2, coefficient)`.
#[derive(Debug)]
pub struct ProductTable {
    pub terms: Vec<(u32, u32, f64)>,
    pub starts: Vec<u32>,
}

impl ProductTable {
    /// The kernel's table of terms: `(i1, i2, coefficient, 0)` as f32, never empty (a
    /// binding may not be).
    pub(crate) fn gpu_terms(&self) -> Vec<[f32; 4]> {
        let mut t: Vec<[f32; 4]> = self
            .terms
            .iter()
            .map(|&(i1, i2, w)| [i1 as f32, i2 as f32, w as f32, 0.0])
            .collect();
        if t.is_empty() {
            t.push([0.0; 4]);
        }
        t
    }
}

/// Gaunt coefficients of `l1 ⊗ l2 → l3`, `[2l1+1][2l2+1][2l3+1]`, by a quadrature rule
/// exact for degree l1+l2+l3 (the harmonics are polynomials of their degree).
fn gaunt(l1: usize, l2: usize, l3: usize) -> Vec<f64> {
    let (points, weights) = sphere_rule(l1 + l2 + l3);
    let lmax = l1.max(l2).max(l3);
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let y = spherical_harmonics_f64(&flat, lmax);
    let d = dim(lmax);
    let (n1, n2, n3) = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1);
    let mut out = vec![0.0; n1 * n2 * n3];
    for (row, w) in y.chunks_exact(d).zip(&weights) {
        for a in 0..n1 {
            for b in 0..n2 {
                let wab = w * row[l1 * l1 + a] * row[l2 * l2 + b];
                for c in 0..n3 {
                    out[(a * n2 + b) * n3 + c] += wab * row[l3 * l3 + c];
                }
            }
        }
    }
    // Quadrature leaves ~1e-17 where the exact value is 0: keep the table sparse.
    out.iter_mut()
        .filter(|v| v.abs() < 1e-13)
        .for_each(|v| *v = 0.0);
    out
}

/// The table of `[0..=l1max] ⊗ [0..=l2max] → [0..=lmax_out]`, computed once and cached.
///
/// # Panics
/// When a degree exceeds [`MAX_L`](super::MAX_L) (the checked entry points are
/// [`cg_product`](super::cg_product) and [`gaunt_product`](super::gaunt_product)).
pub fn product_table(
    kind: Coefficients,
    l1max: usize,
    l2max: usize,
    lmax_out: usize,
) -> Arc<ProductTable> {
    static CACHE: Memo<(Coefficients, usize, usize, usize), ProductTable> = Memo::new();
    CACHE.get_or_build((kind, l1max, l2max, lmax_out), || {
        build_table(kind, l1max, l2max, lmax_out)
    })
}

fn build_table(kind: Coefficients, l1max: usize, l2max: usize, lmax_out: usize) -> ProductTable {
    let mut by_output: Vec<Vec<(u32, u32, f64)>> = vec![Vec::new(); dim(lmax_out)];
    for l1 in 0..=l1max {
        for l2 in 0..=l2max {
            for l3 in l1.abs_diff(l2)..=(l1 + l2).min(lmax_out) {
                let coefficients = match kind {
                    Coefficients::ClebschGordan => {
                        clebsch_gordan(l1, l2, l3).expect("l within MAX_L").to_vec()
                    }
                    Coefficients::Gaunt if (l1 + l2 + l3) % 2 == 1 => continue,
                    Coefficients::Gaunt => gaunt(l1, l2, l3),
                };
                let (n2, n3) = (2 * l2 + 1, 2 * l3 + 1);
                for (at, &w) in coefficients.iter().enumerate() {
                    if w != 0.0 {
                        let (a, b, c) = (at / (n2 * n3), (at / n3) % n2, at % n3);
                        by_output[l3 * l3 + c].push((
                            (l1 * l1 + a) as u32,
                            (l2 * l2 + b) as u32,
                            w,
                        ));
                    }
                }
            }
        }
    }
    let mut starts = vec![0u32];
    let mut terms = Vec::new();
    for group in by_output {
        terms.extend(group);
        starts.push(terms.len() as u32);
    }
    ProductTable { terms, starts }
}

/// The product on the CPU in f64: `x1 [rows, d1]`, `x2 [rows or rows/c, d2]` (one x2 row per
/// `group` consecutive x1 rows when broadcast), `out [rows, d3]`.
pub fn apply(
    table: &ProductTable,
    x1: &[f64],
    d1: usize,
    x2: &[f64],
    d2: usize,
    group: usize,
) -> Vec<f64> {
    let d3 = table.starts.len() - 1;
    let rows = x1.len() / d1;
    let mut out = vec![0.0; rows * d3];
    for row in 0..rows {
        let a = &x1[row * d1..][..d1];
        let b = &x2[(row / group) * d2..][..d2];
        for i3 in 0..d3 {
            let range = table.starts[i3] as usize..table.starts[i3 + 1] as usize;
            out[row * d3 + i3] = table.terms[range]
                .iter()
                .map(|&(i1, i2, w)| w * a[i1 as usize] * b[i2 as usize])
                .sum();
        }
    }
    out
}
