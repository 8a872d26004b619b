//! The CP-decomposed product (Tensor Decomposition Networks): an exact decomposition gives
//! cg_product, the fit is reproducible and reaches its error, the backward is the adjoint of
//! the product and matches finite differences, bad arguments are errors.
//!
//! Bounds: with exact factors the product is three f32 GEMMs and a product against the f64
//! CG sum: 1e-5 relative. The adjoint identity holds to the f32 rounding of the two sums
//! compared (1e-5 relative).

mod common;

use common::wide;
use wgkernels::compare::relative_error;
use wgkernels::so3::products::{apply, grouped, Grouping};
use wgkernels::so3::{self, reference, Coefficients, CpProduct};
use wgkernels::{Context, Error};

fn contexts() -> Vec<Context> {
    [Some(Context::cpu()), common::gpu()]
        .into_iter()
        .flatten()
        .collect()
}

/// The trivial exact decomposition: `M = Σ_{j,k} M[:, j, k] ⊗ e_j ⊗ e_k`, rank d2·d3.
fn exact(l1: usize, l2: usize, lo: usize) -> CpProduct {
    let (d1, d2, d3) = (reference::dim(l1), reference::dim(l2), reference::dim(lo));
    let rank = d2 * d3;
    let (mut a, mut b, mut c) = (
        vec![0.0; d1 * rank],
        vec![0.0; d2 * rank],
        vec![0.0; d3 * rank],
    );
    let table = grouped(Coefficients::ClebschGordan, l1, l2, lo, Grouping::Output);
    for k in 0..d3 {
        for &(i, j, w) in &table.terms[table.starts[k] as usize..table.starts[k + 1] as usize] {
            a[i as usize * rank + j as usize * d3 + k] += w;
        }
    }
    for j in 0..d2 {
        for k in 0..d3 {
            b[j * rank + j * d3 + k] = 1.0;
            c[k * rank + j * d3 + k] = 1.0;
        }
    }
    CpProduct::from_factors(l1, l2, lo, &a, &b, &c, rank).unwrap()
}

#[test]
fn an_exact_decomposition_is_cg_product_and_its_backward() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (l1, l2, lo, broadcast) in [(1, 1, 1, false), (2, 1, 3, true), (3, 2, 2, false)] {
            let cp = exact(l1, l2, lo);
            assert!(cp.fit_error() < 1e-14, "exact factors: {}", cp.fit_error());
            let (n, c) = (5, 3);
            let c2 = if broadcast { 1 } else { c };
            let (d1, d2, d3) = (reference::dim(l1), reference::dim(l2), reference::dim(lo));
            let (x1, x2, g) = (
                common::uniform(&mut rng, n * c * d1),
                common::uniform(&mut rng, n * c2 * d2),
                common::uniform(&mut rng, n * c * d3),
            );
            let (t1, t2, tg) = (
                ctx.tensor(&x1, &[n, c, d1]).unwrap(),
                ctx.tensor(&x2, &[n, c2, d2]).unwrap(),
                ctx.tensor(&g, &[n, c, d3]).unwrap(),
            );
            let label = format!("{} {l1}⊗{l2}→{lo} broadcast {broadcast}", ctx.device_name());
            let out = cp.apply(&ctx, &t1, &t2).unwrap();
            let group = if broadcast { c } else { 1 };
            let want = apply(
                &grouped(Coefficients::ClebschGordan, l1, l2, lo, Grouping::Output),
                &wide(&x1),
                d1,
                &wide(&x2),
                d2,
                group,
            );
            let e = relative_error(&out.to_vec().unwrap(), &want);
            assert!(e < 1e-5, "{label} apply: {e:e}");
            let grads = cp.backward(&ctx, &t1, &t2, &tg).unwrap();
            let host = Context::cpu();
            let h = |x: &[f32], shape: &[usize]| host.tensor(x, shape).unwrap();
            let want = so3::cg_product_backward(
                &host,
                &h(&x1, &[n, c, d1]),
                &h(&x2, &[n, c2, d2]),
                lo,
                &h(&g, &[n, c, d3]),
            )
            .unwrap();
            let e = relative_error(
                &grads.x1.to_vec().unwrap(),
                &wide(&want.x1.to_vec().unwrap()),
            );
            assert!(e < 1e-5, "{label} ∂x1: {e:e}");
            let e = relative_error(
                &grads.x2.to_vec().unwrap(),
                &wide(&want.x2.to_vec().unwrap()),
            );
            assert!(e < 1e-5, "{label} ∂x2: {e:e}");
            // Bilinearity: ⟨x1, ∂x1⟩ = ⟨out, d_out⟩ = ⟨x2, ∂x2⟩.
            let dot = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| x as f64 * y as f64)
                    .sum::<f64>()
            };
            let lhs = dot(&x1, &grads.x1.to_vec().unwrap());
            let rhs = dot(&out.to_vec().unwrap(), &g);
            let other = dot(&x2, &grads.x2.to_vec().unwrap());
            assert!(
                (lhs - rhs).abs() < 1e-5 * rhs.abs().max(1.0)
                    && (other - rhs).abs() < 1e-5 * rhs.abs().max(1.0),
                "{label}: {lhs} {rhs} {other}"
            );
        }
    }
}

