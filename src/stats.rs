//! Summaries of timing and level samples, one definition for the server's
//! metrics, the load test and the benchmarks, so their percentiles agree.

use serde::{Deserialize, Serialize};

/// Nearest-rank percentile; sorts in place.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The percentiles every report of a distribution shows.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (sorted in place).
    pub fn of(values: &mut [f64]) -> Self {
        Self {
            count: values.len(),
            p50: percentile(values, 50.0),
            p95: percentile(values, 95.0),
            p99: percentile(values, 99.0),
            max: percentile(values, 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
    }

    #[test]
    fn percentiles_of_nothing_are_zero() {
        assert_eq!(
            Percentiles::of(&mut []),
            Percentiles {
                count: 0,
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                max: 0.0
            }
        );
    }
}
