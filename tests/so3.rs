//! SO(3) coefficients and the CPU reference harmonics, calibrated on e3nn-jax 0.21 values
//! (`../shared/fixtures/e3nn_reference.json`, copied to tests/fixtures/).

mod common;

use wgkernels::so3::{self, reference};

fn fixture() -> serde_json::Value {
    let text = include_str!("fixtures/e3nn_reference.json");
    serde_json::from_str(text).unwrap()
}

/// The fixture's `[5, 3]` vectors, flattened.
fn fixture_vectors(fixture: &serde_json::Value) -> Vec<f32> {
    fixture["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect()
}

/// The fixture's harmonics of those vectors, flattened.
fn fixture_harmonics(fixture: &serde_json::Value) -> Vec<f64> {
    fixture["sh"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect()
}

/// `max_i |a_i − b_i|`.
fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn clebsch_gordan_matches_e3nn_jax() {
    let fixture = fixture();
    let table = fixture["clebsch_gordan"].as_object().unwrap();
    assert!(!table.is_empty());
    for (key, value) in table {
        let l: Vec<usize> = key.split(',').map(|s| s.parse().unwrap()).collect();
        let want: Vec<f64> = value
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|a| a.as_array().unwrap().iter())
            .flat_map(|b| b.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect();
        let got = so3::clebsch_gordan(l[0], l[1], l[2]).unwrap();
        assert_eq!(got.len(), want.len(), "{key}");
        let err = max_abs_diff(&got, &want);
        assert!(
            err < 1e-12,
            "CG {key}: max error {err:e}\n got {got:?}\nwant {want:?}"
        );
    }
}

#[test]
fn clebsch_gordan_slices_are_orthogonal_with_unit_frobenius_norm() {
    for (l1, l2) in [(1usize, 1usize), (2, 3), (4, 4), (5, 2), (12, 12)] {
        for l3 in l1.abs_diff(l2)..=(l1 + l2).min(so3::MAX_L) {
            let c = so3::clebsch_gordan(l1, l2, l3).unwrap();
            let n3 = 2 * l3 + 1;
            let frobenius: f64 = c.iter().map(|x| x * x).sum();
            assert!(
                (frobenius - 1.0).abs() < 1e-10,
                "({l1},{l2},{l3}) norm {frobenius}"
            );
            // Σ_{m1,m2} C[m1,m2,m] C[m1,m2,m'] = δ_mm' / (2l3+1)
            for m in 0..n3 {
                for mp in 0..n3 {
                    let dot: f64 = c.chunks_exact(n3).map(|row| row[m] * row[mp]).sum();
                    let want = if m == mp { 1.0 / n3 as f64 } else { 0.0 };
                    assert!(
                        (dot - want).abs() < 1e-10,
                        "({l1},{l2},{l3}) m={m} m'={mp}: {dot}"
                    );
                }
            }
        }
    }
    assert!(so3::clebsch_gordan(so3::MAX_L + 1, 1, so3::MAX_L).is_none());
}

#[test]
fn spherical_harmonics_match_e3nn_jax() {
    let fixture = fixture();
    let lmax = fixture["lmax"].as_u64().unwrap() as usize;
    let vectors = fixture_vectors(&fixture);
    let got = reference::spherical_harmonics(&vectors, lmax);
    let want = fixture_harmonics(&fixture);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let d = reference::dim(lmax);
        assert!(
            (g - w).abs() < 1e-6,
            "vector {} index {}: {g} vs {w}",
            i / d,
            i % d
        );
    }
}

#[test]
fn harmonics_are_component_normalised_to_max_l_and_zero_vectors_are_defined() {
    let mut rng = common::rng();
    let lmax = so3::MAX_L;
    let mut vectors = common::uniform(&mut rng, 3 * 50);
    vectors.extend([0.0, 0.0, 0.0, 0.0, 1e-30, 0.0, 0.0, 0.0, -7.0]); // zero, tiny, pole
    let y = reference::spherical_harmonics(&vectors, lmax);
    let d = reference::dim(lmax);
    for (k, row) in y.chunks_exact(d).enumerate() {
        assert!(row.iter().all(|v| v.is_finite()));
        if k == 50 {
            assert_eq!(row[0], 1.0);
            assert!(row[1..].iter().all(|&v| v == 0.0), "zero vector");
            continue;
        }
        for l in 0..=lmax {
            let sum: f64 = row[l * l..(l + 1) * (l + 1)].iter().map(|v| v * v).sum();
            assert!(
                (sum - (2 * l + 1) as f64).abs() < 1e-9 * (2 * l + 1) as f64,
                "vector {k} l={l}: {sum}"
            );
        }
    }
}

#[test]
fn harmonics_are_orthonormal_under_quadrature() {
    use wgkernels::so3::quadrature::sphere_rule;
    let lmax = 8;
    let (points, weights) = sphere_rule(2 * lmax);
    let total: f64 = weights.iter().sum();
    assert!((total - 1.0).abs() < 1e-13);
    let vectors: Vec<f32> = points.iter().flat_map(|p| p.map(|x| x as f32)).collect();
    // f32 points: the harmonics are exact for the rounded points, which stay within 1e-7 of
    // the sphere rule's, so the Gram matrix is the identity to ~1e-6.
    let y = reference::spherical_harmonics(&vectors, lmax);
    let d = reference::dim(lmax);
    for a in 0..d {
        for b in 0..d {
            let g: f64 = y
                .chunks_exact(d)
                .zip(&weights)
                .map(|(row, w)| w * row[a] * row[b])
                .sum();
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((g - want).abs() < 1e-5, "<Y{a}, Y{b}> = {g}");
        }
    }
}

fn random_rotation(rng: &mut rand::rngs::StdRng) -> reference::Rotation {
    // A random unit quaternion gives a uniformly random rotation.
    use rand::Rng;
    let q: [f64; 4] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    let [w, x, y, z] = q.map(|v| v / n);
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

#[test]
fn wigner_d_is_a_representation_and_d1_is_the_rotation() {
    let mut rng = common::rng();
    let lmax = 6;
    let (r1, r2) = (random_rotation(&mut rng), random_rotation(&mut rng));
    let product: reference::Rotation =
        std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| r1[i][k] * r2[k][j]).sum()));
    let (d1, d2, d12) = (
        reference::wigner_d(lmax, &r1),
        reference::wigner_d(lmax, &r2),
        reference::wigner_d(lmax, &product),
    );
    for i in 0..3 {
        for j in 0..3 {
            assert!((d1[1][i * 3 + j] - r1[i][j]).abs() < 1e-12, "D^1 != R");
        }
    }
    for l in 0..=lmax {
        let n = 2 * l + 1;
        for a in 0..n {
            for b in 0..n {
                let composed: f64 = (0..n).map(|k| d1[l][a * n + k] * d2[l][k * n + b]).sum();
                assert!(
                    (composed - d12[l][a * n + b]).abs() < 1e-10,
                    "l={l}: D(R1)D(R2) != D(R1R2)"
                );
                let gram: f64 = (0..n).map(|k| d1[l][k * n + a] * d1[l][k * n + b]).sum();
                assert!(
                    (gram - (a == b) as u8 as f64).abs() < 1e-10,
                    "l={l}: D not orthogonal"
                );
            }
        }
    }
}

