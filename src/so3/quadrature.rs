//! Quadrature on the sphere: Gauss–Legendre in cos θ × uniform in φ, exact for polynomials
//! of degree ≤ 2·n_theta − 1 in cos θ and trigonometric degree < n_phi in φ.

/// Gauss–Legendre nodes and weights on [−1, 1] (weights sum to 2), by Newton's method on
/// `P_n` from the usual cosine guesses; converged to f64 rounding.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_{n-1}(x) by the three-term recurrence
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let (pn, pn1) = if n == 0 {
                (1.0, 0.0)
            } else if n == 1 {
                (x, 1.0)
            } else {
                (p1, p0)
            };
            derivative = n as f64 * (x * pn - pn1) / (x * x - 1.0);
            let step = pn / derivative;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        nodes[i] = x;
        weights[i] = 2.0 / ((1.0 - x * x) * derivative * derivative);
    }
    (nodes, weights)
}

/// Points `[x, y, z]` on the unit sphere and weights summing to 1 (the mean over the
/// sphere), exact for spherical polynomials of degree ≤ `degree`.
pub fn sphere_rule(degree: usize) -> (Vec<[f64; 3]>, Vec<f64>) {
    let n_theta = degree / 2 + 1;
    let n_phi = degree + 1;
    let (z, w) = gauss_legendre(n_theta);
    let mut points = Vec::with_capacity(n_theta * n_phi);
    let mut weights = Vec::with_capacity(n_theta * n_phi);
    for (&zi, &wi) in z.iter().zip(&w) {
        let s = (1.0 - zi * zi).sqrt();
        for k in 0..n_phi {
            let phi = 2.0 * std::f64::consts::PI * k as f64 / n_phi as f64;
            points.push([s * phi.cos(), s * phi.sin(), zi]);
            weights.push(wi / (2.0 * n_phi as f64));
        }
    }
    (points, weights)
}
