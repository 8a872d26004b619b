//! Our SO(3), graph and attention operations inside burn's autodiff (feature `burn`): the
//! forward and every gradient burn computes through them equal our direct calls; and the
//! Clebsch–Gordan product (an einsum of our coefficients), linear and softmax attention equal
//! burn's own autodiff of their formulas written in burn tensor ops.
#![cfg(feature = "burn")]

mod common;

use common::burn::{bridge, values};

use burn::tensor::{Tensor as BurnTensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::attention::{self, FeatureMap};
use wgkernels::burn::Bridge;
use wgkernels::so3::{self, CpProduct, GauntMethod};
use wgkernels::{graph, Context, Tensor};

fn close(got: &[f32], want: &[f32], what: &str) {
    let e = common::relative_error_f64(&common::wide(got), &common::wide(want));
    eprintln!("{what}: relative error {e:.2e}");
    assert!(e < 1e-6, "{what}: relative error {e}");
}

/// Random data of `shape` as a burn leaf that requires a gradient, and as our tensor.
struct Leaf<const D: usize> {
    burn: BurnTensor<D>,
    ours: Tensor,
}

fn leaf<const D: usize>(bridge: &Bridge, data: Vec<f32>, shape: [usize; D]) -> Leaf<D> {
    let device = bridge.device().clone().autodiff();
    let ours = bridge.context().tensor(&data, &shape).unwrap();
    let burn = BurnTensor::<D>::from_data(TensorData::new(data, shape), &device).require_grad();
    Leaf { burn, ours }
}

/// burn's gradients of `Σ y⊙u` through an op, against our backward called directly.
fn check<const D: usize, const E: usize>(
    bridge: &Bridge,
    name: &str,
    leaves: &[&Leaf<D>],
    through_burn: BurnTensor<E>,
    ours_forward: Tensor,
    ours_backward: impl FnOnce(&Context, &Tensor) -> Vec<Tensor>,
) {
    let mut rng = common::rng();
    let shape: [usize; E] = through_burn.dims();
    let u = common::uniform(&mut rng, shape.iter().product());
    let device = bridge.device().clone().autodiff();
    let upstream = BurnTensor::<E>::from_data(TensorData::new(u.clone(), shape), &device);
    close(
        &values(through_burn.clone().inner()),
        &ours_forward.to_vec().unwrap(),
        &format!("{name} forward"),
    );
    let grads = (through_burn * upstream).sum().backward();
    let u = bridge.context().tensor(&u, &shape).unwrap();
    let want = ours_backward(bridge.context(), &u);
    for (i, (leaf, want)) in leaves.iter().zip(want).enumerate() {
        let got = values(leaf.burn.grad(&grads).unwrap());
        close(&got, &want.to_vec().unwrap(), &format!("{name} ∂input{i}"));
    }
}

#[test]
fn so3_ops_inside_burn_give_our_forward_and_backward() {
    let Some(bridge) = bridge() else { return };
    let ctx = bridge.context().clone();
    let mut rng = common::rng();
    let mut data = |len: usize| common::uniform(&mut rng, len);

    let v = leaf(&bridge, data(7 * 3), [7, 3]);
    let y = bridge.spherical_harmonics(&v.burn, 3).unwrap();
    let forward = so3::spherical_harmonics(&ctx, &v.ours, 3).unwrap();
    check(
        &bridge,
        "spherical_harmonics",
        &[&v],
        y,
        forward,
        |ctx, u| vec![so3::spherical_harmonics_backward(ctx, &v.ours, 3, u).unwrap()],
    );

    let (n, c) = (5, 3);
    let x1 = leaf(&bridge, data(n * c * 4), [n, c, 4]);
    let x2 = leaf(&bridge, data(n * c * 9), [n, c, 9]);
    let paths = so3::paths(1, 2, 2).len();
    let w = leaf(&bridge, data(n * c * paths), [n, c, paths]);
    let y = bridge
        .weighted_cg_product(&x1.burn, &x2.burn, &w.burn, 2)
        .unwrap();
    let forward = so3::weighted_cg_product(&ctx, &x1.ours, &x2.ours, &w.ours, 2).unwrap();
    check(
        &bridge,
        "weighted_cg_product",
        &[&x1, &x2, &w],
        y,
        forward,
        |ctx, u| {
            let g =
                so3::weighted_cg_product_backward(ctx, &x1.ours, &x2.ours, &w.ours, 2, u).unwrap();
            vec![g.x1, g.x2, g.weights]
        },
    );

    for method in [GauntMethod::Direct, GauntMethod::Fourier, GauntMethod::Grid] {
        let x1 = leaf(&bridge, data(n * c * 4), [n, c, 4]);
        let x2 = leaf(&bridge, data(n * c * 9), [n, c, 9]);
        let y = bridge.gaunt_product(&x1.burn, &x2.burn, 2, method).unwrap();
        let forward = so3::gaunt_product(&ctx, &x1.ours, &x2.ours, 2, method).unwrap();
        let name = format!("gaunt_product {method:?}");
        check(&bridge, &name, &[&x1, &x2], y, forward, |ctx, u| {
            let g = so3::gaunt_product_backward(ctx, &x1.ours, &x2.ours, 2, method, u).unwrap();
            vec![g.x1, g.x2]
        });
    }

    let cp = CpProduct::fit(1, 2, 2, 12).unwrap();
    let x1 = leaf(&bridge, data(n * c * 4), [n, c, 4]);
    let x2 = leaf(&bridge, data(n * c * 9), [n, c, 9]);
    let y = bridge.cp_product(&cp, &x1.burn, &x2.burn).unwrap();
    let forward = cp.apply(&ctx, &x1.ours, &x2.ours).unwrap();
    check(&bridge, "cp_product", &[&x1, &x2], y, forward, |ctx, u| {
        let g = cp.backward(ctx, &x1.ours, &x2.ours, u).unwrap();
        vec![g.x1, g.x2]
    });

    let x = leaf(&bridge, data(n * c * 9), [n, c, 9]);
    let w = leaf(&bridge, data(3 * c * 4), [3, c, 4]);
    let y = bridge.so3_linear(&x.burn, &w.burn).unwrap();
    let forward = so3::linear(&ctx, &x.ours, &w.ours).unwrap();
    check(&bridge, "so3_linear", &[&x, &w], y, forward, |ctx, u| {
        let g = so3::linear_backward(ctx, &x.ours, &w.ours, u).unwrap();
        vec![g.x, g.w]
    });
}

#[test]
fn graph_and_attention_ops_inside_burn_give_our_forward_and_backward() {
    let Some(bridge) = bridge() else { return };
    let ctx = bridge.context().clone();
    let mut rng = common::rng();
    let mut data = |len: usize| common::uniform(&mut rng, len);

    let index = graph::Index::new(&ctx, &[2, 0, 2, 1, 3, 2, 0], 4).unwrap();
    let table = leaf(&bridge, data(4 * 5), [4, 5]);
    let y = bridge.gather(&table.burn, &index).unwrap();
    let forward = graph::gather(&ctx, &table.ours, &index).unwrap();
    check(&bridge, "gather", &[&table], y, forward, |ctx, u| {
        vec![graph::scatter_sum(ctx, u, &index).unwrap()]
    });
    let edges = leaf(&bridge, data(7 * 5), [7, 5]);
    let y = bridge.scatter_sum(&edges.burn, &index).unwrap();
    let forward = graph::scatter_sum(&ctx, &edges.ours, &index).unwrap();
    check(&bridge, "scatter_sum", &[&edges], y, forward, |ctx, u| {
        vec![graph::gather(ctx, u, &index).unwrap()]
    });

    let shape = [1, 2, 9, 4];
    for map in [FeatureMap::EluPlusOne, FeatureMap::NormAware] {
        for causal in [false, true] {
            let (q, k, v) = (
                leaf(&bridge, data(72), shape),
                leaf(&bridge, data(72), shape),
                leaf(&bridge, data(72), shape),
            );
            let y = bridge
                .linear_attention(&q.burn, &k.burn, &v.burn, map, causal)
                .unwrap();
            let forward = attention::linear(&ctx, &q.ours, &k.ours, &v.ours, map, causal).unwrap();
            let name = format!("linear_attention {map:?} causal {causal}");
            check(&bridge, &name, &[&q, &k, &v], y, forward, |ctx, u| {
                let g = attention::linear_backward(ctx, &q.ours, &k.ours, &v.ours, u, map, causal)
                    .unwrap();
                vec![g.q, g.k, g.v]
            });
        }
    }
}

#[test]
fn softmax_attention_matches_burns_own_autodiff() {
    let Some(bridge) = bridge() else { return };
    let device = bridge.device().clone().autodiff();
    let mut rng = common::rng();
    let (b, h, n, d) = (1, 2, 9, 4);
    let data: Vec<Vec<f32>> = (0..4)
        .map(|_| common::uniform(&mut rng, b * h * n * d))
        .collect();
    for causal in [false, true] {
        let inputs = || {
            [0, 1, 2].map(|i| {
                BurnTensor::<4>::from_data(TensorData::new(data[i].clone(), [b, h, n, d]), &device)
                    .require_grad()
            })
        };
        let upstream =
            BurnTensor::<4>::from_data(TensorData::new(data[3].clone(), [b, h, n, d]), &device);
        let [q, k, v] = inputs();
        let y = bridge.softmax_attention(&q, &k, &v, causal).unwrap();
        let grads = (y.clone() * upstream.clone()).sum().backward();
        let ours = [
            values(y.inner()),
            values(q.grad(&grads).unwrap()),
            values(k.grad(&grads).unwrap()),
            values(v.grad(&grads).unwrap()),
        ];

        let [q, k, v] = inputs();
        let mut scores = q.clone().matmul(k.clone().swap_dims(2, 3)) / (d as f64).sqrt();
        if causal {
            let mask =
                BurnTensor::<2, burn::tensor::Bool>::tril_mask([n, n], 0, &device).unsqueeze::<4>();
            scores = scores.mask_fill(mask, f32::NEG_INFINITY);
        }
        let y = burn::tensor::activation::softmax(scores, 3).matmul(v.clone());
        let grads = (y.clone() * upstream).sum().backward();
        let burns = [
            values(y.inner()),
            values(q.grad(&grads).unwrap()),
            values(k.grad(&grads).unwrap()),
            values(v.grad(&grads).unwrap()),
        ];
        for (what, (o, w)) in ["y", "∂q", "∂k", "∂v"].iter().zip(ours.iter().zip(&burns)) {
            close(
                o,
                w,
                &format!("softmax_attention causal {causal} {what} against burn's own"),
            );
        }
    }
}

/// Our op and the same formula in burn tensor ops, on the same leaves: the outputs and the
/// gradients of `Σ y⊙u` towards every leaf agree within `bound` (relative, in norm).
fn against_burn<const D: usize, const E: usize>(
    bridge: &Bridge,
    name: &str,
    shapes: &[[usize; D]],
    ours: impl Fn(&[BurnTensor<D>]) -> BurnTensor<E>,
    formula: impl Fn(&[BurnTensor<D>]) -> BurnTensor<E>,
    bound: f64,
) {
    let device = bridge.device().clone().autodiff();
    let mut rng = common::rng();
    let data: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| common::uniform(&mut rng, s.iter().product()))
        .collect();
    let leaves = || -> Vec<BurnTensor<D>> {
        data.iter()
            .zip(shapes)
            .map(|(x, s)| {
                BurnTensor::<D>::from_data(TensorData::new(x.clone(), *s), &device).require_grad()
            })
            .collect()
    };
    let upstream_seed: u64 = rng.random();
    let run = |f: &dyn Fn(&[BurnTensor<D>]) -> BurnTensor<E>| -> Vec<Vec<f32>> {
        let x = leaves();
        let y = f(&x);
        let mut rng = StdRng::seed_from_u64(upstream_seed); // the same u for both
        let u = common::uniform(&mut rng, y.dims().iter().product());
        let u = BurnTensor::<E>::from_data(TensorData::new(u, y.dims()), &device);
        let grads = (y.clone() * u).sum().backward();
        let mut out = vec![values(y.inner())];
        out.extend(x.iter().map(|x| values(x.grad(&grads).unwrap())));
        out
    };
    let (mine, burns) = (run(&ours), run(&formula));
    for (i, (o, w)) in mine.iter().zip(&burns).enumerate() {
        let what = if i == 0 {
            "y".to_string()
        } else {
            format!("∂input{}", i - 1)
        };
        let e = common::relative_error_f64(&common::wide(o), &common::wide(w));
        eprintln!("{name} {what} against burn's own autodiff: relative error {e:.2e}");
        assert!(e < bound, "{name} {what}: relative error {e}");
    }
}

