//! burn and our kernels on one device (feature `burn`): views without copies, results in
//! burn's memory, and a chain burn → ours → burn → ours ordered without a host wait.
#![cfg(feature = "burn")]

mod common;

use common::burn::{bridge, values};

use burn::tensor::{DType as BurnDType, Int, Tensor as BurnTensor, TensorData};
use wgkernels::burn::Bridge;
use wgkernels::{linalg, Context, DType, Error};

fn burn_2d(bridge: &Bridge, data: &[f32], shape: [usize; 2]) -> BurnTensor<2> {
    BurnTensor::<2>::from_data(TensorData::new(data.to_vec(), shape), bridge.device())
}

/// `a·bᵀ` in f64, `a [m, k]`, `b [n, k]`.
fn matmul_nt(a: &[f64], b: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum();
        }
    }
    c
}

#[test]
fn a_chain_burn_ours_burn_ours_matches_the_cpu_without_reading_back() {
    let Some(bridge) = bridge() else { return };
    let mut rng = common::rng();
    let (m, k, n) = (5, 7, 9);
    let x = common::uniform(&mut rng, m * k);
    let w1 = common::uniform(&mut rng, n * k);
    let w2 = common::uniform(&mut rng, k * n);

    // burn: x·2 + 1; ours: ·w1ᵀ; burn: ·0.5 − 0.25; ours: ·w2ᵀ — no read-back in between.
    let b1 = burn_2d(&bridge, &x, [m, k]) * 2.0 + 1.0;
    let w1_burn = burn_2d(&bridge, &w1, [n, k]);
    let y1 = bridge
        .run(|ctx| {
            let (b1, w1) = (bridge.view(b1)?, bridge.view(w1_burn)?);
            linalg::matmul(ctx, &b1, &w1, false, true)
        })
        .unwrap();
    let c2 = bridge.to_burn::<2>(y1).unwrap() * 0.5 - 0.25;
    let w2_burn = burn_2d(&bridge, &w2, [k, n]);
    let y2 = bridge
        .run(|ctx| {
            let (c2, w2) = (bridge.view(c2)?, bridge.view(w2_burn)?);
            linalg::matmul(ctx, &c2, &w2, false, true)
        })
        .unwrap();
    let got = values(bridge.to_burn::<2>(y2).unwrap());

    let wide = common::wide;
    let b1: Vec<f64> = wide(&x).iter().map(|v| v * 2.0 + 1.0).collect();
    let c2: Vec<f64> = matmul_nt(&b1, &wide(&w1), m, n, k)
        .iter()
        .map(|v| v * 0.5 - 0.25)
        .collect();
    let want = matmul_nt(&c2, &wide(&w2), m, k, n);
    let error = common::relative_error_f64(&wide(&got), &want);
    eprintln!("chain burn → ours → burn → ours: relative error {error:.2e}");
    assert!(error < 1e-5, "chain relative error {error}");
}

#[test]
fn views_and_results_cost_no_copies() {
    let Some(bridge) = bridge() else { return };
    let ctx = bridge.context();
    let (m, k) = (33, 17);
    let a = burn_2d(&bridge, &vec![0.25; m * k], [m, k]);
    let used = || bridge.device().memory_pool_usage().unwrap().bytes_in_use;
    let burn_before = used();
    let ours_before = ctx.allocated_bytes();
    let view = bridge.view(a.clone()).unwrap();
    // A view allocates nothing, on either side.
    assert_eq!(used(), burn_before);
    assert_eq!(ctx.allocated_bytes(), ours_before);
    assert_eq!(view.to_vec().unwrap(), vec![0.25; m * k]);
    // A result made inside `run` lives in burn's memory: burn grows by exactly the output,
    // our pool by nothing; handing it to burn copies nothing.
    let before_run = used();
    let y = bridge
        .run(|ctx| linalg::matmul(ctx, &view, &view, false, true))
        .unwrap();
    ctx.synchronize().unwrap();
    // burn rounds an allocation up to its alignment (32 bytes here): one output, not two.
    let output = (m * m * 4) as u64;
    let grown = used() - before_run;
    assert!(
        grown >= output && grown < output + 256,
        "{grown} for {output}"
    );
    let ours_after = ctx.allocated_bytes();
    let y = bridge.to_burn::<2>(y).unwrap();
    assert_eq!(used() - before_run, grown);
    assert_eq!(ctx.allocated_bytes(), ours_after);
    assert_eq!(values(y), vec![0.25 * 0.25 * k as f32; m * m]);
}