#[test]
fn harmonics_are_equivariant_in_f64() {
    let mut rng = common::rng();
    let lmax = 12;
    let rotation = random_rotation(&mut rng);
    let d = reference::wigner_d(lmax, &rotation);
    let vectors: Vec<[f64; 3]> = (0..20)
        .map(|_| common::uniform(&mut rng, 3))
        .map(|v| [v[0] as f64, v[1] as f64, v[2] as f64])
        .collect();
    let flat: Vec<f64> = vectors.iter().flatten().copied().collect();
    let rotated: Vec<f64> = vectors
        .iter()
        .flat_map(|v| reference::rotate_vector(&rotation, v))
        .collect();
    let y_of_rotated = reference::spherical_harmonics_f64(&rotated, lmax);
    let rotated_y =
        reference::rotate_coefficients(&reference::spherical_harmonics_f64(&flat, lmax), lmax, &d);
    let err = max_abs_diff(&y_of_rotated, &rotated_y);
    assert!(err < 1e-9, "Y(Rv) vs D(R)Y(v): {err:e}");
}

#[test]
fn gpu_harmonics_match_the_fixture_the_cpu_path_and_rotate() {
    use wgkernels::compare::relative_error;
    let Some(ctx) = common::gpu() else { return };
    let fixture = fixture();
    let vectors = fixture_vectors(&fixture);
    let want = fixture_harmonics(&fixture);
    let got = so3::spherical_harmonics(&ctx, &ctx.tensor(&vectors, &[5, 3]).unwrap(), 4)
        .unwrap()
        .to_vec()
        .unwrap();
    let err = got
        .iter()
        .zip(&want)
        .map(|(&g, w)| (g as f64 - w).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-5, "GPU vs e3nn-jax: {err:e}");

    let mut rng = common::rng();
    let lmax = 12;
    for n in [1usize, 7, 300] {
        let mut v = common::uniform(&mut rng, 3 * n);
        if n == 300 {
            v[0..3].copy_from_slice(&[0.0, 0.0, 0.0]); // zero vector
            v[3..6].copy_from_slice(&[0.0, 0.0, 1e-20]); // pole, tiny
            v[6..9].copy_from_slice(&[1e25, -1e25, 3.0]); // |v|² overflows f32
            v[9..12].copy_from_slice(&[1e-30, 2e-30, -1e-30]); // |v|² underflows f32
        }
        let y = so3::spherical_harmonics(&ctx, &ctx.tensor(&v, &[n, 3]).unwrap(), lmax)
            .unwrap()
            .to_vec()
            .unwrap();
        let want = reference::spherical_harmonics(&v, lmax);
        let err = relative_error(&y, &want);
        assert!(err < 1e-5, "n={n}: GPU vs CPU {err:e}");
    }

    // Equivariance on the GPU: Y(R v) = D(R) Y(v) to 1e-4.
    let rotation = random_rotation(&mut rng);
    let d = reference::wigner_d(lmax, &rotation);
    let v = common::uniform(&mut rng, 3 * 64);
    let rv: Vec<f32> = v
        .chunks_exact(3)
        .flat_map(|c| {
            reference::rotate_vector(&rotation, &[c[0] as f64, c[1] as f64, c[2] as f64])
                .map(|x| x as f32)
        })
        .collect();
    let y = so3::spherical_harmonics(&ctx, &ctx.tensor(&v, &[64, 3]).unwrap(), lmax)
        .unwrap()
        .to_vec()
        .unwrap();
    let y_rot = so3::spherical_harmonics(&ctx, &ctx.tensor(&rv, &[64, 3]).unwrap(), lmax)
        .unwrap()
        .to_vec()
        .unwrap();
    let y64: Vec<f64> = y.iter().map(|&x| x as f64).collect();
    let rotated = reference::rotate_coefficients(&y64, lmax, &d);
    let err = relative_error(&y_rot, &rotated);
    assert!(err < 1e-4, "GPU equivariance {err:e}");
}

