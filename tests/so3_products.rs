//! SO(3) products: the Clebsch–Gordan and direct Gaunt tables, their kernels against the
//! f64 reference, equivariance, broadcasting and errors.

mod common;

use common::{max_abs_diff, random_rotation};
use wgkernels::so3::{self, reference};

use wgkernels::compare::relative_error;
use wgkernels::so3::products::{apply, product_table};
use wgkernels::so3::{Coefficients, GauntMethod};
use wgkernels::{Context, Error};

fn coefficients(rng: &mut rand::rngs::StdRng, rows: usize, lmax: usize) -> Vec<f32> {
    common::uniform(rng, rows * reference::dim(lmax))
}

#[test]
fn the_cg_table_is_the_clebsch_gordan_coefficients_of_each_path() {
    let table = product_table(Coefficients::ClebschGordan, 3, 2, 4);
    for (l1, l2) in [(3usize, 2usize), (1, 1), (2, 2)] {
        for l3 in l1.abs_diff(l2)..=(l1 + l2).min(4) {
            let cg = so3::clebsch_gordan(l1, l2, l3).unwrap();
            let (n2, n3) = (2 * l2 + 1, 2 * l3 + 1);
            for (at, &w) in cg.iter().enumerate() {
                let (a, b, c) = (at / (n2 * n3), (at / n3) % n2, at % n3);
                let (i1, i2, i3) = (l1 * l1 + a, l2 * l2 + b, l3 * l3 + c);
                let found: f64 = table.terms
                    [table.starts[i3] as usize..table.starts[i3 + 1] as usize]
                    .iter()
                    .filter(|t| (t.0 as usize, t.1 as usize) == (i1, i2))
                    .map(|t| t.2)
                    .sum();
                assert!((found - w).abs() < 1e-15, "({l1},{l2},{l3}) [{a},{b},{c}]");
            }
        }
    }
}

#[test]
fn odd_paths_vanish_for_gaunt_and_not_for_cg() {
    // 1 ⊗ 1 → 1 is the cross product for CG and absent from the Gaunt product.
    let x1 = [0.0, 1.0, 0.0, 0.0];
    let x2 = [0.0, 0.0, 1.0, 0.0];
    let cg = apply(
        &product_table(Coefficients::ClebschGordan, 1, 1, 1),
        &x1,
        4,
        &x2,
        4,
        1,
    );
    let gaunt = apply(
        &product_table(Coefficients::Gaunt, 1, 1, 1),
        &x1,
        4,
        &x2,
        4,
        1,
    );
    assert!(cg[1..4].iter().any(|v| v.abs() > 0.1), "CG 1⊗1→1: {cg:?}");
    assert!(
        gaunt.iter().all(|v| v.abs() < 1e-14),
        "Gaunt 1⊗1→1: {gaunt:?}"
    );
    let gaunt_table = product_table(Coefficients::Gaunt, 4, 4, 4);
    for (i3, w) in gaunt_table.starts.windows(2).enumerate() {
        for &(i1, i2, _) in &gaunt_table.terms[w[0] as usize..w[1] as usize] {
            let l = |i: usize| (i as f64).sqrt() as usize;
            assert_eq!(
                (l(i1 as usize) + l(i2 as usize) + l(i3)) % 2,
                0,
                "odd Gaunt path"
            );
        }
    }
}

#[test]
fn direct_gaunt_equals_the_product_of_functions_projected_by_quadrature() {
    use wgkernels::so3::quadrature::sphere_rule;
    let mut rng = common::rng();
    let (l1, l2, lout) = (3usize, 4usize, 5usize);
    let x1: Vec<f64> = coefficients(&mut rng, 1, l1)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let x2: Vec<f64> = coefficients(&mut rng, 1, l2)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let direct = apply(
        &product_table(Coefficients::Gaunt, l1, l2, lout),
        &x1,
        x1.len(),
        &x2,
        x2.len(),
        1,
    );
    let lmax = l1.max(l2).max(lout);
    let (points, weights) = sphere_rule(l1 + l2 + lout);
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let y = reference::spherical_harmonics_f64(&flat, lmax);
    let d = reference::dim(lmax);
    let mut projected = vec![0.0; reference::dim(lout)];
    for (row, w) in y.chunks_exact(d).zip(&weights) {
        let f1: f64 = x1.iter().zip(row).map(|(a, b)| a * b).sum();
        let f2: f64 = x2.iter().zip(row).map(|(a, b)| a * b).sum();
        for (k, p) in projected.iter_mut().enumerate() {
            *p += w * f1 * f2 * row[k];
        }
    }
    let err = max_abs_diff(&direct, &projected);
    assert!(err < 1e-12, "direct vs quadrature {err:e}");
}