/// `(fit_error bits, factor checksum)` of `CpProduct::fit(1, 1, 1, 3)`.
const GOLDEN_FIT: (u64, u64) = (0x3fe5_8ccd_cd49_3fd7, 0x941b_9847_7cc3_42e0);

#[test]
fn fits_reach_their_error_and_are_reproducible() {
    // 0..1 ⊗ 0..1 → 0..1: M is 4×4×4 with 20 nonzeros; rank 16 (= d2·d3) can be exact.
    let full = CpProduct::fit(1, 1, 1, 16).unwrap();
    assert!(
        full.fit_error() < 1e-6,
        "rank 16 at L = 1: {:e}",
        full.fit_error()
    );
    let low = CpProduct::fit(1, 1, 1, 3).unwrap();
    assert!(
        low.fit_error() > full.fit_error() && low.fit_error() < 1.0,
        "{:e}",
        low.fit_error()
    );
    assert_eq!(low.rank(), 3);
    // The same factors on a second call (the cache) and — the start is a fixed sequence — on
    // every machine; the product with the fitted factors is within its fit error of cg_product.
    let again = CpProduct::fit(1, 1, 1, 3).unwrap();
    assert_eq!(again.fit_error().to_bits(), low.fit_error().to_bits());
    // Across machines: the bits this fit gave where it was written (only + − × ÷ and sqrt,
    // all correctly rounded, in a fixed order). A change of the algorithm changes them.
    let checksum = low
        .factors()
        .iter()
        .flat_map(|f| f.iter())
        .fold(0u64, |h, x| h.rotate_left(5) ^ x.to_bits());
    println!(
        "fit(1,1,1,3): error bits {:#x}, checksum {checksum:#x}",
        low.fit_error().to_bits()
    );
    assert_eq!((low.fit_error().to_bits(), checksum), GOLDEN_FIT);
    // factors() gives back what from_factors takes.
    let [a, b, c] = low.factors();
    let copy = CpProduct::from_factors(1, 1, 1, a, b, c, 3).unwrap();
    assert_eq!(copy.fit_error().to_bits(), low.fit_error().to_bits());
    let mut rng = common::rng();
    let ctx = Context::cpu();
    let (x1, x2) = (
        common::uniform(&mut rng, 64 * 4),
        common::uniform(&mut rng, 64 * 4),
    );
    let (t1, t2) = (
        ctx.tensor(&x1, &[64, 1, 4]).unwrap(),
        ctx.tensor(&x2, &[64, 1, 4]).unwrap(),
    );
    let got = full.apply(&ctx, &t1, &t2).unwrap().to_vec().unwrap();
    let want = so3::cg_product(&ctx, &t1, &t2, 1)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(relative_error(&got, &wide(&want)) < 1e-5);
}