#[test]
fn f16_tensors_are_viewed_in_place() {
    let Some(bridge) = bridge() else { return };
    let data: Vec<f32> = (0..37).map(|i| i as f32 * 0.125 - 2.0).collect();
    let t = BurnTensor::<1>::from_data(TensorData::new(data.clone(), [37]), bridge.device())
        .cast(BurnDType::F16);
    let view = bridge.view(t).unwrap();
    assert_eq!(view.dtype(), DType::F16);
    assert_eq!(view.to_vec().unwrap(), data);
}

#[test]
fn what_does_not_cross_is_an_err() {
    let Some(bridge) = bridge() else { return };
    let ints = BurnTensor::<1, Int>::arange(0..5, bridge.device()).float();
    let ints = ints.cast(BurnDType::F64);
    assert!(matches!(
        bridge.view(ints),
        Err(Error::InvalidArgument { arg: "tensor", .. })
    ));
    let ours = bridge.context().tensor(&[1.0; 6], &[2, 3]).unwrap();
    assert!(matches!(
        bridge.to_burn::<3>(ours),
        Err(Error::InvalidArgument { arg: "tensor", .. })
    ));
    let elsewhere = Context::cpu().tensor(&[1.0; 6], &[2, 3]).unwrap();
    assert!(matches!(
        bridge.to_burn::<2>(elsewhere),
        Err(Error::InvalidArgument { arg: "tensor", .. })
    ));
    // A result made outside `run` crosses with one copy into burn's memory.
    let ours = bridge.context().tensor(&[1.5; 6], &[2, 3]).unwrap();
    assert_eq!(values(bridge.to_burn::<2>(ours).unwrap()), vec![1.5; 6]);
}

#[test]
fn our_gemm_inside_burns_autodiff_matches_burns_own() {
    let Some(bridge) = bridge() else { return };
    let device = bridge.device().clone().autodiff();
    let mut rng = common::rng();
    // (Both GEMMs sum k in order with fused multiply-adds on lavapipe: they agree to the bit.)
    let (m, k, n) = (5, 61, 3);
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let a_data = common::uniform(&mut rng, m * k);
        let b_data = common::uniform(&mut rng, k * n);
        let make = |data: &[f32], shape: [usize; 2]| {
            BurnTensor::<2>::from_data(TensorData::new(data.to_vec(), shape), &device)
                .require_grad()
        };
        let (a, b) = (make(&a_data, a_shape), make(&b_data, b_shape));
        let weights = BurnTensor::<2>::from_data(
            TensorData::new(common::uniform(&mut rng, m * n), [m, n]),
            &device,
        );
        // Ours, inside burn's graph, under a loss burn differentiates.
        let y = bridge.matmul(&a, &b, ta, tb).unwrap();
        let loss = (y.clone() * weights.clone()).sum();
        let grads = loss.backward();
        let (ga, gb) = (a.grad(&grads).unwrap(), b.grad(&grads).unwrap());
        // burn's own.
        let (a2, b2) = (make(&a_data, a_shape), make(&b_data, b_shape));
        let op = |t: BurnTensor<2>, transpose: bool| if transpose { t.transpose() } else { t };
        let y2 = op(a2.clone(), ta).matmul(op(b2.clone(), tb));
        let grads2 = (y2.clone() * weights).sum().backward();
        let (ga2, gb2) = (a2.grad(&grads2).unwrap(), b2.grad(&grads2).unwrap());
        let close = |x: Vec<f32>, y: Vec<f32>, what: &str| {
            let e = common::relative_error_f64(&common::wide(&x), &common::wide(&y));
            eprintln!("{what} (ta {ta}, tb {tb}): relative error {e:.2e} against burn's autodiff");
            assert!(e < 1e-5, "{what} (ta {ta}, tb {tb}): relative error {e}");
        };
        // And ours against f64, so that agreement with burn is not agreement by accident.
        let transpose = |x: &[f32], rows: usize, cols: usize| -> Vec<f64> {
            (0..cols)
                .flat_map(|j| (0..rows).map(move |i| x[i * cols + j] as f64))
                .collect()
        };
        let op_a = if ta {
            transpose(&a_data, k, m)
        } else {
            common::wide(&a_data)
        };
        let op_b_t = if tb {
            common::wide(&b_data)
        } else {
            transpose(&b_data, k, n)
        };
        let want = matmul_nt(&op_a, &op_b_t, m, n, k);
        let ours = common::wide(&values(y.clone().inner()));
        let e64 = common::relative_error_f64(&ours, &want);
        eprintln!("y (ta {ta}, tb {tb}): relative error {e64:.2e} against f64");
        assert!(e64 < 1e-5 && e64 > 0.0, "{e64}");
        close(values(y.inner()), values(y2.inner()), "y");
        close(values(ga), values(ga2), "∂a");
        close(values(gb), values(gb2), "∂b");
    }
}

