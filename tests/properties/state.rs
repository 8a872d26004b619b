//! Stateful objects: a failed call leaves them as they were.

use wgkernels::attention::{FeatureMap, LinearDecoder};
use wgkernels::mfac::{Mfac, MfacConfig, SlidingInverse};

use crate::check::contexts;
use crate::common;

/// A failed call changes nothing: after a refused push or step, the object answers as an
/// untouched twin does.
#[test]
fn failed_calls_leave_state_unchanged() {
    let Some(contexts) = contexts() else { return };
    let mut rng = common::rng();
    for ctx in contexts {
        let d = 7;
        let good = ctx.tensor(&common::uniform(&mut rng, d), &[d]).unwrap();
        let bad_shape = ctx
            .tensor(&common::uniform(&mut rng, d + 1), &[d + 1])
            .unwrap();
        let probe = ctx.tensor(&common::uniform(&mut rng, d), &[d]).unwrap();

        let mut touched = SlidingInverse::new(ctx, d, 3, 0.1).unwrap();
        let mut twin = SlidingInverse::new(ctx, d, 3, 0.1).unwrap();
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
            Mfac::new(ctx, d, config).unwrap(),
            Mfac::new(ctx, d, config).unwrap(),
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
            LinearDecoder::new(ctx, 1, 2, 3, 4, FeatureMap::NormAware).unwrap(),
            LinearDecoder::new(ctx, 1, 2, 3, 4, FeatureMap::NormAware).unwrap(),
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
