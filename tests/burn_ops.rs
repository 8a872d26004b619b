//! Our SO(3), graph and attention operations inside burn's autodiff (feature `burn`): the
//! forward and every gradient burn computes through them equal our direct calls, and
//! softmax attention equals burn's own autodiff of the formula.
#![cfg(feature = "burn")]

mod common;

use common::burn::{bridge, values};

use burn::tensor::{Tensor as BurnTensor, TensorData};
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