#[test]
fn the_dora_layer_inside_burns_autodiff_matches_burns_dense_dora() {
    use wgkernels::dora::NormGradient;
    let Some(bridge) = bridge() else { return };
    let device = bridge.device().clone().autodiff();
    let mut rng = common::rng();
    let (n, d_in, d_out, r, s) = (6, 9, 5, 3, 0.7f32);
    let data: Vec<Vec<f32>> = [
        n * d_in,
        d_out * d_in,
        r * d_in,
        d_out * r,
        d_out,
        n * d_out,
    ]
    .iter()
    .map(|&len| common::uniform(&mut rng, len))
    .collect();
    let magnitude: Vec<f32> = data[4].iter().map(|v| 1.0 + v.abs()).collect();
    for norm in [NormGradient::Detached, NormGradient::Exact] {
        let leaf = |i: usize, shape: [usize; 2], grad: bool| {
            let t = BurnTensor::<2>::from_data(TensorData::new(data[i].clone(), shape), &device);
            if grad {
                t.require_grad()
            } else {
                t
            }
        };
        let inputs = || {
            (
                leaf(0, [n, d_in], true),
                leaf(1, [d_out, d_in], false),
                leaf(2, [r, d_in], true),
                leaf(3, [d_out, r], true),
                BurnTensor::<1>::from_data(TensorData::new(magnitude.clone(), [d_out]), &device)
                    .require_grad(),
            )
        };
        let upstream =
            BurnTensor::<2>::from_data(TensorData::new(data[5].clone(), [n, d_out]), &device);

        let (x, w, a, b, m) = inputs();
        let y = bridge.dora_linear(&x, &w, &a, &b, &m, s, norm).unwrap();
        let grads = (y.clone() * upstream.clone()).sum().backward();
        let ours = [
            values(y.inner()),
            values(x.grad(&grads).unwrap()),
            values(a.grad(&grads).unwrap()),
            values(b.grad(&grads).unwrap()),
            values(m.grad(&grads).unwrap()),
        ];

        // burn's own autodiff of PEFT's dense DoRA.
        let (x, w, a, b, m) = inputs();
        let merged = w + b.clone().matmul(a.clone()) * s;
        let row_norm = merged
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .reshape([1, d_out]);
        let row_norm = match norm {
            NormGradient::Detached => row_norm.detach(),
            _ => row_norm,
        };
        let y = x.clone().matmul(merged.transpose()) * (m.clone().reshape([1, d_out]) / row_norm);
        let grads = (y.clone() * upstream).sum().backward();
        let burns = [
            values(y.inner()),
            values(x.grad(&grads).unwrap()),
            values(a.grad(&grads).unwrap()),
            values(b.grad(&grads).unwrap()),
            values(m.grad(&grads).unwrap()),
        ];
        for (what, (o, b)) in ["y", "∂x", "∂A", "∂B", "∂m"]
            .iter()
            .zip(ours.iter().zip(&burns))
        {
            let e = common::relative_error_f64(&common::wide(o), &common::wide(b));
            eprintln!(
                "dora_linear {norm:?} {what}: relative error {e:.2e} against burn's dense DoRA"
            );
            assert!(e < 1e-5, "{norm:?} {what}: {e}");
        }
    }
    // The base weight is frozen.
    let w = BurnTensor::<2>::ones([d_out, d_in], &device).require_grad();
    let x = BurnTensor::<2>::ones([n, d_in], &device);
    let (a, b) = (
        BurnTensor::<2>::ones([r, d_in], &device),
        BurnTensor::<2>::ones([d_out, r], &device),
    );
    let m = BurnTensor::<1>::ones([d_out], &device);
    assert!(matches!(
        bridge.dora_linear(&x, &w, &a, &b, &m, s, NormGradient::Detached),
        Err(Error::InvalidArgument { arg: "w", .. })
    ));
}

