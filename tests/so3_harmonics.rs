//! SO(3) basics: Clebsch–Gordan coefficients and harmonics calibrated on e3nn-jax 0.21 values
//! (tests/fixtures/e3nn_reference.json), Wigner D matrices, rotations, and the harmonics
//! kernel against the CPU path.

mod common;

use common::{max_abs_diff, random_rotation};
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

#[test]
fn wigner_d_is_a_representation_and_d1_is_the_rotation() {
    let mut rng = common::rng();
    let lmax = 6;
    let (r1, r2) = (random_rotation(&mut rng), random_rotation(&mut rng));
    let product = r1 * r2;
    let (d1, d2, d12) = (
        reference::wigner_d(lmax, &r1),
        reference::wigner_d(lmax, &r2),
        reference::wigner_d(lmax, &product),
    );
    for i in 0..3 {
        for j in 0..3 {
            assert!(
                (d1[1][i * 3 + j] - r1.matrix()[i][j]).abs() < 1e-12,
                "D^1 != R"
            );
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
    let forced = |form: &str| {
        common::gpu_with(wgkernels::GpuOptions {
            tuning: wgkernels::Tuning::Force(form.into()),
            ..Default::default()
        })
    };
    let forms: Vec<_> = [Some(ctx.clone()), forced("loop"), forced("unrolled")]
        .into_iter()
        .flatten()
        .collect();
    for (n, lmax) in [(1usize, 12), (7, 12), (300, 12), (5, 0), (6, 1)] {
        let mut v = common::uniform(&mut rng, 3 * n);
        if n == 300 {
            v[0..3].copy_from_slice(&[0.0, 0.0, 0.0]); // zero vector
            v[3..6].copy_from_slice(&[0.0, 0.0, 1e-20]); // pole, tiny
            v[6..9].copy_from_slice(&[1e25, -1e25, 3.0]); // |v|² overflows f32
            v[9..12].copy_from_slice(&[1e-30, 2e-30, -1e-30]); // |v|² underflows f32
        }
        let want = reference::spherical_harmonics(&v, lmax);
        // The default form, and each form forced: the recursion looping over its table, and
        // written out for the degree.
        for (ctx, form) in forms.iter().zip(["default", "loop", "unrolled"]) {
            let y = so3::spherical_harmonics(ctx, &ctx.tensor(&v, &[n, 3]).unwrap(), lmax)
                .unwrap()
                .to_vec()
                .unwrap();
            let err = relative_error(&y, &want);
            assert!(err < 1e-5, "{form}, n={n}: GPU vs CPU {err:e}");
            let d_y = common::uniform(&mut rng, y.len());
            let t = |x: &[f32], shape: &[usize]| ctx.tensor(x, shape).unwrap();
            let (tv, tg) = (t(&v, &[n, 3]), t(&d_y, &[n, y.len() / n]));
            let got = so3::spherical_harmonics_backward(ctx, &tv, lmax, &tg).unwrap();
            let want = reference::spherical_harmonics_backward(&v, lmax, &d_y);
            let err = relative_error(&got.to_vec().unwrap(), &want);
            assert!(err < 1e-5, "{form}, n={n}: backward GPU vs CPU {err:e}");
        }
    }

    // Equivariance on the GPU: Y(R v) = D(R) Y(v) to 1e-4.
    let lmax = 12;
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

#[test]
fn rotations_are_checked_and_their_constructors_agree() {
    use so3::Rotation;
    use wgkernels::Error;
    let not_orthonormal = [[0.0, -1.0, 0.0], [0.36, 0.0, -0.933], [0.933, 0.0, 0.36]];
    let reflection = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]];
    for r in [not_orthonormal, reflection] {
        assert!(matches!(
            Rotation::from_matrix(r),
            Err(Error::InvalidArgument { arg: "matrix", .. })
        ));
    }
    assert!(Rotation::from_axis_angle([0.0; 3], 1.0).is_err());
    assert!(Rotation::from_axis_angle([1.0, 0.0, 0.0], f64::NAN).is_err());
    assert!(Rotation::from_quaternion([0.0; 4]).is_err());
    assert!(Rotation::from_quaternion([f64::INFINITY, 0.0, 0.0, 0.0]).is_err());
    // About (1, 1, 1)/√3 by 120°: x → y → z → x, the quaternion (1, 1, 1, 1)/2.
    let cycle =
        Rotation::from_axis_angle([2.0, 2.0, 2.0], 2.0 * std::f64::consts::PI / 3.0).unwrap();
    let from_q = Rotation::from_quaternion([1.0, 1.0, 1.0, 1.0]).unwrap();
    let from_m =
        Rotation::from_matrix([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).unwrap();
    for r in [cycle, from_q] {
        let err = max_abs_diff(r.matrix().as_flattened(), from_m.matrix().as_flattened());
        assert!(err < 1e-15, "{err:e}");
    }
    let v = [0.3, -1.2, 2.0];
    let back = (cycle.inverse() * cycle).apply(v);
    assert!(max_abs_diff(&back, &v) < 1e-15);
    let rotation =
        Rotation::from_matrix([[0.0, -1.0, 0.0], [0.6, 0.0, -0.8], [0.8, 0.0, 0.6]]).unwrap();
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
