//! The coefficient tables of the sparse products. The Clebsch–Gordan tensor product and the
//! direct Gaunt product share one form, `out[i3] = Σ_(i1,i2) T[i1,i2,i3]·x1[i1]·x2[i2]` (flat
//! indices `l² + m + l`), with `T` the CG coefficients of every allowed path, or the Gaunt
//! coefficients `(1/4π)∫ Y_i1·Y_i2·Y_i3 dΩ`; the tables hold T's nonzero terms grouped by the
//! index each application sums into, and by path for the weights' gradient.

use std::sync::Arc;

use crate::so3::clebsch_gordan::clebsch_gordan;
use crate::so3::degrees::dim;
use crate::so3::harmonics::reference::spherical_harmonics_f64;
use crate::so3::memo::Memo;
use crate::so3::quadrature::sphere_rule;

/// The paths of a product of degrees `0..=l1max ⊗ 0..=l2max → 0..=lmax_out`, in the order of
/// the weights of [`weighted_cg_product`](crate::so3::weighted_cg_product): `(l1, l2, l3)` with l1, then l2, then l3 ascending
/// over `|l1 − l2| ≤ l3 ≤ min(l1 + l2, lmax_out)`.
///
/// ```
/// assert_eq!(wgkernels::so3::paths(1, 1, 1), vec![[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 1]]);
/// ```
pub fn paths(l1max: usize, l2max: usize, lmax_out: usize) -> Vec<[usize; 3]> {
    let mut out = Vec::new();
    for l1 in 0..=l1max {
        for l2 in 0..=l2max {
            for l3 in l1.abs_diff(l2)..=(l1 + l2).min(lmax_out) {
                out.push([l1, l2, l3]);
            }
        }
    }
    out
}

/// Which coefficients a product uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coefficients {
    /// e3nn-jax `clebsch_gordan(l1, l2, l3)` on every path `|l1−l2| ≤ l3 ≤ l1+l2`, weight 1.
    ClebschGordan,
    /// `(1/4π)∫ Y_l1m1·Y_l2m2·Y_l3m3 dΩ`: zero unless l1+l2+l3 is even.
    Gaunt,
}

/// Nonzero terms of a product, grouped by output index: the terms of `out[i3]` are
/// `terms[starts[i3]..starts[i3+1]]`, each `(i1, i2, coefficient)`, and `paths[t]` is the
/// path (the position of its `(l1, l2, l3)` in [`paths`]) of term t.
///
/// A table [`grouped`] by x1's or x2's index instead is the same sum read for a gradient:
/// its terms are `(i3, i2, ·)` (resp. `(i3, i1, ·)`), so that applying it to `(∂out, x2)`
/// (resp. `(∂out, x1)`) gives `∂x1` (resp. `∂x2`).
#[derive(Debug)]
pub struct ProductTable {
    pub terms: Vec<(u32, u32, f64)>,
    pub paths: Vec<u32>,
    pub starts: Vec<u32>,
}

impl ProductTable {
    /// The kernel's table of terms: `(i1, i2, coefficient, path)` as f32, never empty (a
    /// binding may not be).
    pub(crate) fn gpu_terms(&self) -> Vec<[f32; 4]> {
        let mut t: Vec<[f32; 4]> = self
            .terms
            .iter()
            .zip(&self.paths)
            .map(|(&(i1, i2, w), &path)| [i1 as f32, i2 as f32, w as f32, path as f32])
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
/// When a degree exceeds [`MAX_L`](crate::so3::MAX_L) (the checked entry points are
/// [`cg_product`](crate::so3::cg_product) and [`gaunt_product`](crate::so3::gaunt_product)).
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
    let mut by_output: Vec<Vec<(u32, u32, f64, u32)>> = vec![Vec::new(); dim(lmax_out)];
    let mut path = 0u32;
    for l1 in 0..=l1max {
        for l2 in 0..=l2max {
            for l3 in l1.abs_diff(l2)..=(l1 + l2).min(lmax_out) {
                path += 1;
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
                            path - 1,
                        ));
                    }
                }
            }
        }
    }
    group_terms(by_output)
}