#[test]
fn products_are_equivariant_in_f64() {
    let mut rng = common::rng();
    let (l1, l2, lout) = (3usize, 2usize, 4usize);
    let rotation = random_rotation(&mut rng);
    let d = reference::wigner_d(l1.max(l2).max(lout), &rotation);
    let x1: Vec<f64> = coefficients(&mut rng, 4, l1)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let x2: Vec<f64> = coefficients(&mut rng, 4, l2)
        .iter()
        .map(|&v| v as f64)
        .collect();
    for kind in [Coefficients::ClebschGordan, Coefficients::Gaunt] {
        let table = product_table(kind, l1, l2, lout);
        let (d1, d2) = (reference::dim(l1), reference::dim(l2));
        let out = apply(&table, &x1, d1, &x2, d2, 1);
        let rotated_in = apply(
            &table,
            &reference::rotate_coefficients(&x1, l1, &d),
            d1,
            &reference::rotate_coefficients(&x2, l2, &d),
            d2,
            1,
        );
        let rotated_out = reference::rotate_coefficients(&out, lout, &d);
        let err = max_abs_diff(&rotated_in, &rotated_out);
        assert!(err < 1e-9, "{kind:?}: f(Dx) vs D f(x) {err:e}");
    }
}

#[test]
fn gpu_products_match_the_cpu_path_and_are_equivariant() {
    let Some(gpu) = common::gpu() else { return };
    let forms = common::gpu_per_sparse_form();
    let cpu = Context::cpu();
    let mut rng = common::rng();
    for (n, c, l1, l2, lout, broadcast) in [
        (1usize, 1usize, 2usize, 1usize, 3usize, false),
        (5, 3, 3, 2, 4, false),
        (7, 5, 2, 3, 5, true),
        (3, 1, 4, 4, 8, false),
    ] {
        let x1 = coefficients(&mut rng, n * c, l1);
        let c2 = if broadcast { 1 } else { c };
        let x2 = coefficients(&mut rng, n * c2, l2);
        let run = |ctx: &Context, kind: Coefficients| -> Vec<f32> {
            let t1 = ctx.tensor(&x1, &[n, c, reference::dim(l1)]).unwrap();
            let t2 = ctx.tensor(&x2, &[n, c2, reference::dim(l2)]).unwrap();
            let out = match kind {
                Coefficients::ClebschGordan => so3::cg_product(ctx, &t1, &t2, lout),
                Coefficients::Gaunt => so3::gaunt_product(ctx, &t1, &t2, lout, GauntMethod::Direct),
            };
            let out = out.unwrap();
            assert_eq!(out.shape(), &[n, c, reference::dim(lout)]);
            out.to_vec().unwrap()
        };
        for kind in [Coefficients::ClebschGordan, Coefficients::Gaunt] {
            let want: Vec<f64> = run(&cpu, kind).iter().map(|&v| v as f64).collect();
            for (ctx, form) in forms.iter().zip(common::SPARSE_FORMS) {
                let err = relative_error(&run(ctx, kind), &want);
                assert!(
                    err < 1e-5,
                    "{form} {kind:?} n={n} c={c} {l1}⊗{l2}→{lout} broadcast={broadcast}: {err:e}"
                );
            }
        }
    }
    // f(D x1, D x2) = D f(x1, x2) on the GPU, f32.
    let (l1, l2, lout, rows) = (3usize, 3usize, 6usize, 16usize);
    let rotation = random_rotation(&mut rng);
    let d = reference::wigner_d(lout, &rotation);
    let x1 = coefficients(&mut rng, rows, l1);
    let x2 = coefficients(&mut rng, rows, l2);
    let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let narrow = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let rx1 = narrow(&reference::rotate_coefficients(&wide(&x1), l1, &d));
    let rx2 = narrow(&reference::rotate_coefficients(&wide(&x2), l2, &d));
    let t = |x: &[f32], l: usize| gpu.tensor(x, &[rows, 1, reference::dim(l)]).unwrap();
    for method in [None, Some(GauntMethod::Direct)] {
        let f = |a: &[f32], b: &[f32]| -> Vec<f32> {
            let out = match method {
                None => so3::cg_product(&gpu, &t(a, l1), &t(b, l2), lout),
                Some(m) => so3::gaunt_product(&gpu, &t(a, l1), &t(b, l2), lout, m),
            };
            out.unwrap().to_vec().unwrap()
        };
        let rotated_out = reference::rotate_coefficients(&wide(&f(&x1, &x2)), lout, &d);
        let err = relative_error(&f(&rx1, &rx2), &rotated_out);
        assert!(err < 1e-4, "{method:?}: GPU equivariance {err:e}");
    }
}