#[test]
fn bad_harmonics_arguments_are_errors() {
    use wgkernels::{Context, Error};
    for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
        let v = ctx.tensor(&[1.0; 6], &[2, 3]).unwrap();
        assert!(matches!(
            so3::spherical_harmonics(&ctx, &ctx.tensor(&[1.0; 6], &[3, 2]).unwrap(), 2),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            so3::spherical_harmonics(&ctx, &ctx.tensor(&[1.0; 6], &[6]).unwrap(), 2),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            so3::spherical_harmonics(&ctx, &v, so3::MAX_L + 1),
            Err(Error::InvalidArgument { arg: "lmax", .. })
        ));
        let y = so3::spherical_harmonics(&ctx, &v, 0).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![1.0, 1.0]);
    }
}

mod products {
    use super::*;
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
                    Coefficients::Gaunt => {
                        so3::gaunt_product(ctx, &t1, &t2, lout, GauntMethod::Direct)
                    }
                };
                let out = out.unwrap();
                assert_eq!(out.shape(), &[n, c, reference::dim(lout)]);
                out.to_vec().unwrap()
            };
            for kind in [Coefficients::ClebschGordan, Coefficients::Gaunt] {
                let want: Vec<f64> = run(&cpu, kind).iter().map(|&v| v as f64).collect();
                let err = relative_error(&run(&gpu, kind), &want);
                assert!(
                    err < 1e-5,
                    "{kind:?} n={n} c={c} {l1}⊗{l2}→{lout} broadcast={broadcast}: {err:e}"
                );
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

    #[test]
    fn bad_product_arguments_are_errors() {
        for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
            let t = |shape: &[usize]| {
                ctx.tensor(&vec![0.5; shape.iter().product()], shape)
                    .unwrap()
            };
            let (x1, x2) = (t(&[2, 3, 9]), t(&[2, 3, 4]));
            let shape =
                |r: wgkernels::Result<wgkernels::Tensor>| matches!(r, Err(Error::Shape { .. }));
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

#[test]
fn wigner_d_rejects_matrices_that_are_not_rotations() {
    use wgkernels::Error;
    let not_orthonormal = [[0.0, -1.0, 0.0], [0.36, 0.0, -0.933], [0.933, 0.0, 0.36]];
    let reflection = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]];
    for r in [not_orthonormal, reflection] {
        assert!(matches!(
            so3::wigner_d(2, &r),
            Err(Error::InvalidArgument {
                arg: "rotation",
                ..
            })
        ));
    }
    let rotation = [[0.0, -1.0, 0.0], [0.6, 0.0, -0.8], [0.8, 0.0, 0.6]];
    assert_eq!(so3::wigner_d(3, &rotation).unwrap().len(), 4);
    assert!(so3::wigner_d(so3::MAX_L + 1, &rotation).is_err());
}