/// A table from its terms `(a, b, coefficient, path)` grouped by output index.
fn group_terms(groups: Vec<Vec<(u32, u32, f64, u32)>>) -> ProductTable {
    let mut table = ProductTable {
        terms: Vec::new(),
        paths: Vec::new(),
        starts: vec![0u32],
    };
    for group in groups {
        for (a, b, w, path) in group {
            table.terms.push((a, b, w));
            table.paths.push(path);
        }
        table.starts.push(table.terms.len() as u32);
    }
    table
}

/// The index a table's terms are grouped by: the one its application sums into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grouping {
    /// `out[i3]`: the product.
    Output,
    /// `∂x1[i1]`: terms `(i3, i2, ·)`.
    X1,
    /// `∂x2[i2]`: terms `(i3, i1, ·)`.
    X2,
}

/// [`product_table`] regrouped (see [`ProductTable`]), computed once and cached.
pub fn grouped(
    kind: Coefficients,
    l1max: usize,
    l2max: usize,
    lmax_out: usize,
    grouping: Grouping,
) -> Arc<ProductTable> {
    static CACHE: Memo<(Coefficients, usize, usize, usize, Grouping), ProductTable> = Memo::new();
    if grouping == Grouping::Output {
        return product_table(kind, l1max, l2max, lmax_out);
    }
    CACHE.get_or_build((kind, l1max, l2max, lmax_out, grouping), || {
        let table = product_table(kind, l1max, l2max, lmax_out);
        let size = dim(if grouping == Grouping::X1 {
            l1max
        } else {
            l2max
        });
        let mut groups: Vec<Vec<(u32, u32, f64, u32)>> = vec![Vec::new(); size];
        for i3 in 0..table.starts.len() - 1 {
            for t in table.starts[i3] as usize..table.starts[i3 + 1] as usize {
                let ((i1, i2, w), path) = (table.terms[t], table.paths[t]);
                match grouping {
                    Grouping::X1 => groups[i1 as usize].push((i3 as u32, i2, w, path)),
                    _ => groups[i2 as usize].push((i3 as u32, i1, w, path)),
                }
            }
        }
        group_terms(groups)
    })
}

/// The terms of each path: path p's are `terms[starts[p]..starts[p+1]]`, each
/// `([i1, i2, i3], coefficient)` — the table of the weights' gradient.
#[derive(Debug)]
pub struct PathTable {
    pub terms: Vec<([u32; 3], f64)>,
    pub starts: Vec<u32>,
}

/// The Clebsch–Gordan terms grouped by path, computed once and cached.
pub fn path_table(l1max: usize, l2max: usize, lmax_out: usize) -> Arc<PathTable> {
    static CACHE: Memo<(usize, usize, usize), PathTable> = Memo::new();
    CACHE.get_or_build((l1max, l2max, lmax_out), || {
        let table = product_table(Coefficients::ClebschGordan, l1max, l2max, lmax_out);
        let count = paths(l1max, l2max, lmax_out).len();
        let mut groups: Vec<Vec<([u32; 3], f64)>> = vec![Vec::new(); count];
        for i3 in 0..table.starts.len() - 1 {
            for t in table.starts[i3] as usize..table.starts[i3 + 1] as usize {
                let (i1, i2, w) = table.terms[t];
                groups[table.paths[t] as usize].push(([i1, i2, i3 as u32], w));
            }
        }
        let mut out = PathTable {
            terms: Vec::new(),
            starts: vec![0],
        };
        for group in groups {
            out.terms.extend(group);
            out.starts.push(out.terms.len() as u32);
        }
        out
    })
}

impl PathTable {
    /// The kernel's table: `(i1, i2, i3, coefficient)` as f32, never empty.
    pub(crate) fn gpu_terms(&self) -> Vec<[f32; 4]> {
        let mut t: Vec<[f32; 4]> = self
            .terms
            .iter()
            .map(|&([i1, i2, i3], w)| [i1 as f32, i2 as f32, i3 as f32, w as f32])
            .collect();
        if t.is_empty() {
            t.push([0.0; 4]);
        }
        t
    }
}