#[test]
fn bad_arguments_are_errors() {
    assert!(matches!(
        CpProduct::fit(1, 1, 1, 0),
        Err(Error::InvalidArgument { arg: "rank", .. })
    ));
    assert!(matches!(
        CpProduct::fit(so3::MAX_L + 1, 1, 1, 4),
        Err(Error::InvalidArgument { arg: "l1max", .. })
    ));
    let r = CpProduct::from_factors(1, 1, 1, &[0.5; 8], &[0.5; 8], &[0.5; 7], 2);
    assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
    let cp = exact(1, 1, 1);
    for ctx in contexts() {
        let t = |shape: &[usize]| {
            ctx.tensor(&vec![0.5; shape.iter().product()], shape)
                .unwrap()
        };
        // Inputs of other degrees than the fit, a d_out of the wrong shape.
        assert!(matches!(
            cp.apply(&ctx, &t(&[2, 3, 9]), &t(&[2, 3, 4])),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            cp.backward(&ctx, &t(&[2, 3, 4]), &t(&[2, 3, 4]), &t(&[2, 3, 9])),
            Err(Error::Shape { .. })
        ));
        if ctx.is_gpu() {
            let foreign = Context::cpu().tensor(&[0.5; 24], &[2, 3, 4]).unwrap();
            assert!(matches!(
                cp.apply(&ctx, &t(&[2, 3, 4]), &foreign),
                Err(Error::ContextMismatch { arg: "x2", .. })
            ));
        }
    }
}

/// The backward against central finite differences of the f64 product with the same
/// (random, not exact) factors: bilinear, so the differences are exact up to rounding
/// (checked at 1e-5, the f32 GEMMs' error).
#[test]
fn backward_matches_finite_differences() {
    let mut rng = common::rng();
    let (l1, l2, lo, rank) = (2, 1, 2, 5);
    let (d1, d2, d3) = (reference::dim(l1), reference::dim(l2), reference::dim(lo));
    let factors: Vec<Vec<f64>> = [d1, d2, d3]
        .iter()
        .map(|&d| wide(&common::uniform(&mut rng, d * rank)))
        .collect();
    let cp =
        CpProduct::from_factors(l1, l2, lo, &factors[0], &factors[1], &factors[2], rank).unwrap();
    let (n, c) = (3, 2);
    let (x1, x2, g) = (
        common::uniform(&mut rng, n * c * d1),
        common::uniform(&mut rng, n * d2),
        common::uniform(&mut rng, n * c * d3),
    );
    // L = Σ g·out in f64, x2 broadcast over the channels.
    let loss = |x1: &[f64], x2: &[f64]| -> f64 {
        let mut total = 0.0;
        for row in 0..n * c {
            let p1: Vec<f64> = (0..rank)
                .map(|r| {
                    (0..d1)
                        .map(|i| factors[0][i * rank + r] * x1[row * d1 + i])
                        .sum()
                })
                .collect();
            let p2: Vec<f64> = (0..rank)
                .map(|r| {
                    (0..d2)
                        .map(|j| factors[1][j * rank + r] * x2[(row / c) * d2 + j])
                        .sum()
                })
                .collect();
            for k in 0..d3 {
                let out: f64 = (0..rank)
                    .map(|r| factors[2][k * rank + r] * p1[r] * p2[r])
                    .sum();
                total += out * g[row * d3 + k] as f64;
            }
        }
        total
    };
    let fd = |x: &[f64], which: usize| -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
                plus[i] += 1e-6;
                minus[i] -= 1e-6;
                let (a, b) = if which == 0 {
                    (loss(&plus, &wide(&x2)), loss(&minus, &wide(&x2)))
                } else {
                    (loss(&wide(&x1), &plus), loss(&wide(&x1), &minus))
                };
                (a - b) / 2e-6
            })
            .collect()
    };
    let (want1, want2) = (fd(&wide(&x1), 0), fd(&wide(&x2), 1));
    for ctx in contexts() {
        let (t1, t2, tg) = (
            ctx.tensor(&x1, &[n, c, d1]).unwrap(),
            ctx.tensor(&x2, &[n, 1, d2]).unwrap(),
            ctx.tensor(&g, &[n, c, d3]).unwrap(),
        );
        let grads = cp.backward(&ctx, &t1, &t2, &tg).unwrap();
        let e = relative_error(&grads.x1.to_vec().unwrap(), &want1);
        assert!(
            e < 1e-5,
            "{} ∂x1 vs finite differences: {e:e}",
            ctx.device_name()
        );
        let e = relative_error(&grads.x2.to_vec().unwrap(), &want2);
        assert!(
            e < 1e-5,
            "{} ∂x2 vs finite differences: {e:e}",
            ctx.device_name()
        );
    }
}