#[test]
fn rotate_applies_the_wigner_d_blocks_on_the_device() {
    use wgkernels::compare::relative_error;
    use wgkernels::Context;
    let mut rng = common::rng();
    let rotation = random_rotation(&mut rng);
    let lmax = 5;
    let d = reference::wigner_d(lmax, &rotation);
    let x = common::uniform(&mut rng, 7 * 3 * reference::dim(lmax));
    let wide: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let want = reference::rotate_coefficients(&wide, lmax, &d);
    for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
        let t = ctx.tensor(&x, &[7, 3, reference::dim(lmax)]).unwrap();
        let r = so3::rotate(&ctx, &t, &rotation).unwrap();
        assert_eq!(r.shape(), t.shape());
        let err = relative_error(&r.to_vec().unwrap(), &want);
        assert!(err < 1e-5, "{}: {err:e}", ctx.device_name());
        assert!(so3::rotate(&ctx, &ctx.tensor(&[1.0; 10], &[2, 5]).unwrap(), &rotation).is_err());
    }
}

/// GauntMethod::Grid (the separable spherical-grid route) against Direct.
mod grid {
    use super::*;
    use wgkernels::compare::relative_error;
    use wgkernels::so3::fourier::{gaunt_fourier, FourierPlan};
    use wgkernels::so3::grid::{gaunt_grid, GridPlan};
    use wgkernels::so3::products::{apply, product_table};
    use wgkernels::so3::{Coefficients, GauntMethod};
    use wgkernels::{Context, Error};

    /// The O(L³) routes, tested alike.
    const METHODS: [GauntMethod; 2] = [GauntMethod::Grid, GauntMethod::Fourier];

    fn wide(x: &[f32]) -> Vec<f64> {
        x.iter().map(|&v| v as f64).collect()
    }

    /// The first `keep` entries of every row of `width`.
    pub(super) fn prefix(rows: &[f64], width: usize, keep: usize) -> Vec<f64> {
        rows.chunks(width)
            .flat_map(|r| r[..keep].to_vec())
            .collect()
    }

    /// Θ_lm(β)·Φ_m(α) rebuilds every harmonic at random points: the factorisation the
    /// separable transform rests on.
    #[test]
    fn harmonics_factor_into_rings_and_azimuths() {
        let plan = GridPlan::new(4, 3, 5);
        let (d, width, lt) = (
            reference::dim(plan.l_table),
            2 * plan.l_table + 1,
            plan.l_table,
        );
        let f = plan.to_grid(&vec![0.0; d], 0); // the grid's shape only
        assert_eq!(f.len(), plan.n_beta * plan.n_alpha);
        // One coefficient at a time: the grid values are Y_lm at the grid points.
        let (nodes, _) = so3::quadrature::gauss_legendre(plan.n_beta);
        for l in 0..=lt {
            for m in -(l as i64)..=l as i64 {
                let index = l * l + (m + l as i64) as usize;
                let mut x = vec![0.0; reference::dim(l)];
                x[index] = 1.0;
                let values = plan.to_grid(&x, l);
                for (i, &z) in nodes.iter().enumerate() {
                    for j in [0, plan.n_alpha / 3, plan.n_alpha - 1] {
                        let alpha = 2.0 * std::f64::consts::PI * j as f64 / plan.n_alpha as f64;
                        let s = (1.0 - z * z).sqrt();
                        let u = [s * alpha.sin(), z, s * alpha.cos()];
                        let y = reference::spherical_harmonics_f64(&u, l);
                        let got = values[i * plan.n_alpha + j];
                        assert!(
                            (got - y[index]).abs() < 1e-12,
                            "Y_{l},{m} ring {i} point {j}"
                        );
                    }
                }
            }
        }
        let _ = (width, d);
    }

