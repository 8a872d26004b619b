//! Property test over the public functions of every family: random ranks and shapes (0, 1,
//! odd, and mismatched between arguments), degrees and values. For each call, on the CPU
//! path and on the GPU:
//! - no panic (`catch_unwind`);
//! - both paths give `Ok`, or both `Err`;
//! - with ordinary values (uniform in ±1), `Ok` results agree to 1e-3 relative L2: the
//!   families' own tests hold 1e-5..1e-4 on their inputs, but random signs and sizes of 1
//!   make worse-conditioned calls (largest gaps seen over 1200 cases: 4.4e-4 for the exact
//!   DoRA backward's ∂A, 1.0e-4 for the norm-aware attention ∂k);
//! - arguments are now and then f16 or bf16: accepted or refused alike on both paths;
//! - a failed call leaves a stateful object (`SlidingInverse`, `Mfac`, `LinearDecoder`) as it
//!   was: its next valid use gives the same answer as on an untouched twin.
//!
//! Values are drawn ordinary, or extreme (NaN, ±inf, ±0, ±1e±30 mixed in): with extreme
//! values only the first two properties are checked (f32 on the GPU and f64 on the CPU may
//! round an overflow differently). The `proptest` crate is not in this machine's offline
//! registry, so the generator is written on `rand` (no shrinking: a failure prints its seed
//! and case). `PROPTEST_CASES=<n>` runs n cases per function (default 24).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::attention::{self, FeatureMap, LinearDecoder};
use wgkernels::mfac::{self, BlockInverse, Mfac, MfacConfig, SlidingInverse, StaticInverse};
use wgkernels::{dora, graph, linalg, so3, Context, DType, Result, Tensor};

fn cases() -> usize {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

/// Draws shapes and values for one case.
struct Gen {
    rng: StdRng,
    extreme: bool,
}

impl Gen {
    /// A size: mostly 1..=9 and odd ones, sometimes 0.
    fn dim(&mut self) -> usize {
        match self.rng.random_range(0..10) {
            0 => 0,
            1 => 1,
            2 => 33,
            _ => self.rng.random_range(1..10),
        }
    }

    /// `size`, or now and then a neighbour of it (a mismatch the call must refuse).
    fn near(&mut self, size: usize) -> usize {
        match self.rng.random_range(0..8) {
            0 => size + 1,
            1 => size.saturating_sub(1),
            _ => size,
        }
    }

    fn arg(&mut self, shape: &[usize]) -> Arg {
        Arg::new(self, shape)
    }

    fn values(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| {
                if self.extreme && self.rng.random_range(0..6) == 0 {
                    let special = [
                        f32::NAN,
                        f32::INFINITY,
                        f32::NEG_INFINITY,
                        0.0,
                        -0.0,
                        1e30,
                        -1e-30,
                        3e38,
                    ];
                    special[self.rng.random_range(0..special.len())]
                } else {
                    self.rng.random_range(-1.0..1.0)
                }
            })
            .collect()
    }
}

/// An argument: its shape, dtype and values, made a tensor on each context.
#[derive(Clone, Debug)]
struct Arg {
    shape: Vec<usize>,
    dtype: DType,
    data: Vec<f32>,
}

impl Arg {
    /// Mostly f32; one argument in 20 is f16 or bf16 (accepted by the operands that read
    /// half precision, refused alike on both paths by the others).
    fn new(g: &mut Gen, shape: &[usize]) -> Arg {
        let len = shape.iter().product::<usize>();
        let dtype = match g.rng.random_range(0..40) {
            0 => DType::F16,
            1 => DType::BF16,
            _ => DType::F32,
        };
        Arg {
            shape: shape.to_vec(),
            dtype,
            data: g.values(len),
        }
    }

    fn on(&self, ctx: &Context) -> Result<Tensor> {
        ctx.tensor_as(&self.data, &self.shape, self.dtype)
    }
}

/// Calls per function that both paths answered `Ok` and `Err`, printed at the end.
static TALLY: std::sync::Mutex<Vec<(String, usize, usize)>> = std::sync::Mutex::new(Vec::new());

