//! How much of a forecast is worth covering: the newsvendor's rule on the distribution a
//! forecast point's quantiles describe.
//!
//! A short sample costs `price` instance-samples. One more instance (`cap` of demand) is worth
//! asking for while it takes at least `1 / price` off the probability of being short, that is
//! while the demand density per instance at the capacity's edge is at least `1 / price`. A
//! forecast narrow in instances is covered far up its tail at little cost; a wide one (bursts
//! that could be anywhere) is covered less, since each instance buys little certainty.
//!
//! The price comes from the operator's shortfall budget `b`: `1 / phi(z(1 - b))`, so a forecast
//! exactly one instance wide is planned at its `1 - b` quantile.

use std::f64::consts::PI;

use crate::forecast::ForecastPoint;

/// z-score of P90.
const Z90: f64 = 1.281_551_565_5;
/// z-score of P99.
const Z99: f64 = 2.326_347_874;
/// The highest z planned for: beyond it the tail is extrapolated past what residuals show.
const Z_MAX: f64 = 4.0;

/// The price of a short sample, in instance-samples, for a shortfall budget in (0, 0.5).
pub(crate) fn price_of_budget(budget: f64) -> f64 {
    1.0 / normal_density(normal_quantile(1.0 - budget.clamp(1e-6, 0.5)))
}

/// The demand the point is worth covering with instances of `cap` when a short sample costs
/// `price` instance-samples.
pub(crate) fn worth_covering(p: &ForecastPoint, cap: f64, price: f64) -> f64 {
    quantile_of(p, covered_z(p, cap, price))
}

/// The z up to which `p` is worth covering (never below the median, at most [`Z_MAX`]).
fn covered_z(p: &ForecastPoint, cap: f64, price: f64) -> f64 {
    // Demand per unit of z on each piece of the quantile function, in instances.
    let lower = ((p.p90 - p.p50) / Z90 / cap).max(0.0);
    let upper = ((p.p99 - p.p90) / (Z99 - Z90) / cap).max(0.0);
    // Where the density per instance, phi(z) / spread, falls to 1 / price.
    let solve = |spread: f64| -> Option<f64> {
        let d = spread * (2.0 * PI).sqrt() / price;
        (d < 1.0).then(|| (-2.0 * d.max(f64::MIN_POSITIVE).ln()).sqrt())
    };
    match (solve(upper), solve(lower)) {
        (Some(z), _) if z >= Z90 => z.min(Z_MAX),
        (_, Some(z)) => z.min(Z90),
        _ => 0.0,
    }
}

/// The quantile of a forecast point at z-score `z`: P50 at 0, P90 at 1.28, P99 at 2.33, linear
/// in z between them and beyond P99 at the P90-P99 slope (a tail as heavy as the residuals show
/// is extended, not replaced by a normal one).
pub(crate) fn quantile_of(p: &ForecastPoint, z: f64) -> f64 {
    if z <= Z90 {
        p.p50 + (p.p90 - p.p50) * z / Z90
    } else {
        p.p90 + (p.p99 - p.p90) * (z - Z90) / (Z99 - Z90)
    }
}

/// The standard normal density at `z`.
fn normal_density(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * PI).sqrt()
}

/// The standard normal quantile of `p` in (0, 1) (Acklam's rational approximation, relative
/// error below 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(p50: f64, p90: f64, p99: f64) -> ForecastPoint {
        ForecastPoint {
            horizon_s: 60.0,
            p50,
            p90,
            p99,
        }
    }

    #[test]
    fn normal_quantiles_match_known_values() {
        for (p, z) in [(0.5, 0.0), (0.9, Z90), (0.99, Z99), (0.999, 3.090_232_306)] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}");
            assert!((normal_quantile(1.0 - p) + z).abs() < 1e-8, "{p}");
        }
    }

    #[test]
    fn a_forecast_one_instance_wide_is_covered_at_the_budget() {
        // Normal with sd 1 instance of 10: P90 and P99 where a normal has them.
        let p = point(100.0, 100.0 + 10.0 * Z90, 100.0 + 10.0 * Z99);
        for budget in [0.05, 0.01] {
            let want = normal_quantile(1.0 - budget);
            let z = covered_z(&p, 10.0, price_of_budget(budget));
            assert!((z - want).abs() < 1e-6, "{budget}: {z} vs {want}");
        }
    }

    #[test]
    fn narrow_forecasts_are_covered_further_and_wide_ones_less() {
        let price = price_of_budget(0.02);
        let narrow = point(100.0, 101.0, 102.0);
        let wide = point(100.0, 300.0, 900.0);
        assert!(covered_z(&narrow, 10.0, price) > normal_quantile(0.98));
        assert!(covered_z(&wide, 10.0, price) < 1.0);
        assert_eq!(covered_z(&point(5.0, 5.0, 5.0), 10.0, price), Z_MAX);
        assert_eq!(worth_covering(&point(5.0, 5.0, 5.0), 10.0, price), 5.0);
    }

    #[test]
    fn quantiles_run_through_p50_p90_p99_and_beyond() {
        let p = point(10.0, 20.0, 40.0);
        assert_eq!(quantile_of(&p, 0.0), 10.0);
        assert!((quantile_of(&p, Z90) - 20.0).abs() < 1e-12);
        assert!((quantile_of(&p, Z99) - 40.0).abs() < 1e-12);
        assert!(quantile_of(&p, 3.0) > 40.0);
    }
}