/// `out[e,c,k] = Σ_p w[e,c,p] Σ_ij T_p[i,j,k] x1[e,c,i] x2[e,c,j]` as burn's einsum, with the
/// dense tensor `T [P, d1, d2, d3]` of our Clebsch–Gordan coefficients on every path.
#[test]
fn cg_product_matches_burns_einsum_of_our_coefficients() {
    let Some(bridge) = bridge() else { return };
    let device = bridge.device().clone().autodiff();
    let (l1, l2, l3, n, c) = (2, 1, 2, 7, 3);
    let dim = |l: usize| (l + 1) * (l + 1);
    let paths = so3::paths(l1, l2, l3);
    let mut dense = vec![0f32; paths.len() * dim(l1) * dim(l2) * dim(l3)];
    for (p, &[a, b, o]) in paths.iter().enumerate() {
        let cg = so3::clebsch_gordan(a, b, o).unwrap();
        let (n2, n3) = (2 * b + 1, 2 * o + 1);
        for (t, &value) in cg.iter().enumerate() {
            let (i, j, k) = (t / (n2 * n3), t / n3 % n2, t % n3);
            let at = [p, a * a + i, b * b + j, o * o + k];
            dense[((at[0] * dim(l1) + at[1]) * dim(l2) + at[2]) * dim(l3) + at[3]] = value as f32;
        }
    }
    let shape = [paths.len(), dim(l1), dim(l2), dim(l3)];
    let dense = BurnTensor::<4>::from_data(TensorData::new(dense, shape), &device);
    // x2 with one channel, shared by all (as edge harmonics are), and with c.
    for x2_channels in [1, c] {
        let shapes = [
            [n, c, dim(l1)],
            [n, x2_channels, dim(l2)],
            [n, c, paths.len()],
        ];
        against_burn(
            &bridge,
            &format!("weighted_cg_product, x2 with {x2_channels} channel(s)"),
            &shapes,
            |x| bridge.weighted_cg_product(&x[0], &x[1], &x[2], l3).unwrap(),
            |x| {
                let x2 = x[1].clone().repeat_dim(1, c / x2_channels);
                BurnTensor::<3>::einsum(
                    "ecp,pijk,eci,ecj->eck",
                    [
                        x[2].clone().into(),
                        dense.clone().into(),
                        x[0].clone().into(),
                        x2.into(),
                    ],
                )
            },
            1e-6,
        );
    }
}