    /// The ring product (a convolution of Fourier coefficients along α) equals sampling both
    /// functions on the grid, multiplying pointwise and projecting back.
    #[test]
    fn ring_products_equal_the_sampled_grid() {
        let mut rng = common::rng();
        for (l1, l2, lout) in [(3usize, 5usize, 4usize), (6, 2, 8), (0, 4, 4), (7, 7, 14)] {
            let plan = GridPlan::new(l1, l2, lout);
            let x1 = wide(&common::uniform(&mut rng, reference::dim(l1)));
            let x2 = wide(&common::uniform(&mut rng, reference::dim(l2)));
            let (f1, f2) = (plan.to_grid(&x1, l1), plan.to_grid(&x2, l2));
            let h: Vec<f64> = f1.iter().zip(&f2).map(|(a, b)| a * b).collect();
            let sampled = plan.from_grid(&h);
            let rings = gaunt_grid(&plan, &x1, &x2, 1);
            let err = max_abs_diff(&sampled, &rings);
            assert!(err < 1e-12, "{l1}⊗{l2}→{lout}: {err:e}");
        }
    }

    /// Every (l1, l2, lmax_out) with l ≤ 10: the f64 Grid and Fourier routes equal Direct to
    /// 1e-10, and their GPU kernels (f32) to 1e-5 relative.
    #[test]
    fn grid_and_fourier_equal_direct_for_every_degree_up_to_10() {
        let mut rng = common::rng();
        let gpu = common::gpu();
        let (n, c) = (3usize, 1usize);
        for l1 in 0..=10usize {
            for l2 in 0..=10usize {
                let x1 = common::uniform(&mut rng, n * c * reference::dim(l1));
                let x2 = common::uniform(&mut rng, n * c * reference::dim(l2));
                let (a, b) = (wide(&x1), wide(&x2));
                // Direct to degree 10 once: lower lmax_out keep a prefix of each row.
                let table = product_table(Coefficients::Gaunt, l1, l2, 10);
                let (d1, d2) = (reference::dim(l1), reference::dim(l2));
                let full = apply(&table, &a, d1, &b, d2, 1);
                for lout in 0..=10usize {
                    let direct = prefix(&full, reference::dim(10), reference::dim(lout));
                    let grid = gaunt_grid(&GridPlan::new(l1, l2, lout), &a, &b, 1);
                    let err = max_abs_diff(&grid, &direct);
                    assert!(err < 1e-10, "f64 Grid {l1}⊗{l2}→{lout}: {err:e}");
                    let fourier = gaunt_fourier(&FourierPlan::new(l1, l2, lout), &a, &b, 1);
                    let err = max_abs_diff(&fourier, &direct);
                    assert!(err < 1e-10, "f64 Fourier {l1}⊗{l2}→{lout}: {err:e}");
                    let Some(gpu) = &gpu else { continue };
                    let t1 = gpu.tensor(&x1, &[n, c, d1]).unwrap();
                    let t2 = gpu.tensor(&x2, &[n, c, d2]).unwrap();
                    for method in METHODS {
                        let got = so3::gaunt_product(gpu, &t1, &t2, lout, method)
                            .unwrap()
                            .to_vec()
                            .unwrap();
                        // Odd paths vanish: a product of all-odd degrees can be exactly 0.
                        let scale = direct.iter().map(|v| v * v).sum::<f64>().sqrt();
                        let err = if scale > 1e-6 {
                            relative_error(&got, &direct)
                        } else {
                            got.iter().map(|v| v.abs() as f64).fold(0.0, f64::max)
                        };
                        assert!(err < 1e-5, "GPU {method:?} {l1}⊗{l2}→{lout}: {err:e}");
                    }
                }
            }
        }
    }