/// With `GpuOptions::unrolled_max_terms` raised past a table's terms the table is written out
/// (CG and Gaunt 0..5 ⊗ 0..5 → 0..5: 5265 and 2907 terms; the CG one is past the default
/// 4096 and compiles in about 1.8 s on lavapipe), and agrees with the CPU path.
#[test]
fn a_raised_term_limit_writes_out_larger_tables() {
    let Some(gpu) = common::gpu_with(wgkernels::GpuOptions {
        tuning: wgkernels::Tuning::Force("unrolled".into()),
        unrolled_max_terms: 6000,
        ..Default::default()
    }) else {
        return;
    };
    let cpu = Context::cpu();
    let mut rng = common::rng();
    let (n, c, l) = (3, 2, 5);
    let x1 = coefficients(&mut rng, n * c, l);
    let x2 = coefficients(&mut rng, n * c, l);
    let run = |ctx: &Context, kind: Coefficients| -> Vec<f32> {
        let t1 = ctx.tensor(&x1, &[n, c, reference::dim(l)]).unwrap();
        let t2 = ctx.tensor(&x2, &[n, c, reference::dim(l)]).unwrap();
        let out = match kind {
            Coefficients::ClebschGordan => so3::cg_product(ctx, &t1, &t2, l),
            Coefficients::Gaunt => so3::gaunt_product(ctx, &t1, &t2, l, GauntMethod::Direct),
        };
        out.unwrap().to_vec().unwrap()
    };
    for kind in [Coefficients::ClebschGordan, Coefficients::Gaunt] {
        let want: Vec<f64> = run(&cpu, kind).iter().map(|&v| v as f64).collect();
        let err = relative_error(&run(&gpu, kind), &want);
        assert!(err < 1e-5, "{kind:?} 0..{l} written out: {err:e}");
    }
}

#[test]
fn bad_product_arguments_are_errors() {
    for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
        let t = |shape: &[usize]| {
            ctx.tensor(&vec![0.5; shape.iter().product()], shape)
                .unwrap()
        };
        let (x1, x2) = (t(&[2, 3, 9]), t(&[2, 3, 4]));
        let shape = |r: wgkernels::Result<wgkernels::Tensor>| matches!(r, Err(Error::Shape { .. }));
        assert!(
            shape(so3::cg_product(&ctx, &t(&[2, 3, 8]), &x2, 2)),
            "8 is not a square"
        );
        assert!(
            shape(so3::cg_product(&ctx, &x1, &t(&[3, 3, 4]), 2)),
            "n differs"
        );
        assert!(
            shape(so3::cg_product(&ctx, &x1, &t(&[2, 2, 4]), 2)),
            "c neither c nor 1"
        );
        assert!(shape(so3::cg_product(&ctx, &t(&[6, 9]), &x2, 2)), "2-D");
        assert!(matches!(
            so3::cg_product(&ctx, &x1, &x2, so3::MAX_L + 1),
            Err(Error::InvalidArgument {
                arg: "lmax_out",
                ..
            })
        ));
        assert!(
            so3::cg_product(&ctx, &x1, &t(&[2, 1, 4]), 3).is_ok(),
            "broadcast x2"
        );
    }
}
#[test]
fn gaunt_square_of_a_point_function_follows_funk_hecke() {
    // f(u) = Σ_lm Y_lm(v)·Y_lm(u) = Σ_l (2l+1)·P_l(u·v) (addition theorem, component
    // normalisation). f² is zonal about v, so by Funk–Hecke its projection is
    // out_lm = λ_l·Y_lm(v) with λ_l = ½∫₋₁¹ f(t)²·P_l(t) dt.
    use wgkernels::so3::products::{apply, product_table};
    use wgkernels::so3::quadrature::gauss_legendre;
    use wgkernels::so3::Coefficients;
    let (l, lout) = (3usize, 6usize);
    let v = [0.3f64, -0.5, 0.8];
    let x = reference::spherical_harmonics_f64(&v, l);
    let out = apply(
        &product_table(Coefficients::Gaunt, l, l, lout),
        &x,
        x.len(),
        &x,
        x.len(),
        1,
    );
    let legendre = |n: usize, t: f64| -> f64 {
        let (mut p0, mut p1) = (1.0, t);
        if n == 0 {
            return 1.0;
        }
        for k in 2..=n {
            let p2 = ((2 * k - 1) as f64 * t * p1 - (k - 1) as f64 * p0) / k as f64;
            p0 = p1;
            p1 = p2;
        }
        p1
    };
    let (nodes, weights) = gauss_legendre(2 * l + lout + 2);
    let y_v = reference::spherical_harmonics_f64(&v, lout);
    for k in 0..=lout {
        let lambda: f64 = nodes
            .iter()
            .zip(&weights)
            .map(|(&t, &w)| {
                let f: f64 = (0..=l).map(|j| (2 * j + 1) as f64 * legendre(j, t)).sum();
                0.5 * w * f * f * legendre(k, t)
            })
            .sum();
        for m in 0..2 * k + 1 {
            let i = k * k + m;
            assert!(
                (out[i] - lambda * y_v[i]).abs() < 1e-10,
                "l={k} m={m}: {} vs {}",
                out[i],
                lambda * y_v[i]
            );
        }
    }
}
