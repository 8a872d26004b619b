//! SO(3) coefficients and the CPU reference harmonics, calibrated on e3nn-jax 0.21 values
//! (`../shared/fixtures/e3nn_reference.json`, copied to tests/fixtures/).

mod common;

use wgkernels::so3::{self, reference};

fn fixture() -> serde_json::Value {
    let text = include_str!("fixtures/e3nn_reference.json");
    serde_json::from_str(text).unwrap()
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
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
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
    let vectors: Vec<f32> = fixture["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    let got = reference::spherical_harmonics(&vectors, lmax);
    let want: Vec<f64> = fixture["sh"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect();
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
fn harmonics_are_component_normalised_to_degree_12_and_zero_vectors_are_defined() {
    let mut rng = common::rng();
    let lmax = 12;
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
