//! The sparse products in f64 on the CPU: a table applied to rows of coefficients, with or
//! without path weights, and the weights' gradient.

use super::tables::{PathTable, ProductTable};

/// Per-path weights of a product's rows: `[rows, paths]`, or `[channels, paths]` shared by
/// every sample (row r then uses channel `r % channels`).
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a> {
    pub data: &'a [f64],
    pub paths: usize,
    pub shared_channels: Option<usize>,
}

impl Weights<'_> {
    fn row(&self, row: usize) -> &[f64] {
        let r = self.shared_channels.map_or(row, |c| row % c);
        &self.data[r * self.paths..][..self.paths]
    }
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
    apply_weighted(table, x1, d1, x2, d2, group, None)
}

/// [`apply`] with each term multiplied by its path's weight of the row:
/// `out[r, i3] = Σ_(i1, i2, w, p) w·weights[r, p]·x1[r, i1]·x2[r / group, i2]`.
pub fn apply_weighted(
    table: &ProductTable,
    x1: &[f64],
    d1: usize,
    x2: &[f64],
    d2: usize,
    group: usize,
    weights: Option<&Weights<'_>>,
) -> Vec<f64> {
    let d3 = table.starts.len() - 1;
    let rows = x1.len() / d1;
    let mut out = vec![0.0; rows * d3];
    for row in 0..rows {
        let a = &x1[row * d1..][..d1];
        let b = &x2[(row / group) * d2..][..d2];
        let w_row = weights.map(|w| w.row(row));
        for i3 in 0..d3 {
            let range = table.starts[i3] as usize..table.starts[i3 + 1] as usize;
            out[row * d3 + i3] = table.terms[range.clone()]
                .iter()
                .zip(&table.paths[range])
                .map(|(&(i1, i2, w), &p)| {
                    let weight = w_row.map_or(1.0, |r| r[p as usize]);
                    w * weight * a[i1 as usize] * b[i2 as usize]
                })
                .sum();
        }
    }
    out
}

/// The gradient of the path weights: `∂w[r, p] = Σ_{terms of p} C·x1[r, i1]·x2[r / group, i2]·g[r, i3]`
/// (`[rows, paths]`, before any sum over the samples that share the weights).
pub fn path_gradient(
    table: &PathTable,
    (x1, d1): (&[f64], usize),
    (x2, d2, group): (&[f64], usize, usize),
    (g, d3): (&[f64], usize),
) -> Vec<f64> {
    let paths = table.starts.len() - 1;
    let rows = x1.len() / d1;
    let mut out = vec![0.0; rows * paths];
    for row in 0..rows {
        let (a, b, c) = (
            &x1[row * d1..][..d1],
            &x2[(row / group) * d2..][..d2],
            &g[row * d3..][..d3],
        );
        for p in 0..paths {
            let range = table.starts[p] as usize..table.starts[p + 1] as usize;
            out[row * paths + p] = table.terms[range]
                .iter()
                .map(|&([i1, i2, i3], w)| w * a[i1 as usize] * b[i2 as usize] * c[i3 as usize])
                .sum();
        }
    }
    out
}