/// Linear attention (both feature maps, causal or not) as burn tensor ops, the formulas of
/// docs/DESIGN.md written out: `out_i = Σ_j s_ij v_j / (Σ_j s_ij + ε_i)`.
#[test]
fn linear_attention_matches_burns_own_autodiff() {
    let Some(bridge) = bridge() else { return };
    let device = bridge.device().clone().autodiff();
    let (b, h, n, d) = (2, 1, 11, 5);
    let elu_plus_one = |x: BurnTensor<4>| burn::tensor::activation::elu(x, 1.0) + 1.0;
    // relu(±q)/‖q‖, clamped above zero so that burn's powf has a finite logarithm (the
    // clamped values raised to p ≥ 1.5 are below f32's smallest number).
    let query_map = |q: BurnTensor<4>| {
        let r = q.clone().square().sum_dim(3).sqrt();
        // The exponent as wide as q: burn's `powf` does not broadcast it.
        let p = ((r.clone().tanh() + 0.5) * 3.0).repeat_dim(3, d);
        let side = |x: BurnTensor<4>| {
            (x.clamp_min(0.0) / r.clone())
                .clamp_min(1e-30)
                .powf(p.clone())
        };
        BurnTensor::cat(vec![side(q.clone()), side(-q)], 3)
    };
    let key_map = |k: BurnTensor<4>| {
        let cube = k.powi_scalar(3);
        BurnTensor::cat(vec![cube.clone().clamp_min(0.0), (-cube).clamp_min(0.0)], 3)
    };
    for map in [FeatureMap::EluPlusOne, FeatureMap::NormAware] {
        for causal in [false, true] {
            let formula = |x: &[BurnTensor<4>]| {
                let (fq, fk) = match map {
                    FeatureMap::EluPlusOne => {
                        (elu_plus_one(x[0].clone()), elu_plus_one(x[1].clone()))
                    }
                    FeatureMap::NormAware => (query_map(x[0].clone()), key_map(x[1].clone())),
                };
                let mut s = fq.matmul(fk.swap_dims(2, 3));
                if causal {
                    let above = BurnTensor::<2, burn::tensor::Bool>::tril_mask([n, n], 0, &device);
                    s = s.mask_fill(above.unsqueeze::<4>(), 0.0);
                }
                let attended: Vec<f32> = (0..n)
                    .map(|i| if causal { i + 1 } else { n } as f32)
                    .collect();
                let attended = BurnTensor::<1>::from_data(TensorData::new(attended, [n]), &device)
                    .reshape([1, 1, n, 1]);
                let epsilon = match map {
                    FeatureMap::EluPlusOne => attended.ones_like() * 1e-6,
                    FeatureMap::NormAware => attended * 1e-6,
                };
                s.clone().matmul(x[2].clone()) / (s.sum_dim(3) + epsilon)
            };
            against_burn(
                &bridge,
                &format!("linear_attention {map:?} causal {causal}"),
                &[[b, h, n, d]; 3],
                |x| {
                    bridge
                        .linear_attention(&x[0], &x[1], &x[2], map, causal)
                        .unwrap()
                },
                formula,
                2e-6, // f32 sums in other orders, and a ratio whose gradient compounds them
            );
        }
    }
}
