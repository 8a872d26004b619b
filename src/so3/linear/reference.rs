//! [`linear`](super::linear) and the gradient of its weights in f64.

use crate::so3::degrees::dim;

/// `so3::linear` in f64: `out[n,o,l,m] = Σ_i w[l,i,o]·x[n,i,l,m]` for `x [n, c_in, dim]`; with
/// `transposed`, x is `[n, c_out, dim]` and `out[n,i,l,m] = Σ_o w[l,i,o]·x[n,o,l,m]` (the
/// input gradient).
pub fn linear(
    x: &[f32],
    w: &[f32],
    [n, c_in, c_out]: [usize; 3],
    lmax: usize,
    transposed: bool,
) -> Vec<f64> {
    let d = dim(lmax);
    let (from, to) = if transposed {
        (c_out, c_in)
    } else {
        (c_in, c_out)
    };
    let mut out = vec![0.0; n * to * d];
    for s in 0..n {
        for o in 0..to {
            for l in 0..=lmax {
                for index in l * l..(l + 1) * (l + 1) {
                    out[(s * to + o) * d + index] = (0..from)
                        .map(|k| {
                            let weight = if transposed {
                                w[(l * c_in + o) * c_out + k]
                            } else {
                                w[(l * c_in + k) * c_out + o]
                            };
                            weight as f64 * x[(s * from + k) * d + index] as f64
                        })
                        .sum();
                }
            }
        }
    }
    out
}

/// `∂w[l,i,o] = Σ_n Σ_m x[n,i,l,m]·g[n,o,l,m]` in f64 (`[lmax+1, c_in, c_out]`).
pub fn linear_weight_gradient(
    x: &[f32],
    g: &[f32],
    [n, c_in, c_out]: [usize; 3],
    lmax: usize,
) -> Vec<f64> {
    let d = dim(lmax);
    let mut out = vec![0.0; (lmax + 1) * c_in * c_out];
    for l in 0..=lmax {
        for i in 0..c_in {
            for o in 0..c_out {
                out[(l * c_in + i) * c_out + o] = (0..n)
                    .flat_map(|s| (l * l..(l + 1) * (l + 1)).map(move |index| (s, index)))
                    .map(|(s, index)| {
                        x[(s * c_in + i) * d + index] as f64 * g[(s * c_out + o) * d + index] as f64
                    })
                    .sum();
            }
        }
    }
    out
}
