//! The harmonics' double backward.

use super::*;

/// Vectors of length 0.3..2 in random directions.
fn vectors(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|_| {
            let v: [f32; 3] = std::array::from_fn(|_| rng.random_range(-1.0f32..1.0));
            let r = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-3);
            let length = rng.random_range(0.3f32..2.0);
            v.map(|x| x / r * length)
        })
        .collect()
}

#[test]
fn harmonics_reference_matches_finite_differences() {
    let mut rng = common::rng();
    for lmax in [1, 2, 5, 9] {
        let n = 3;
        let d = reference::dim(lmax);
        let (v, g, dd) = (
            vectors(&mut rng, n),
            common::uniform(&mut rng, n * d),
            common::uniform(&mut rng, n * 3),
        );
        let [dv, dg] = reference::spherical_harmonics_double_backward(&v, lmax, &g, &dd);
        let (v64, g64, dd64) = (wide(&v), wide(&g), wide(&dd));
        // ⟨dd, J(v)ᵀ·g⟩ as a function of v, and of g.
        let pairing = |v: &[f64], g: &[f64]| {
            dot(
                &dd64,
                &reference::spherical_harmonics_backward_f64(v, lmax, g),
            )
        };
        let fd_v = central_differences(|x| pairing(x, &g64), &v64);
        let e = common::relative_error_f64(&dv, &fd_v);
        assert!(e < HARMONICS_FD_BOUND, "lmax {lmax} ∂v: {e:e}");
        let fd_g = central_differences(|x| pairing(&v64, x), &g64);
        let e = common::relative_error_f64(&dg, &fd_g);
        assert!(e < HARMONICS_FD_BOUND, "lmax {lmax} ∂d_y: {e:e}");
    }
}

/// Both paths against the f64 reference at odd sizes, above one workgroup (64 vectors), with
/// a zero vector (zeros) and a NaN one (NaN) among them; outputs are poisoned first.
#[test]
fn harmonics_double_backward_matches_the_reference() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (n, lmax) in [(1, 0), (1, 1), (37, 2), (130, 4), (5, 12)] {
            let d = reference::dim(lmax);
            let mut v = vectors(&mut rng, n);
            if n > 2 {
                v[3..6].fill(0.0);
                v[6] = f32::NAN;
            }
            let (g, dd) = (
                common::uniform(&mut rng, n * d),
                common::uniform(&mut rng, n * 3),
            );
            let [want_v, want_g] =
                reference::spherical_harmonics_double_backward(&v, lmax, &g, &dd);
            let t = |data: &[f32], shape: &[usize]| ctx.tensor(data, shape).unwrap();
            let got = so3::spherical_harmonics_double_backward(
                &ctx,
                &t(&v, &[n, 3]),
                lmax,
                &t(&g, &[n, d]),
                &t(&dd, &[n, 3]),
            )
            .unwrap();
            let label = format!("{} n {n} lmax {lmax}", ctx.device_name());
            // The NaN row is compared for being NaN; the rest by the bound.
            let finite = |x: &[f64]| {
                x.iter()
                    .map(|&v| if v.is_nan() { 0.0 } else { v })
                    .collect::<Vec<_>>()
            };
            let (got_v, got_g) = (got.vectors.to_vec().unwrap(), got.d_y.to_vec().unwrap());
            for (got, want) in [(&got_v, &want_v), (&got_g, &want_g)] {
                assert!(
                    got.iter()
                        .zip(want.iter())
                        .all(|(g, w)| g.is_nan() == w.is_nan()),
                    "{label}: NaN where the reference has one, and only there"
                );
            }
            if n > 2 {
                assert!(
                    got_v[3..6].iter().all(|&x| x == 0.0),
                    "{label}: zero vector"
                );
            }
            let strip = |x: &[f32]| {
                x.iter()
                    .map(|&v| if v.is_nan() { 0.0 } else { v })
                    .collect::<Vec<f32>>()
            };
            let e = relative_error(&strip(&got_v), &finite(&want_v));
            assert!(e < HARMONICS_BOUND, "{label} ∂v: {e:e}");
            let e = relative_error(&strip(&got_g), &finite(&want_g));
            assert!(e < HARMONICS_BOUND, "{label} ∂d_y: {e:e}");
        }
    }
}

#[test]
fn harmonics_double_backward_over_split_bindings() {
    let mut rng = common::rng();
    let Some(ctx) = common::gpu_with(GpuOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    }) else {
        return;
    };
    let (n, lmax) = (300, 3); // d_y: 300·16 floats, several 4 KiB bindings
    let d = reference::dim(lmax);
    let (v, g, dd) = (
        vectors(&mut rng, n),
        common::uniform(&mut rng, n * d),
        common::uniform(&mut rng, n * 3),
    );
    let [want_v, want_g] = reference::spherical_harmonics_double_backward(&v, lmax, &g, &dd);
    let t = |data: &[f32], shape: &[usize]| ctx.tensor(data, shape).unwrap();
    let got = so3::spherical_harmonics_double_backward(
        &ctx,
        &t(&v, &[n, 3]),
        lmax,
        &t(&g, &[n, d]),
        &t(&dd, &[n, 3]),
    )
    .unwrap();
    check("split ∂v", &got.vectors, &want_v, HARMONICS_BOUND);
    check("split ∂d_y", &got.d_y, &want_g, HARMONICS_BOUND);
}
