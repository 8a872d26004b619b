//! linalg's GEMM and DoRA: the weight norms, forwards, backwards and the compose.

use proptest::prelude::*;
use wgkernels::{dora, linalg, Context, Result, Tensor};

use crate::check::{check, values};
use crate::strategies::{case, dim, near, one_in, Arg, Case};

#[test]
fn linalg_matmul() {
    let layout = (dim(), dim(), dim(), near())
        .prop_map(|(m, k, n, nk)| ((), [("a", vec![m, k]), ("b", vec![nk.of(k), n])]));
    check(case(layout), |p, case| {
        let [a, b] = &case.args;
        p.both("linalg::matmul", case.extreme, &|c| {
            Ok(vec![values(linalg::matmul(
                c,
                &a.on(c)?,
                &b.on(c)?,
                false,
                false,
            ))?])
        })
    });
}

/// DoRA's scale s.
#[derive(Clone, Copy, Debug)]
struct Scale(f32);

/// 0 one case in 6 (the adapter switched off: no GEMM walks k then, on either path), else
/// 0.5; shrinks to 0.5.
fn scale() -> impl Strategy<Value = Scale> {
    one_in(6).prop_map(|off| Scale(if off { 0.0 } else { 0.5 }))
}

/// A DoRA layer: W, A, B, the magnitude, x and ∂y (A and ∂y now and then mismatched).
fn layer() -> impl Strategy<Value = Case<Scale, 6>> {
    let layout = (dim(), dim(), dim(), dim(), near(), near(), scale()).prop_map(
        |(d_out, d_in, r, rows, near_in, near_out, s)| {
            let shapes = [
                ("w", vec![d_out, d_in]),
                ("a", vec![r, near_in.of(d_in)]),
                ("b", vec![d_out, r]),
                ("magnitude", vec![d_out]),
                ("x", vec![rows, d_in]),
                ("dy", vec![rows, near_out.of(d_out)]),
            ];
            (s, shapes)
        },
    );
    case(layout)
}

/// Whether values go uncompared: extreme ones, or where a row of W + s·B·A nearly cancels (the
/// factored norm keeps fewer digits in f32 than the f64 path there, DoRA's documented trade,
/// dora::weight_norm_factored): values are compared only away from that corner.
fn dora_extreme(case: &Case<Scale, 6>) -> bool {
    let [w, a, b, ..] = &case.args;
    case.extreme || cancelling_rows(w, a, b, case.params.0)
}

/// `dora::weight_norm` and `weight_norm_dense`.
type WeightNorm = fn(&Context, &Tensor, &Tensor, &Tensor, f32) -> Result<Tensor>;
/// `dora::forward` and `forward_dense`.
type Forward = fn(&Context, &Tensor, &Tensor, &Tensor, &Tensor, &Tensor, f32) -> Result<Tensor>;

/// The fused, factored and PEFT's dense forms take the same arguments.
#[test]
fn dora_weight_norm() {
    check(layer(), |p, case| {
        let [w, la, lb, ..] = &case.args;
        let Scale(scale) = case.params;
        let weight_norms = [
            ("dora::weight_norm", dora::weight_norm as WeightNorm),
            ("dora::weight_norm_factored", dora::weight_norm_factored),
            ("dora::weight_norm_dense", dora::weight_norm_dense),
        ];
        for (name, weight_norm) in weight_norms {
            p.both(name, dora_extreme(&case), &|c| {
                Ok(vec![values(weight_norm(
                    c,
                    &w.on(c)?,
                    &la.on(c)?,
                    &lb.on(c)?,
                    scale,
                ))?])
            })?;
        }
        Ok(())
    });
}

#[test]
fn dora_forward() {
    check(layer(), |p, case| {
        let [w, la, lb, mag, x, _] = &case.args;
        let Scale(scale) = case.params;
        let forwards = [
            ("dora::forward", dora::forward as Forward),
            ("dora::forward_dense", dora::forward_dense),
        ];
        for (name, forward) in forwards {
            p.both(name, dora_extreme(&case), &|c| {
                Ok(vec![values(forward(
                    c,
                    &x.on(c)?,
                    &w.on(c)?,
                    &la.on(c)?,
                    &lb.on(c)?,
                    &mag.on(c)?,
                    scale,
                ))?])
            })?;
        }
        Ok(())
    });
}

/// The four gradients of a DoRA layer backward, read back.
fn layer_grads(gr: dora::LayerGrads) -> Result<Vec<Vec<f32>>> {
    Ok(vec![
        gr.x.to_vec()?,
        gr.a.to_vec()?,
        gr.b.to_vec()?,
        gr.magnitude.to_vec()?,
    ])
}