    /// Odd batches and channels, x2 broadcast over channels, both paths.
    #[test]
    fn odd_batches_channels_and_broadcast() {
        let mut rng = common::rng();
        for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
            for (n, c, l1, l2, lout, broadcast) in [
                (7usize, 5usize, 3usize, 2usize, 4usize, true),
                (5, 3, 4, 4, 8, false),
                (1, 1, 0, 6, 6, false),
                (2, 3, 10, 10, 20, false), // the third setting at L = 10
            ] {
                let c2 = if broadcast { 1 } else { c };
                let (d1, d2) = (reference::dim(l1), reference::dim(l2));
                let x1 = common::uniform(&mut rng, n * c * d1);
                let x2 = common::uniform(&mut rng, n * c2 * d2);
                let t1 = ctx.tensor(&x1, &[n, c, d1]).unwrap();
                let t2 = ctx.tensor(&x2, &[n, c2, d2]).unwrap();
                let table = product_table(Coefficients::Gaunt, l1, l2, lout);
                let group = if broadcast { c } else { 1 };
                let want = apply(&table, &wide(&x1), d1, &wide(&x2), d2, group);
                for method in METHODS {
                    let got = so3::gaunt_product(&ctx, &t1, &t2, lout, method).unwrap();
                    assert_eq!(got.shape(), &[n, c, reference::dim(lout)]);
                    let err = relative_error(&got.to_vec().unwrap(), &want);
                    assert!(
                        err < 1e-5,
                        "{} {method:?} n={n} c={c} {l1}⊗{l2}→{lout}: {err:e}",
                        ctx.device_name()
                    );
                }
            }
        }
    }

    /// f(D x1, D x2) = D f(x1, x2) for random rotations, in f32 on the GPU.
    #[test]
    fn grid_and_fourier_products_are_equivariant() {
        let Some(ctx) = common::gpu() else { return };
        let mut rng = common::rng();
        let (l1, l2, lout, rows) = (4usize, 3usize, 7usize, 9usize);
        for method in METHODS.into_iter().flat_map(|m| [m; 3]) {
            let rotation = random_rotation(&mut rng);
            let d = reference::wigner_d(lout.max(l1), &rotation);
            let x1 = common::uniform(&mut rng, rows * reference::dim(l1));
            let x2 = common::uniform(&mut rng, rows * reference::dim(l2));
            let narrow = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let run = |a: &[f32], b: &[f32]| -> Vec<f32> {
                let t1 = ctx.tensor(a, &[rows, 1, reference::dim(l1)]).unwrap();
                let t2 = ctx.tensor(b, &[rows, 1, reference::dim(l2)]).unwrap();
                so3::gaunt_product(&ctx, &t1, &t2, lout, method)
                    .unwrap()
                    .to_vec()
                    .unwrap()
            };
            let rotated_in = run(
                &narrow(&reference::rotate_coefficients(&wide(&x1), l1, &d)),
                &narrow(&reference::rotate_coefficients(&wide(&x2), l2, &d)),
            );
            let rotated_out = reference::rotate_coefficients(&wide(&run(&x1, &x2)), lout, &d);
            let err = relative_error(&rotated_in, &rotated_out);
            assert!(err < 1e-5, "{method:?}: f(Dx) vs D f(x): {err:e}");
        }
    }

    #[test]
    fn grids_past_the_kernel_size_are_an_error_on_the_gpu() {
        let Some(ctx) = common::gpu() else { return };
        let t = ctx.tensor(&vec![0.5; 289], &[1, 1, 289]).unwrap(); // degree 16
        let cpu = Context::cpu();
        let host = cpu.tensor(&vec![0.5; 289], &[1, 1, 289]).unwrap();
        for method in METHODS {
            let r = so3::gaunt_product(&ctx, &t, &t, 16, method);
            assert!(
                matches!(
                    r,
                    Err(Error::InvalidArgument {
                        arg: "lmax_out",
                        ..
                    })
                ),
                "{method:?}: {r:?}"
            );
            assert!(so3::gaunt_product(&cpu, &host, &host, 16, method).is_ok());
        }
    }
}

/// The pieces of the f64 Fourier route.
mod fourier {
    use super::*;
    use num_complex::Complex64;
    use wgkernels::so3::fourier::{convolve, convolve_fft};

    /// The FFT convolution (rustfft) equals the direct double sum.
    #[test]
    fn fft_convolution_equals_the_direct_sum() {
        let mut rng = common::rng();
        for (a, b) in [(0usize, 0usize), (1, 0), (3, 5), (10, 10), (7, 2)] {
            let mut grid = |l: usize| -> Vec<Complex64> {
                common::uniform(&mut rng, 2 * (2 * l + 1) * (2 * l + 1))
                    .chunks(2)
                    .map(|p| Complex64::new(p[0] as f64, p[1] as f64))
                    .collect()
            };
            let (x, y) = (grid(a), grid(b));
            let (want, got) = (convolve(&x, a, &y, b), convolve_fft(&x, a, &y, b));
            let err = want
                .iter()
                .zip(&got)
                .map(|(p, q)| (p - q).norm())
                .fold(0.0, f64::max);
            assert!(err < 1e-12, "{a} ∗ {b}: {err:e}");
        }
    }
}