#[test]
fn a_dora_linear_module_learns_with_burns_adam_and_saves_in_peft_format() {
    use burn::optim::{AdamConfig, GradientsParams};
    use wgkernels::burn::DoraLinear;
    use wgkernels::dora::{peft, NormGradient};
    let Some(bridge) = bridge() else { return };
    let device = bridge.device().clone().autodiff();
    let mut rng = common::rng();
    let (n, d_in, d_out, r) = (24, 10, 6, 2);
    let tensor = |rng: &mut _, shape: [usize; 2]| {
        BurnTensor::<2>::from_data(
            TensorData::new(common::uniform(rng, shape[0] * shape[1]), shape),
            &device,
        )
    };
    // The task: a base layer W, and targets from W + a rank-2 change the adapter must find.
    let w = tensor(&mut rng, [d_out, d_in]);
    let delta = tensor(&mut rng, [d_out, r]).matmul(tensor(&mut rng, [r, d_in])) * 0.5;
    let x = tensor(&mut rng, [n, d_in]);
    let target = x.clone().matmul((w.clone() + delta).transpose());
    let mut layer = DoraLinear::new(&bridge, w, None, r, 1.0, NormGradient::Detached);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..30 {
        let y = layer.forward(x.clone()).unwrap();
        let loss = (y - target.clone()).powi_scalar(2).mean();
        losses.push(values(loss.clone().inner())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(0.05, layer, grads);
    }
    eprintln!(
        "DoraLinear with Adam: loss {:.4} → {:.4}",
        losses[0], losses[29]
    );
    assert!(losses[29] < 0.2 * losses[0], "{losses:?}");
    // The frozen weight did not move; the adapter goes to PEFT's format and back.
    let dir = std::env::temp_dir().join(format!("wgkernels-dora-linear-{}", std::process::id()));
    let adapter = layer.adapter("model.layers.0.mlp.up_proj").unwrap();
    let saved: Vec<Vec<f32>> = [&adapter.a, &adapter.b, &adapter.magnitude]
        .iter()
        .map(|t| t.to_vec().unwrap())
        .collect();
    peft::save(&dir, &[adapter], layer.scale).unwrap();
    let (loaded, scale) = peft::load(bridge.context(), &dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(scale, 1.0);
    let got: Vec<Vec<f32>> = [&loaded[0].a, &loaded[0].b, &loaded[0].magnitude]
        .iter()
        .map(|t| t.to_vec().unwrap())
        .collect();
    assert_eq!(got, saved);
}
