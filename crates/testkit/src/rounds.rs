//! Interleaved rounds: a measured side and its baseline run in alternating batches in the
//! same process, so that load from elsewhere on a shared machine falls on both alike. Each
//! round gives both sides' cost per call and their ratio; the answer is the median of each
//! with the spread of the rounds (25th to 75th percentile).

use std::time::Instant;

/// Nanoseconds per call of `f`, over `iters` calls (at least one).
pub fn per_call(iters: u64, mut f: impl FnMut()) -> f64 {
    let iters = iters.max(1);
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

/// The value at `q` (0 to 1) of `v`, nearest rank; 0 for an empty list.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
}

/// The median of `v` (of an even count, the upper of the two middle values); 0 for an
/// empty list.
pub fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// What [`interleave`] measured: per round, both sides' ns per call and their ratio.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    /// The measured side, ns per call, a value per round.
    pub value: Vec<f64>,
    /// The baseline, ns per call, a value per round.
    pub baseline: Vec<f64>,
    /// `value / baseline` of each round.
    pub ratio: Vec<f64>,
}

impl Rounds {
    /// `(median value, median baseline, median ratio)`.
    pub fn medians(&self) -> (f64, f64, f64) {
        (
            median(&self.value),
            median(&self.baseline),
            median(&self.ratio),
        )
    }

    /// The ratios' 25th and 75th percentiles.
    pub fn ratio_spread(&self) -> (f64, f64) {
        (quantile(&self.ratio, 0.25), quantile(&self.ratio, 0.75))
    }
}

/// `rounds` alternating batches of `value` and `baseline`, each called with a batch size of
/// `iters` and answering ns per call; which side goes first alternates too. Both are run
/// once first to warm up.
pub fn interleave(
    rounds: usize,
    iters: u64,
    mut value: impl FnMut(u64) -> f64,
    mut baseline: impl FnMut(u64) -> f64,
) -> Rounds {
    value(iters);
    baseline(iters);
    let mut out = Rounds::default();
    for round in 0..rounds {
        let (v, b) = if round % 2 == 0 {
            let v = value(iters);
            (v, baseline(iters))
        } else {
            let b = baseline(iters);
            (value(iters), b)
        };
        out.value.push(v);
        out.baseline.push(b);
        out.ratio.push(v / b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&v), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.75), 4.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn rounds_alternate_and_pair_up() {
        let mut order = Vec::new();
        let order_ref = std::cell::RefCell::new(&mut order);
        let r = interleave(
            3,
            1,
            |_| {
                order_ref.borrow_mut().push('v');
                2.0
            },
            |_| {
                order_ref.borrow_mut().push('b');
                1.0
            },
        );
        assert_eq!(order, ['v', 'b', 'v', 'b', 'b', 'v', 'v', 'b']);
        assert_eq!(r.medians(), (2.0, 1.0, 2.0));
        assert_eq!(r.ratio_spread(), (2.0, 2.0));
    }
}
