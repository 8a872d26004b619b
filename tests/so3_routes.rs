//! The O(L³) Gaunt routes: the spherical grid and the 2D-Fourier/FFT route against Direct
//! for every degree up to 10, their f64 pieces, and the WGSL 2D FFT against rustfft.

mod common;

use common::{max_abs_diff, random_rotation};
use wgkernels::so3::{self, reference};

/// GauntMethod::Grid (the separable spherical-grid route) against Direct.
mod grid {
    use super::*;
    use wgkernels::compare::relative_error;
    use wgkernels::so3::fourier::{gaunt_fourier, FourierPlan};
    use wgkernels::so3::grid::{gaunt_grid, GridPlan};
    use wgkernels::so3::products::{apply, product_table};
    use wgkernels::so3::{Coefficients, GauntMethod};
    use wgkernels::Context;

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

    /// Inputs of very different sizes: the Fourier route packs both into one complex
    /// transform, which would round the smaller one relative to the larger (a 0 ⊗ 6 product
    /// with |x1| = 0.005 once lost 2·10⁻⁵); each is scaled by a power of two first.
    #[test]
    fn unbalanced_inputs_keep_their_accuracy() {
        let mut rng = common::rng();
        let Some(ctx) = common::gpu() else { return };
        for (l1, l2, lout) in [(0usize, 6usize, 6usize), (2, 5, 7), (4, 1, 5)] {
            for (scale1, scale2) in [(1e-3f32, 1.0f32), (1.0, 1e-4), (1e-20, 1e15), (3e4, 2e-6)] {
                let (d1, d2) = (reference::dim(l1), reference::dim(l2));
                let x1: Vec<f32> = common::uniform(&mut rng, 3 * d1)
                    .iter()
                    .map(|v| v * scale1)
                    .collect();
                let x2: Vec<f32> = common::uniform(&mut rng, 3 * d2)
                    .iter()
                    .map(|v| v * scale2)
                    .collect();
                let table = product_table(Coefficients::Gaunt, l1, l2, lout);
                let want = apply(&table, &wide(&x1), d1, &wide(&x2), d2, 1);
                let t1 = ctx.tensor(&x1, &[3, 1, d1]).unwrap();
                let t2 = ctx.tensor(&x2, &[3, 1, d2]).unwrap();
                for method in METHODS {
                    let got = so3::gaunt_product(&ctx, &t1, &t2, lout, method).unwrap();
                    let err = relative_error(&got.to_vec().unwrap(), &want);
                    assert!(
                        err < 1e-5,
                        "{method:?} {l1}⊗{l2}→{lout}, sizes {scale1:e} and {scale2:e}: {err:e}"
                    );
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

    /// Past what one workgroup's memory holds (Grid: inputs of degree > 16, or about
    /// l1 + l2 + lmax_out > 44; Fourier: FFT grids past 2048 entries), the kernels keep their
    /// stages in a storage scratch slice per row: every degree up to MAX_L runs on the GPU and
    /// gives what the CPU path gives (the f64 routes, equal to Direct up to degree 10 above).
    /// Bound 1e-5: the same f32 sums as below the limit (≤ 37 rings and ≤ 49 azimuthal terms;
    /// FFTs of ≤ 100 points per axis).
    #[test]
    fn products_past_the_workgroup_size_run_on_the_gpu() {
        let Some(ctx) = common::gpu() else { return };
        let mut rng = common::rng();
        let cpu = Context::cpu();
        for (n, c, l1, l2, lout) in [
            (3usize, 1usize, 16usize, 16usize, 16usize),
            (1, 2, 12, 12, 24),
            (2, 1, 24, 3, 24),
            (1, 1, so3::MAX_L, so3::MAX_L, so3::MAX_L),
        ] {
            let (d1, d2) = (reference::dim(l1), reference::dim(l2));
            let x1 = common::uniform(&mut rng, n * c * d1);
            let x2 = common::uniform(&mut rng, n * c * d2);
            for method in METHODS {
                let run = |ctx: &Context| {
                    let t1 = ctx.tensor(&x1, &[n, c, d1]).unwrap();
                    let t2 = ctx.tensor(&x2, &[n, c, d2]).unwrap();
                    so3::gaunt_product(ctx, &t1, &t2, lout, method)
                        .unwrap()
                        .to_vec()
                        .unwrap()
                };
                let (got, want) = (run(&ctx), run(&cpu));
                let err = relative_error(&got, &wide(&want));
                assert!(
                    err < 1e-5,
                    "{method:?} {l1}⊗{l2}→{lout} (n={n}, c={c}): {err:e}"
                );
            }
        }
        // The backward is two such products (d_out's degree in the output's place).
        let (l, lout, rows) = (12usize, 24usize, 2usize);
        let (d, d3) = (reference::dim(l), reference::dim(lout));
        let (x1, x2, g) = (
            common::uniform(&mut rng, rows * d),
            common::uniform(&mut rng, rows * d),
            common::uniform(&mut rng, rows * d3),
        );
        for method in METHODS {
            let grads = |ctx: &Context| {
                let t = |x: &[f32], w: usize| ctx.tensor(x, &[rows, 1, w]).unwrap();
                let gr = so3::gaunt_product_backward(
                    ctx,
                    &t(&x1, d),
                    &t(&x2, d),
                    lout,
                    method,
                    &t(&g, d3),
                )
                .unwrap();
                [gr.x1.to_vec().unwrap(), gr.x2.to_vec().unwrap()]
            };
            for (got, want) in grads(&ctx).iter().zip(grads(&cpu)) {
                let err = relative_error(got, &wide(&want));
                assert!(err < 1e-5, "{method:?} backward {l}⊗{l}→{lout}: {err:e}");
            }
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
