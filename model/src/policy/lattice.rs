//! Whether demand comes in whole units, and how large one is.
//!
//! Counted demand (requests in a second, tweets in five minutes, jobs queued) takes no value
//! between two counts. The forecast's quantiles are a smooth description of it, so the demand a
//! plan finds worth covering often falls between two counts: capacity for 0.7 of a request
//! serves exactly what capacity for none does, and where one unit of demand needs several
//! instances that fraction is paid for in whole instances. The plan therefore covers the
//! largest count at or below what it found worth covering ([`Lattice::floor`]).
//!
//! Invariants: the unit is the greatest common divisor of every demand seen, while every one
//! was a whole number (up to 2^53, where f64 still counts exactly); one value that is not
//! makes the demand continuous for good, and [`Lattice::floor`] is then the identity. Nothing
//! is floored before [`EVIDENCE`] nonzero whole values were seen: the divisor of a few values
//! says little (one reading of 71 would make 71 the unit).

/// The largest whole number an f64 holds exactly.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// Nonzero whole values seen before the unit is trusted.
pub(crate) const EVIDENCE: u32 = 64;

/// What the demand seen so far says about its unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Lattice {
    /// Only zeros (or nothing) seen yet.
    #[default]
    Unknown,
    /// Every value seen is a whole multiple of `unit`; `seen` of them were nonzero.
    Unit { unit: u64, seen: u32 },
    /// Some value seen was not a whole number.
    Continuous,
}

impl Lattice {
    /// Takes in one demand value (negative and non-finite ones are the caller's to clamp).
    pub(crate) fn observe(&mut self, v: f64) {
        if *self == Lattice::Continuous || !(v.is_finite() && v >= 0.0) {
            return;
        }
        if v.fract() != 0.0 || v > EXACT {
            *self = Lattice::Continuous;
            return;
        }
        let n = v as u64;
        *self = match (*self, n) {
            (state, 0) => state,
            (Lattice::Unknown, n) => Lattice::Unit { unit: n, seen: 1 },
            (Lattice::Unit { unit, seen }, n) => Lattice::Unit {
                unit: gcd(unit, n),
                seen: seen.saturating_add(1),
            },
            (Lattice::Continuous, _) => Lattice::Continuous,
        };
    }

    /// The unit demand is counted in, once trusted.
    pub(crate) fn unit(&self) -> Option<u64> {
        match *self {
            Lattice::Unit { unit, seen } if seen >= EVIDENCE => Some(unit),
            _ => None,
        }
    }

    /// The largest demand the lattice allows at or below `x` (`x` itself for continuous
    /// demand, or a unit not yet trusted).
    pub(crate) fn floor(&self, x: f64) -> f64 {
        match self.unit() {
            Some(u) if x.is_finite() && x >= 0.0 => {
                let u = u as f64;
                // A count computed as 2.9999999 units is 3 units.
                (x / u + 1e-9).floor() * u
            }
            _ => x,
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lattice that saw `values`, each `times` times.
    fn seen(values: &[f64], times: usize) -> Lattice {
        let mut l = Lattice::default();
        for _ in 0..times {
            for &v in values {
                l.observe(v);
            }
        }
        l
    }

    const ENOUGH: usize = EVIDENCE as usize;

    #[test]
    fn whole_counts_are_floored_to_their_unit() {
        let l = seen(&[0.0, 3.0, 7.0, 0.0], ENOUGH);
        assert!(matches!(l, Lattice::Unit { unit: 1, .. }), "{l:?}");
        assert_eq!(l.floor(0.72), 0.0);
        assert_eq!(l.floor(4.999_999_999_9), 5.0);
        assert_eq!(l.floor(5.5), 5.0);
        let tens = seen(&[20.0, 50.0, 30.0], ENOUGH);
        assert!(matches!(tens, Lattice::Unit { unit: 10, .. }), "{tens:?}");
        assert_eq!(tens.floor(49.0), 40.0);
    }

    #[test]
    fn a_unit_seen_in_few_values_is_not_trusted() {
        let few = seen(&[71.0], 1);
        assert_eq!(few.floor(100.0), 100.0);
        let l = seen(&[71.0], ENOUGH - 1);
        assert_eq!(l.floor(100.0), 100.0);
        let l = seen(&[71.0, 0.0], ENOUGH);
        assert_eq!(l.floor(100.0), 71.0);
    }

    #[test]
    fn one_fraction_makes_demand_continuous_for_good() {
        let l = seen(&[2.0, 4.0, 0.5, 6.0], ENOUGH);
        assert_eq!(l, Lattice::Continuous);
        assert_eq!(l.floor(0.72), 0.72);
    }

    #[test]
    fn nothing_is_floored_before_a_count_is_seen() {
        for l in [
            seen(&[], 1),
            seen(&[0.0, 0.0], ENOUGH),
            seen(&[f64::NAN, -3.0], ENOUGH),
        ] {
            assert_eq!(l, Lattice::Unknown);
            assert_eq!(l.floor(0.72), 0.72);
        }
        assert_eq!(seen(&[1e300], 1), Lattice::Continuous);
    }
}
