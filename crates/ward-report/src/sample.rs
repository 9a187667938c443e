//! The sample of grants an auditor tests: how many, and which.
//!
//! How many: attribute sampling for a test of controls expecting no deviation, as auditors size
//! it (the AICPA's audit sampling guide tabulates the same numbers): the fewest grants such that,
//! were at least the tolerable rate of the population deviant, a sample with none of them would
//! come up with at most the risk of overreliance. Exact for any population (drawing without
//! replacement), so a small population is sampled in part or whole, and a large one at 29 (95 %
//! confidence, 10 % tolerable rate).
//!
//! Which: the grants whose SHA-256 of `seed ‖ grant id` is lowest. The seed is recorded, so
//! anyone can draw the same sample again from the population's ids, and nobody picks it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::{Population, SampledGrant};

/// Confidence that the deviation rate is below the tolerable rate when the sample shows none.
pub const CONFIDENCE: f64 = 0.95;
pub const TOLERABLE_DEVIATION_RATE: f64 = 0.10;

/// The method, in words, for the report.
pub const METHOD: &str = "attribute sampling for zero expected deviations: the fewest grants such that, \
were the tolerable deviation rate or more of the population deviant, a sample free of deviations would \
come up with at most 5 % probability (hypergeometric, without replacement); the grants selected are \
those with the lowest SHA-256(seed bytes || grant id)";

/// Past this population the size no longer grows (it has reached the tabulated 29).
const LEVELS_OFF_AT: u64 = 2_000;

/// How many of a population of `population` items to test: never fewer than a smaller
/// population would get (the deviant count is a whole number, so the exact size dips where it
/// steps up: 16 of 20, 13 of 21).
pub fn size(population: u64) -> u64 {
    (1..=population.min(LEVELS_OFF_AT)).map(exact_size).max().unwrap_or(0)
}

/// The exact size for `population`.
fn exact_size(population: u64) -> u64 {
    let deviant = ((population as f64) * TOLERABLE_DEVIATION_RATE).ceil().max(1.0);
    let risk = 1.0 - CONFIDENCE;
    let total = population as f64;
    // The chance that the first n drawn are all free of deviations.
    let mut clean = 1.0;
    for n in 0..population {
        clean *= (total - deviant - n as f64).max(0.0) / (total - n as f64);
        if clean <= risk {
            return n + 1;
        }
    }
    population
}

/// The `size` ids of `ids` that `seed` selects, in the order drawn.
pub fn select<'a>(seed: &[u8], ids: impl IntoIterator<Item = &'a str>, size: u64) -> Vec<&'a str> {
    let mut ranked: Vec<([u8; 32], &str)> = ids
        .into_iter()
        .map(|id| {
            let mut hasher = Sha256::new();
            hasher.update(seed);
            hasher.update(id.as_bytes());
            (hasher.finalize().into(), id)
        })
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().take(usize::try_from(size).unwrap_or(usize::MAX)).map(|(_, id)| id).collect()
}

/// The sample of `population`'s grants that `seed` draws, each with its request (when filed in
/// the period) and the period's events of it and its request (`seqs`, by id).
pub fn draw(population: &Population, seqs: &BTreeMap<String, Vec<i64>>, seed: &[u8]) -> Vec<SampledGrant> {
    let grants: BTreeMap<&str, _> = population.grants.iter().map(|g| (g.grant_id.as_str(), g)).collect();
    let requests: BTreeMap<&str, _> =
        population.requests.iter().map(|r| (r.request_id.as_str(), r)).collect();
    select(seed, grants.keys().copied(), size(grants.len() as u64))
        .into_iter()
        .filter_map(|id| grants.get(id).copied())
        .map(|grant| {
            let request = grant.request_id.as_deref().and_then(|id| requests.get(id).copied());
            let mut events: Vec<i64> = [Some(grant.grant_id.as_str()), grant.request_id.as_deref()]
                .into_iter()
                .flatten()
                .flat_map(|id| seqs.get(id).into_iter().flatten().copied())
                .collect();
            events.sort_unstable();
            events.dedup();
            SampledGrant { grant: grant.clone(), request: request.cloned(), seqs: events }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_tabulated_ones_for_large_populations_and_shrink_with_small_ones() {
        // The AICPA table: 95 % confidence, 10 % tolerable rate, no deviation expected: 29.
        assert_eq!(size(1_000_000), 29);
        assert_eq!(size(50_000), 29);
        assert_eq!(size(0), 0);
        assert_eq!(size(1), 1);
        assert_eq!(size(5), 5);
        // Without replacement a smaller population needs fewer, never more than itself.
        assert_eq!((size(20), size(21), size(100), size(1_000)), (16, 16, 25, 29));
        for population in 1..300 {
            assert!(size(population) <= population);
            assert!(size(population) <= size(population + 1));
        }
    }

    #[test]
    fn the_seed_decides_the_sample_and_redraws_it_exactly() {
        let ids: Vec<String> = (0..100).map(|i| format!("grt_{i:03}")).collect();
        let draw = |seed: &[u8]| select(seed, ids.iter().map(String::as_str), 10);
        assert_eq!(draw(b"seed one"), draw(b"seed one"));
        assert_ne!(draw(b"seed one"), draw(b"seed two"));
        assert_eq!(draw(b"seed one").len(), 10);
        // The order of the population does not matter.
        let reversed = select(b"seed one", ids.iter().rev().map(String::as_str), 10);
        assert_eq!(reversed, draw(b"seed one"));
    }
}