fn tally(label: &str, ok: bool) {
    let name = label.split(" (case").next().unwrap_or(label).to_string();
    let mut t = TALLY.lock().unwrap();
    let at = match t.iter().position(|e| e.0 == name) {
        Some(at) => at,
        None => {
            t.push((name, 0, 0));
            t.len() - 1
        }
    };
    if ok {
        t[at].1 += 1;
    } else {
        t[at].2 += 1;
    }
}

/// Runs `call` on both paths and checks the properties; `call` returns the outputs' values.
fn both(
    label: &str,
    ctx: &[Context; 2],
    extreme: bool,
    call: &dyn Fn(&Context) -> Result<Vec<Vec<f32>>>,
) {
    let run = |c: &Context| match catch_unwind(AssertUnwindSafe(|| call(c))) {
        Ok(result) => result,
        Err(_) => panic!("{label}: panicked on {}", c.device_name()),
    };
    let (cpu, gpu) = (run(&ctx[0]), run(&ctx[1]));
    tally(label, cpu.is_ok() && gpu.is_ok());
    match (&cpu, &gpu) {
        (Ok(a), Ok(b)) => {
            if !extreme {
                for (i, (a, b)) in a.iter().zip(b).enumerate() {
                    assert_eq!(a.len(), b.len(), "{label}: output {i} lengths differ");
                    if a.is_empty() {
                        continue;
                    }
                    // Relative to ‖cpu‖, or to 1% of the norm of an output of unit entries where
                    // the output is smaller than that: outputs that cancel to ~0 (the norm-aware
                    // ∂q at dk = 1, ∂q at n = 1) are rounding on both paths, compared absolutely.
                    let diff = a
                        .iter()
                        .zip(b.iter())
                        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    let norm = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
                    let e = diff / norm.max(1e-2 * (a.len() as f64).sqrt());
                    assert!(
                        e < 1e-3,
                        "{label}: output {i} differs between the paths by {e:e}"
                    );
                }
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "{label}: the paths disagree: CPU {:?}, GPU {:?}",
            cpu.as_ref().map(|_| "Ok"),
            gpu.as_ref().map(|_| "Ok")
        ),
    }
}

fn values(t: Result<Tensor>) -> Result<Vec<f32>> {
    t?.to_vec()
}

/// `dora::weight_norm` and `weight_norm_dense`.
type WeightNorm = fn(&Context, &Tensor, &Tensor, &Tensor, f32) -> Result<Tensor>;
/// `dora::forward` and `forward_dense`.
type Forward = fn(&Context, &Tensor, &Tensor, &Tensor, &Tensor, &Tensor, f32) -> Result<Tensor>;

/// The four gradients of a DoRA layer backward, read back.
fn layer_grads(gr: dora::LayerGrads) -> Result<Vec<Vec<f32>>> {
    Ok(vec![
        gr.x.to_vec()?,
        gr.a.to_vec()?,
        gr.b.to_vec()?,
        gr.magnitude.to_vec()?,
    ])
}

/// `g.arg(&shape)` with the shape computed first (its sizes may draw from `g` too).
macro_rules! arg {
    ($g:ident, $shape:expr) => {{
        let shape = $shape;
        $g.arg(&shape)
    }};
}

/// Every case of every function, with fresh shapes and values.
#[test]
fn every_public_function_keeps_its_promises() {
    let Some(gpu) = common::gpu() else { return };
    let ctx = [Context::cpu(), gpu];
    let mut seeds = common::rng();
    for case in 0..cases() {
        let seed: u64 = seeds.random();
        let mut g = Gen {
            rng: rand::SeedableRng::seed_from_u64(seed),
            extreme: case % 3 == 2,
        };
        let label = |f: &str| format!("{f} (case {case}, seed {seed})");
        let extreme = g.extreme;

        // linalg
        let (m, k, n) = (g.dim(), g.dim(), g.dim());
        let (a, b) = (arg!(g, [m, k]), arg!(g, [g.near(k), n]));
        both(&label("linalg::matmul"), &ctx, extreme, &|c| {
            Ok(vec![values(linalg::matmul(
                c,
                &a.on(c)?,
                &b.on(c)?,
                false,
                false,
            ))?])
        });

        // dora
        let (d_out, d_in, r, rows) = (g.dim(), g.dim(), g.dim(), g.dim());
        let w = arg!(g, [d_out, d_in]);
        let la = arg!(g, [r, g.near(d_in)]);
        let lb = arg!(g, [d_out, r]);
        let mag = arg!(g, [d_out]);
        let x = arg!(g, [rows, d_in]);
        let dy = arg!(g, [rows, g.near(d_out)]);
        // Now and then 0: the adapter switched off (no GEMM walks k then, on either path).
        let scale = if g.rng.random_range(0..6) == 0 {
            0.0
        } else {
            0.5
        };
        // Where a row of W + s·B·A nearly cancels, the factored norm keeps fewer digits in f32
        // than the f64 path (DoRA's documented trade, dora::weight_norm_factored): values are
        // compared only away from that corner.
        let dora_extreme = extreme || cancelling_rows(&w, &la, &lb, scale);
        // The fused, factored and PEFT's dense forms take the same arguments.
        let weight_norms = [
            ("dora::weight_norm", dora::weight_norm as WeightNorm),
            ("dora::weight_norm_factored", dora::weight_norm_factored),
            ("dora::weight_norm_dense", dora::weight_norm_dense),
        ];
        for (name, weight_norm) in weight_norms {
            both(&label(name), &ctx, dora_extreme, &|c| {
                Ok(vec![values(weight_norm(
                    c,
                    &w.on(c)?,
                    &la.on(c)?,
                    &lb.on(c)?,
                    scale,
                ))?])
            });
        }
        let forwards = [
            ("dora::forward", dora::forward as Forward),
            ("dora::forward_dense", dora::forward_dense),
        ];
        for (name, forward) in forwards {
            both(&label(name), &ctx, dora_extreme, &|c| {
                Ok(vec![values(forward(
                    c,
                    &x.on(c)?,
                    &w.on(c)?,
                    &la.on(c)?,
                    &lb.on(c)?,
                    &mag.on(c)?,
                    scale,
                ))?])
            });
        }
        for norm in [dora::NormGradient::Detached, dora::NormGradient::Exact] {
            both(
                &label(&format!("dora::backward ({norm:?})")),
                &ctx,
                dora_extreme,
                &|c| {
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
                },
            );
            // The forward that keeps its products, then its backward: y and the gradients.
            both(
                &label(&format!("dora::forward_saved + Saved::backward ({norm:?})")),
                &ctx,
                dora_extreme,
                &|c| {
                    let (x, w, la, lb, mag) =
                        (x.on(c)?, w.on(c)?, la.on(c)?, lb.on(c)?, mag.on(c)?);
                    let (y, mut saved) = dora::forward_saved(c, &x, &w, &la, &lb, &mag, scale)?;
                    let mut out = vec![values(Ok(y))?];
                    out.extend(layer_grads(saved.backward(&dy.on(c)?, norm)?)?);
                    Ok(out)
                },
            );
        }
        both(&label("dora::backward_dense"), &ctx, dora_extreme, &|c| {
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
        });
        // compose: base, lora [n, d_out] (now and then a mismatched one), magnitude and a
        // positive norm [d_out].
        let (cn, cd) = (g.dim(), g.dim());
        let base = arg!(g, [cn, cd]);
        let lora = arg!(g, [cn, g.near(cd)]);
        let cdy = arg!(g, [cn, cd]);
        let cmag = arg!(g, [cd]);
        let mut cnorm = arg!(g, [g.near(cd)]);
        if !extreme {
            cnorm.data.iter_mut().for_each(|v| *v = 0.5 + v.abs());
        }
        both(&label("dora::compose"), &ctx, extreme, &|c| {
            let (b, l, m, nm) = (base.on(c)?, lora.on(c)?, cmag.on(c)?, cnorm.on(c)?);
            Ok(vec![
                values(dora::compose(c, &b, &l, &m, &nm, scale))?,
                values(dora::compose_unfused(c, &b, &l, &m, &nm, scale))?,
            ])
        });
        both(&label("dora::compose_backward"), &ctx, extreme, &|c| {
            let (b, l, m, nm) = (base.on(c)?, lora.on(c)?, cmag.on(c)?, cnorm.on(c)?);
            let gr = dora::compose_backward(c, &cdy.on(c)?, &b, &l, &m, &nm, scale)?;
            Ok(vec![
                gr.base.to_vec()?,
                gr.lora.to_vec()?,
                gr.magnitude.to_vec()?,
            ])
        });

        // so3
        let lmax = g.rng.random_range(0..5);
        let vn = g.dim();
        let vectors = arg!(g, [vn, if g.rng.random_range(0..8) == 0 { 2 } else { 3 }]);
        let dy = arg!(g, [vn, (lmax + 1) * (lmax + 1)]);
        both(&label("so3::spherical_harmonics"), &ctx, extreme, &|c| {
            Ok(vec![values(so3::spherical_harmonics(
                c,
                &vectors.on(c)?,
                lmax,
            ))?])
        });
        both(
            &label("so3::spherical_harmonics_backward"),
            &ctx,
            extreme,
            &|c| {
                Ok(vec![values(so3::spherical_harmonics_backward(
                    c,
                    &vectors.on(c)?,
                    lmax,
                    &dy.on(c)?,
                ))?])
            },
        );
        let (l1, l2, lo) = (
            g.rng.random_range(0..4),
            g.rng.random_range(0..4),
            g.rng.random_range(0..5),
        );
        let (sn, ch) = (g.dim(), g.dim());
        let c2 = if g.rng.random_range(0..2) == 0 { 1 } else { ch };
        let dim = |l: usize| (l + 1) * (l + 1);
        let x1 = arg!(g, [sn, ch, dim(l1)]);
        let x2 = arg!(g, [sn, c2, dim(l2)]);
        let d_out = arg!(g, [sn, ch, g.near(dim(lo))]);
        let paths = so3::paths(l1, l2, lo).len();
        let weights = arg!(
            g,
            [
                if g.rng.random_range(0..2) == 0 { 1 } else { sn },
                ch,
                g.near(paths)
            ]
        );
        both(&label("so3::cg_product"), &ctx, extreme, &|c| {
            Ok(vec![values(so3::cg_product(
                c,
                &x1.on(c)?,
                &x2.on(c)?,
                lo,
            ))?])
        });
        both(&label("so3::cg_product_backward"), &ctx, extreme, &|c| {
            let gr = so3::cg_product_backward(c, &x1.on(c)?, &x2.on(c)?, lo, &d_out.on(c)?)?;
            Ok(vec![gr.x1.to_vec()?, gr.x2.to_vec()?])
        });
        for method in [
            so3::GauntMethod::Direct,
            so3::GauntMethod::Grid,
            so3::GauntMethod::Fourier,
        ] {
            both(
                &label(&format!("so3::gaunt_product ({method:?})")),
                &ctx,
                extreme,
                &|c| {
                    Ok(vec![values(so3::gaunt_product(
                        c,
                        &x1.on(c)?,
                        &x2.on(c)?,
                        lo,
                        method,
                    ))?])
                },
            );
            both(
                &label(&format!("so3::gaunt_product_backward ({method:?})")),
                &ctx,
                extreme,
                &|c| {
                    let gr = so3::gaunt_product_backward(
                        c,
                        &x1.on(c)?,
                        &x2.on(c)?,
                        lo,
                        method,
                        &d_out.on(c)?,
                    )?;
                    Ok(vec![gr.x1.to_vec()?, gr.x2.to_vec()?])
                },
            );
        }
        // The O(L³) routes at high degrees (past one workgroup's memory from about
        // l1 + l2 + lmax_out > 44): a few rows, degrees 5..=MAX_L.
        let high = [0; 3].map(|_| g.rng.random_range(5..=so3::MAX_L));
        let rows = g.rng.random_range(1..3);
        let hx1 = arg!(g, [rows, 1, dim(high[0])]);
        let hx2 = arg!(g, [rows, 1, dim(high[1])]);
        for method in [so3::GauntMethod::Grid, so3::GauntMethod::Fourier] {
            both(
                &label(&format!("so3::gaunt_product ({method:?}, degrees 5..=24)")),
                &ctx,
                extreme,
                &|c| {
                    Ok(vec![values(so3::gaunt_product(
                        c,
                        &hx1.on(c)?,
                        &hx2.on(c)?,
                        high[2],
                        method,
                    ))?])
                },
            );
        }
        both(&label("so3::weighted_cg_product"), &ctx, extreme, &|c| {
            Ok(vec![values(so3::weighted_cg_product(
                c,
                &x1.on(c)?,
                &x2.on(c)?,
                &weights.on(c)?,
                lo,
            ))?])
        });
        both(
            &label("so3::weighted_cg_product_backward"),
            &ctx,
            extreme,
            &|c| {
                let gr = so3::weighted_cg_product_backward(
                    c,
                    &x1.on(c)?,
                    &x2.on(c)?,
                    &weights.on(c)?,
                    lo,
                    &d_out.on(c)?,
                )?;
                Ok(vec![gr.x1.to_vec()?, gr.x2.to_vec()?, gr.weights.to_vec()?])
            },
        );
        let (c_in, c_out) = (g.dim(), g.dim());
        let lin_w = arg!(g, [g.near(l1 + 1), c_in, c_out]);
        let lin_x = arg!(g, [sn, c_in, dim(l1)]);
        let lin_g = arg!(g, [sn, c_out, dim(l1)]);
        both(&label("so3::linear"), &ctx, extreme, &|c| {
            Ok(vec![values(so3::linear(c, &lin_x.on(c)?, &lin_w.on(c)?))?])
        });
        both(&label("so3::linear_backward"), &ctx, extreme, &|c| {
            let gr = so3::linear_backward(c, &lin_x.on(c)?, &lin_w.on(c)?, &lin_g.on(c)?)?;
            Ok(vec![gr.x.to_vec()?, gr.w.to_vec()?])
        });

        let angle = g.rng.random_range(0.0..std::f64::consts::TAU);
        let rotation = so3::Rotation::from_axis_angle([0.3, -1.0, 0.5], angle).unwrap();
        both(&label("so3::rotate"), &ctx, extreme, &|c| {
            Ok(vec![values(so3::rotate(c, &x1.on(c)?, &rotation))?])
        });
        let (fb, fr, fc) = (g.dim(), g.dim(), g.dim());
        let grid = arg!(g, [fb, fr, fc, g.near(2)]);
        for direction in [
            so3::fft::FftDirection::Forward,
            so3::fft::FftDirection::Inverse,
        ] {
            both(
                &label(&format!("so3::fft2 ({direction:?})")),
                &ctx,
                extreme,
                &|c| Ok(vec![values(so3::fft::fft2(c, &grid.on(c)?, direction))?]),
            );
        }

        // The CP product at a small fitted rank, on the product's inputs when their degrees
        // fit (ALS at these sizes takes milliseconds and is cached).
        let rank = g.rng.random_range(0..6);
        let (f1, f2, fo) = (l1.min(2), l2.min(2), lo.min(2));
        both(&label("so3::CpProduct"), &ctx, extreme, &|c| {
            let cp = so3::CpProduct::fit(f1, f2, fo, rank)?;
            let out = cp.apply(c, &x1.on(c)?, &x2.on(c)?)?;
            let d = out.shape().to_vec();
            let g = c.tensor(&vec![0.5; out.len()], &d)?;
            let gr = cp.backward(c, &x1.on(c)?, &x2.on(c)?, &g)?;
            Ok(vec![out.to_vec()?, gr.x1.to_vec()?, gr.x2.to_vec()?])
        });

        // graph
        let (edges, nodes, width) = (g.dim(), g.dim(), g.dim());
        let index: Vec<u32> = (0..edges)
            .map(|_| g.rng.random_range(0..nodes as u32 + 1))
            .collect();
        let table = arg!(g, [g.near(nodes), width]);
        let src = arg!(g, [g.near(edges), width]);
        both(&label("graph::gather"), &ctx, extreme, &|c| {
            let idx = graph::Index::new(c, &index, nodes)?;
            Ok(vec![values(graph::gather(c, &table.on(c)?, &idx))?])
        });
        both(&label("graph::scatter_sum"), &ctx, extreme, &|c| {
            let idx = graph::Index::new(c, &index, nodes)?;
            Ok(vec![values(graph::scatter_sum(c, &src.on(c)?, &idx))?])
        });

        // attention
        let (b, h, n, dk, dv) = (g.dim().min(3), g.dim().min(3), g.dim(), g.dim(), g.dim());
        let q = arg!(g, [b, h, n, dk]);
        let kk = arg!(g, [b, h, g.near(n), dk]);
        let v = arg!(g, [b, h, n, dv]);
        let gout = arg!(g, [b, h, n, g.near(dv)]);
        for causal in [false, true] {
            for map in [FeatureMap::EluPlusOne, FeatureMap::NormAware] {
                both(
                    &label(&format!("attention::linear ({map:?}, causal {causal})")),
                    &ctx,
                    extreme,
                    &|c| {
                        Ok(vec![values(attention::linear(
                            c,
                            &q.on(c)?,
                            &kk.on(c)?,
                            &v.on(c)?,
                            map,
                            causal,
                        ))?])
                    },
                );
                both(
                    &label(&format!(
                        "attention::linear_backward ({map:?}, causal {causal})"
                    )),
                    &ctx,
                    extreme,
                    &|c| {
                        let gr = attention::linear_backward(
                            c,
                            &q.on(c)?,
                            &kk.on(c)?,
                            &v.on(c)?,
                            &gout.on(c)?,
                            map,
                            causal,
                        )?;
                        Ok(vec![gr.q.to_vec()?, gr.k.to_vec()?, gr.v.to_vec()?])
                    },
                );
            }
            both(
                &label(&format!("attention::softmax (causal {causal})")),
                &ctx,
                extreme,
                &|c| {
                    Ok(vec![values(attention::softmax(
                        c,
                        &q.on(c)?,
                        &kk.on(c)?,
                        &v.on(c)?,
                        causal,
                    ))?])
                },
            );
            both(
                &label(&format!("attention::softmax_backward (causal {causal})")),
                &ctx,
                extreme,
                &|c| {
                    let gr = attention::softmax_backward(
                        c,
                        &q.on(c)?,
                        &kk.on(c)?,
                        &v.on(c)?,
                        &gout.on(c)?,
                        causal,
                    )?;
                    Ok(vec![gr.q.to_vec()?, gr.k.to_vec()?, gr.v.to_vec()?])
                },
            );
        }

        // Decoding: a few steps of random tokens (now and then of the wrong shape).
        let (db, dh, ddk, ddv) = (g.dim().min(3), g.dim().min(3), g.dim(), g.dim());
        let tokens: Vec<[Arg; 3]> = (0..3)
            .map(|_| {
                [
                    arg!(g, [db, dh, ddk]),
                    arg!(g, [db, dh, g.near(ddk)]),
                    arg!(g, [db, dh, ddv]),
                ]
            })
            .collect();
        for map in [FeatureMap::EluPlusOne, FeatureMap::NormAware] {
            both(
                &label(&format!("attention::LinearDecoder::step ({map:?})")),
                &ctx,
                extreme,
                &|c| {
                    let mut decoder = LinearDecoder::new(c, db, dh, ddk, ddv, map)?;
                    let mut outs = Vec::new();
                    for [q, k, v] in &tokens {
                        outs.push(values(decoder.step(&q.on(c)?, &k.on(c)?, &v.on(c)?))?);
                    }
                    Ok(outs)
                },
            );
        }

        // mfac
        let (gm, gd) = (g.dim(), g.dim());
        let grads = arg!(g, [gm, gd]);
        let xv = arg!(g, [g.near(gd)]);
        let damp = if g.rng.random_range(0..6) == 0 {
            0.0
        } else {
            0.1
        };
        both(&label("mfac::StaticInverse"), &ctx, extreme, &|c| {
            let inverse = StaticInverse::new(c, &grads.on(c)?, damp)?;
            Ok(vec![
                values(inverse.ihvp(&xv.on(c)?))?,
                values(inverse.inverse_diagonal())?,
            ])
        });
        let (pw, count) = (arg!(g, [g.near(gd)]), g.rng.random_range(0..gd + 2));
        // Which weights go depends on the order of their scores: where two are within 1e-4 of
        // each other, f32 and f64 may order them differently, so only Ok/Err is compared.
        let near_tie = || -> Result<bool> {
            let cpu = &ctx[0];
            let inverse = StaticInverse::new(cpu, &grads.on(cpu)?, damp)?;
            let mut scores = mfac::obs_scores(&inverse, &pw.on(cpu)?)?;
            scores.sort_by(f32::total_cmp);
            Ok(scores
                .windows(2)
                .any(|p| (p[1] - p[0]).abs() <= 1e-4 * p[1].abs().max(1e-30)))
        };
        let prune_extreme = extreme || near_tie().unwrap_or(true);
        both(&label("mfac::prune"), &ctx, prune_extreme, &|c| {
            let inverse = StaticInverse::new(c, &grads.on(c)?, damp)?;
            let (pruned, removed) = mfac::prune(&inverse, &pw.on(c)?, count)?;
            let removed = removed.iter().map(|&i| i as f32).collect();
            Ok(vec![pruned.to_vec()?, removed])
        });
        let block = g.dim();
        both(&label("mfac::BlockInverse"), &ctx, extreme, &|c| {
            let inverse = BlockInverse::new(c, &grads.on(c)?, damp, block)?;
            Ok(vec![
                values(inverse.ihvp(&xv.on(c)?))?,
                values(inverse.inverse_diagonal())?,
            ])
        });
    }
    for (name, ok, err) in TALLY.lock().unwrap().iter() {
        eprintln!(
            "{name}: {} cases, {ok} Ok on both paths, {err} Err on both",
            ok + err
        );
    }
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

/// A failed call changes nothing: after a refused push or step, the object answers as an
/// untouched twin does.
#[test]
fn failed_calls_leave_state_unchanged() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = common::rng();
    for ctx in [Context::cpu(), gpu] {
        let d = 7;
        let good = ctx.tensor(&common::uniform(&mut rng, d), &[d]).unwrap();
        let bad_shape = ctx
            .tensor(&common::uniform(&mut rng, d + 1), &[d + 1])
            .unwrap();
        let probe = ctx.tensor(&common::uniform(&mut rng, d), &[d]).unwrap();

        let mut touched = SlidingInverse::new(&ctx, d, 3, 0.1).unwrap();
        let mut twin = SlidingInverse::new(&ctx, d, 3, 0.1).unwrap();
        for w in [&mut touched, &mut twin] {
            w.push(&good).unwrap();
        }
        assert!(touched.push(&bad_shape).is_err());
        assert_eq!(
            touched.ihvp(&probe).unwrap().to_vec().unwrap(),
            twin.ihvp(&probe).unwrap().to_vec().unwrap(),
            "{}: SlidingInverse after a refused push",
            ctx.device_name()
        );

        let config = MfacConfig {
            window: 2,
            ..Default::default()
        };
        let (mut touched, mut twin) = (
            Mfac::new(&ctx, d, config).unwrap(),
            Mfac::new(&ctx, d, config).unwrap(),
        );
        let start = common::uniform(&mut rng, d);
        let (mut p1, mut p2) = (
            ctx.tensor(&start, &[d]).unwrap(),
            ctx.tensor(&start, &[d]).unwrap(),
        );
        assert!(touched.step(&mut p1, &bad_shape).is_err());
        touched.step(&mut p1, &good).unwrap();
        twin.step(&mut p2, &good).unwrap();
        assert_eq!(
            p1.to_vec().unwrap(),
            p2.to_vec().unwrap(),
            "{}: Mfac after a refused step",
            ctx.device_name()
        );

        let (mut touched, mut twin) = (
            LinearDecoder::new(&ctx, 1, 2, 3, 4, FeatureMap::NormAware).unwrap(),
            LinearDecoder::new(&ctx, 1, 2, 3, 4, FeatureMap::NormAware).unwrap(),
        );
        let t = |len: usize, shape: &[usize]| {
            ctx.tensor(&common::uniform(&mut rng.clone(), len), shape)
                .unwrap()
        };
        let (q, v, wrong) = (t(6, &[1, 2, 3]), t(8, &[1, 2, 4]), t(8, &[1, 2, 4]));
        assert!(touched.step(&q, &wrong, &v).is_err());
        assert_eq!(touched.position(), 0);
        let a = touched.step(&q, &q, &v).unwrap().to_vec().unwrap();
        let b = twin.step(&q, &q, &v).unwrap().to_vec().unwrap();
        assert_eq!(
            a,
            b,
            "{}: LinearDecoder after a refused step",
            ctx.device_name()
        );
    }
}

/// Contexts, tensors and the stateful objects may be shared with or sent to other threads.
#[test]
fn the_public_types_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Context>();
    both::<Tensor>();
    both::<graph::Index>();
    both::<SlidingInverse>();
    both::<StaticInverse>();
    both::<Mfac>();
    both::<LinearDecoder>();
}