#[test]
fn dora_backward() {
    check(layer(), |p, case| {
        let [w, la, lb, mag, x, dy] = &case.args;
        let Scale(scale) = case.params;
        let extreme = dora_extreme(&case);
        for norm in [dora::NormGradient::Detached, dora::NormGradient::Exact] {
            p.both(&format!("dora::backward ({norm:?})"), extreme, &|c| {
                layer_grads(dora::backward(
                    c,
                    &x.on(c)?,
                    &w.on(c)?,
                    &la.on(c)?,
                    &lb.on(c)?,
                    &mag.on(c)?,
                    scale,
                    &dy.on(c)?,
                    norm,
                )?)
            })?;
        }
        p.both("dora::backward_dense", extreme, &|c| {
            layer_grads(dora::backward_dense(
                c,
                &x.on(c)?,
                &w.on(c)?,
                &la.on(c)?,
                &lb.on(c)?,
                &mag.on(c)?,
                scale,
                &dy.on(c)?,
            )?)
        })
    });
}

/// The forward that keeps its products, then its backward: y and the gradients.
#[test]
fn dora_forward_saved() {
    check(layer(), |p, case| {
        let [w, la, lb, mag, x, dy] = &case.args;
        let Scale(scale) = case.params;
        for norm in [dora::NormGradient::Detached, dora::NormGradient::Exact] {
            let label = format!("dora::forward_saved + Saved::backward ({norm:?})");
            p.both(&label, dora_extreme(&case), &|c| {
                let (x, w, la, lb, mag) = (x.on(c)?, w.on(c)?, la.on(c)?, lb.on(c)?, mag.on(c)?);
                let (y, mut saved) = dora::forward_saved(c, &x, &w, &la, &lb, &mag, scale)?;
                let mut out = vec![values(Ok(y))?];
                out.extend(layer_grads(saved.backward(&dy.on(c)?, norm)?)?);
                Ok(out)
            })?;
        }
        Ok(())
    });
}

/// compose: base, lora [n, d_out] (now and then a mismatched one), ∂out, the magnitude and a
/// positive norm [d_out] (mismatched now and then).
fn compose_case() -> impl Strategy<Value = Case<Scale, 5>> {
    let layout =
        (dim(), dim(), near(), near(), scale()).prop_map(|(n, d, near_lora, near_norm, s)| {
            let shapes = [
                ("base", vec![n, d]),
                ("lora", vec![n, near_lora.of(d)]),
                ("dy", vec![n, d]),
                ("magnitude", vec![d]),
                ("norm", vec![near_norm.of(d)]),
            ];
            (s, shapes)
        });
    case(layout).prop_map(|mut case| {
        if !case.extreme {
            let norm = &mut case.args[4].data;
            norm.iter_mut().for_each(|v| *v = 0.5 + v.abs());
        }
        case
    })
}

#[test]
fn dora_compose() {
    check(compose_case(), |p, case| {
        let [base, lora, _, mag, norm] = &case.args;
        let Scale(scale) = case.params;
        p.both("dora::compose", case.extreme, &|c| {
            let (b, l, m, nm) = (base.on(c)?, lora.on(c)?, mag.on(c)?, norm.on(c)?);
            Ok(vec![
                values(dora::compose(c, &b, &l, &m, &nm, scale))?,
                values(dora::compose_unfused(c, &b, &l, &m, &nm, scale))?,
            ])
        })
    });
}

#[test]
fn dora_compose_backward() {
    check(compose_case(), |p, case| {
        let [base, lora, dy, mag, norm] = &case.args;
        let Scale(scale) = case.params;
        p.both("dora::compose_backward", case.extreme, &|c| {
            let (b, l, m, nm) = (base.on(c)?, lora.on(c)?, mag.on(c)?, norm.on(c)?);
            let gr = dora::compose_backward(c, &dy.on(c)?, &b, &l, &m, &nm, scale)?;
            Ok(vec![
                gr.base.to_vec()?,
                gr.lora.to_vec()?,
                gr.magnitude.to_vec()?,
            ])
        })
    });
}

/// Whether some row j of `W + s·B·A` is below a quarter of `‖ |W_j| + |s|·|B_j|·|A| ‖` (or
/// the shapes do not fit together, where the call is refused anyway): the exact backward's
/// 1/norm² terms amplify the factored norm's f32 error by the square of that ratio.
fn cancelling_rows(w: &Arg, a: &Arg, b: &Arg, s: f32) -> bool {
    let (&[d_out, d_in], &[r, ad], &[bd, br]) = (&w.shape[..], &a.shape[..], &b.shape[..]) else {
        return true;
    };
    if ad != d_in || bd != d_out || br != r {
        return true;
    }
    (0..d_out).any(|j| {
        let (mut value, mut size) = (0.0f64, 0.0f64);
        for i in 0..d_in {
            let low: f64 = (0..r)
                .map(|t| b.data[j * r + t] as f64 * a.data[t * d_in + i] as f64)
                .sum();
            let low_size: f64 = (0..r)
                .map(|t| (b.data[j * r + t] as f64 * a.data[t * d_in + i] as f64).abs())
                .sum();
            let wji = w.data[j * d_in + i] as f64;
            value += (wji + s as f64 * low).powi(2);
            size += (wji.abs() + (s as f64).abs() * low_size).powi(2);
        }
        value.sqrt() < 0.25 * size.sqrt()
    })
}
