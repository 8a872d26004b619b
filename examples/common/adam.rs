//! Adam (Kingma & Ba) on the host, shared by the training examples.

/// Adam's first and second moments of one parameter.
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    pub fn new(len: usize) -> Adam {
        Adam {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    /// One step at (1-based) step `t`: `p ← p − lr·m̂/(√v̂ + 1e-8)`, β = (0.9, 0.999).
    pub fn step(&mut self, param: &mut [f32], grad: &[f32], t: usize, lr: f32) {
        let (b1, b2) = (0.9f32, 0.999f32);
        for ((p, g), (m, v)) in param
            .iter_mut()
            .zip(grad)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let m_hat = *m / (1.0 - b1.powi(t as i32));
            let v_hat = *v / (1.0 - b2.powi(t as i32));
            *p -= lr * m_hat / (v_hat.sqrt() + 1e-8);
        }
    }
}
