//! linear's double backward, and gather and scatter_sum as each other's.

use super::*;

/// `linear` in f64: `out[s,o,k] = Σ_i w[l(k),i,o]·x[s,i,k]` (transposed: `Σ_o w[l,i,o]·x[s,o,k]`).
fn linear_f64(
    x: &[f64],
    w: &[f64],
    [n, c_in, c_out, lmax]: [usize; 4],
    transposed: bool,
) -> Vec<f64> {
    let d = reference::dim(lmax);
    let (from, to) = if transposed {
        (c_out, c_in)
    } else {
        (c_in, c_out)
    };
    let mut out = vec![0.0; n * to * d];
    for s in 0..n {
        for o in 0..to {
            for k in 0..d {
                let l = (k as f64).sqrt() as usize;
                out[(s * to + o) * d + k] = (0..from)
                    .map(|i| {
                        let weight = match transposed {
                            true => w[(l * c_in + o) * c_out + i],
                            false => w[(l * c_in + i) * c_out + o],
                        };
                        weight * x[(s * from + i) * d + k]
                    })
                    .sum();
            }
        }
    }
    out
}

/// `∂w[l,i,o] = Σ_s Σ_k x[s,i,k]·g[s,o,k]`.
fn linear_weight_gradient_f64(
    x: &[f64],
    g: &[f64],
    [n, c_in, c_out, lmax]: [usize; 4],
) -> Vec<f64> {
    let d = reference::dim(lmax);
    let mut out = vec![0.0; (lmax + 1) * c_in * c_out];
    for s in 0..n {
        for i in 0..c_in {
            for o in 0..c_out {
                for k in 0..d {
                    let l = (k as f64).sqrt() as usize;
                    out[(l * c_in + i) * c_out + o] +=
                        x[(s * c_in + i) * d + k] * g[(s * c_out + o) * d + k];
                }
            }
        }
    }
    out
}

#[test]
fn linear_double_backward_matches_finite_differences_and_the_reference() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for dims @ [n, c_in, c_out, lmax] in [[1, 1, 1, 0], [3, 5, 2, 2], [70, 3, 7, 1]] {
            let d = reference::dim(lmax);
            let mut draw = |len| common::uniform(&mut rng, len);
            let (x, w, g) = (
                draw(n * c_in * d),
                draw((lmax + 1) * c_in * c_out),
                draw(n * c_out * d),
            );
            let (ddx, ddw) = (draw(n * c_in * d), draw((lmax + 1) * c_in * c_out));
            let [x64, w64, g64, ddx64, ddw64] = [&x, &w, &g, &ddx, &ddw].map(|v| wide(v));
            // The pairing ⟨dd, backward(x, w, g)⟩ and its finite differences (small sizes).
            let pairing = |x: &[f64], w: &[f64], g: &[f64]| {
                dot(&ddx64, &linear_f64(g, w, dims, true))
                    + dot(&ddw64, &linear_weight_gradient_f64(x, g, dims))
            };
            let add = |a: Vec<f64>, b: Vec<f64>| {
                a.iter().zip(&b).map(|(x, y)| x + y).collect::<Vec<f64>>()
            };
            let want = [
                linear_f64(&g64, &ddw64, dims, true),
                linear_weight_gradient_f64(&ddx64, &g64, dims),
                add(
                    linear_f64(&ddx64, &w64, dims, false),
                    linear_f64(&x64, &ddw64, dims, false),
                ),
            ];
            if n < 10 {
                let fd = [
                    central_differences(|v| pairing(v, &w64, &g64), &x64),
                    central_differences(|v| pairing(&x64, v, &g64), &w64),
                    central_differences(|v| pairing(&x64, &w64, v), &g64),
                ];
                for (i, what) in ["x", "w", "d_out"].iter().enumerate() {
                    let e = common::relative_error_f64(&want[i], &fd[i]);
                    assert!(
                        e < FD_BOUND || want[i].iter().all(|&v| v == 0.0),
                        "{dims:?} {what}: {e:e}"
                    );
                }
            }
            let t = |data: &[f32], shape: &[usize]| ctx.tensor(data, shape).unwrap();
            let dd = so3::LinearGrads {
                x: t(&ddx, &[n, c_in, d]),
                w: t(&ddw, &[lmax + 1, c_in, c_out]),
            };
            let got = so3::linear_double_backward(
                &ctx,
                &t(&x, &[n, c_in, d]),
                &t(&w, &[lmax + 1, c_in, c_out]),
                &t(&g, &[n, c_out, d]),
                &dd,
            )
            .unwrap();
            let label = format!("{} linear {dims:?}", ctx.device_name());
            check(&format!("{label} x"), &got.x, &want[0], BOUND);
            check(&format!("{label} w"), &got.w, &want[1], BOUND);
            check(&format!("{label} d_out"), &got.d_out, &want[2], BOUND);
        }
    }
}

/// gather and scatter_sum are linear and each other's adjoint: the backward of gather is
/// scatter_sum of the upstream gradient and vice versa, so the double backward of either,
/// for a cotangent dd of its backward's output, is the op itself applied to dd (and nothing
/// flows to the index). Checked on both paths as ⟨dd, scatter(g)⟩ = ⟨gather(dd), g⟩.
#[test]
fn gather_and_scatter_are_each_others_double_backward() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let (nodes, edges, width) = (7, 23, 5);
        let index: Vec<u32> = (0..edges)
            .map(|_| rng.random_range(0..nodes as u32))
            .collect();
        let index = graph::Index::new(&ctx, &index, nodes).unwrap();
        let table = common::uniform(&mut rng, nodes * width);
        let g = common::uniform(&mut rng, edges * width);
        let t = |data: &[f32], shape: &[usize]| ctx.tensor(data, shape).unwrap();
        // gather's backward is scatter_sum(g); its double backward along dd is gather(dd).
        let backward = graph::scatter_sum(&ctx, &t(&g, &[edges, width]), &index).unwrap();
        let dd = t(&table, &[nodes, width]);
        let second = graph::gather(&ctx, &dd, &index).unwrap();
        let lhs = dot(&wide(&table), &wide(&backward.to_vec().unwrap()));
        let rhs = dot(&wide(&second.to_vec().unwrap()), &wide(&g));
        assert!(
            (lhs - rhs).abs() < 1e-5 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }
}