/// The WGSL 2D FFT of the Fourier route, alone, against rustfft.
mod fft {
    use super::common;
    use num_complex::Complex64;
    use wgkernels::compare::relative_error;
    use wgkernels::so3::fft::{fft2, fft2_reference, FftDirection};
    use wgkernels::{Context, Error, GpuOptions};

    const SIZES: [usize; 7] = [1, 2, 3, 5, 16, 17, 64];

    /// `grids` random `[rows, cols]` grids through the kernel and through rustfft; the
    /// relative L2 error (bound 1e-5: f32 rounding grows like log n, here ~1e-7).
    fn error(
        ctx: &Context,
        grids: usize,
        rows: usize,
        cols: usize,
        direction: FftDirection,
    ) -> f64 {
        let mut rng = common::rng();
        let x = common::uniform(&mut rng, grids * rows * cols * 2);
        let wide: Vec<Complex64> = x
            .chunks(2)
            .map(|p| Complex64::new(p[0] as f64, p[1] as f64))
            .collect();
        let want: Vec<f64> = fft2_reference(&wide, rows, cols, direction)
            .iter()
            .flat_map(|z| [z.re, z.im])
            .collect();
        let input = ctx.tensor(&x, &[grids, rows, cols, 2]).unwrap();
        let got = fft2(ctx, &input, direction).unwrap().to_vec().unwrap();
        relative_error(&got, &want)
    }

    #[test]
    fn fft_matches_rustfft_at_every_listed_size() {
        let Some(ctx) = common::gpu() else { return };
        // Each length along each axis, and with every other length once (a pipeline per
        // shape costs ~0.5 s on lavapipe, so not all 48 pairs).
        let shapes = SIZES
            .iter()
            .zip(SIZES.iter().cycle().skip(3))
            .flat_map(|(&a, &b)| [(a, b), (b, a)]);
        for (rows, cols) in shapes {
            for direction in [FftDirection::Forward, FftDirection::Inverse] {
                let err = error(&ctx, 3, rows, cols, direction);
                eprintln!("{rows}×{cols} {direction:?}: {err:.1e}");
                assert!(err < 1e-5, "{rows}×{cols} {direction:?}: {err:e}");
            }
        }
    }

    #[test]
    fn smooth_lengths_of_the_gaunt_route_and_grids_over_several_bindings() {
        let Some(ctx) = common::gpu() else { return };
        let Some(small) = common::gpu_with(GpuOptions {
            max_binding_bytes: Some(4096),
            ..Default::default()
        }) else {
            return;
        };
        // 45 = 3·3·5 and 48 = 4·4·3 (the route's padded lengths at L = 10); 7×9 grids are
        // 504 bytes, so 19 of them span three 4 KiB bindings.
        for (ctx, grids, rows, cols) in [(&ctx, 2, 45, 45), (&ctx, 2, 48, 40), (&small, 19, 7, 9)] {
            for direction in [FftDirection::Forward, FftDirection::Inverse] {
                let err = error(ctx, grids, rows, cols, direction);
                assert!(err < 1e-5, "{grids}×{rows}×{cols} {direction:?}: {err:e}");
            }
        }
    }

    #[test]
    fn bad_grids_are_errors_on_both_paths() {
        let gpu = common::gpu();
        for ctx in gpu.into_iter().chain([Context::cpu()]) {
            let t = |shape: &[usize]| {
                let n = shape.iter().product();
                ctx.tensor(&vec![0.5; n], shape).unwrap()
            };
            let forward = FftDirection::Forward;
            assert!(matches!(
                fft2(&ctx, &t(&[1, 64, 64, 2]), forward),
                Err(Error::InvalidArgument { arg: "x", .. })
            ));
            assert!(matches!(
                fft2(&ctx, &t(&[1, 37, 2, 2]), forward),
                Err(Error::InvalidArgument { arg: "x", .. })
            ));
            assert!(matches!(
                fft2(&ctx, &t(&[1, 4, 4]), forward),
                Err(Error::Shape { .. })
            ));
        }
    }
}
