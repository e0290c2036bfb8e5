//! Fault injection. Owns [`Faults`] (what to break: rate limiting, server errors by period or seeded random rate,
//! latency, malformed bodies, a stalled POST) and the per-request decision. Counters start at zero whenever faults
//! are set, so "every Nth request" counts from that moment; the random rate uses a small seeded PRNG (SplitMix64)
//! so runs are reproducible. Faults apply to API requests only, never to `/login/companyinfo`.

use std::time::Duration;

/// What to break. `Faults::default()` breaks nothing. Fields are public; the `with_*` methods are shorthands.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Every Nth API request (counted from when faults were set) gets `429` with `Retry-After`.
    pub rate_limit_every: Option<u32>,
    /// Seconds in the `Retry-After` header of injected 429s (default 1).
    pub retry_after_secs: u32,
    /// Every Nth API request gets an injected server error (before it is processed: nothing is stored).
    pub server_error_every: Option<u32>,
    /// Probability (0.0–1.0) that an API request gets an injected server error, drawn from a PRNG seeded by `seed`.
    pub server_error_rate: f64,
    /// Status of injected server errors: 500 (default) or 503.
    pub server_error_status: u16,
    /// Seed of the PRNG behind `server_error_rate`.
    pub seed: u64,
    /// Delay added before every API response.
    pub latency: Duration,
    /// Every Nth API request is processed normally (side effects happen) but answered `200` with a truncated,
    /// invalid JSON body.
    pub malformed_every: Option<u32>,
    /// The Nth POST (counted from when faults were set) is processed normally (the record is stored) and then its
    /// response is held: never sent while the sandbox lives; the connection is closed when the sandbox is dropped.
    pub stall_post: Option<u64>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            rate_limit_every: None,
            retry_after_secs: 1,
            server_error_every: None,
            server_error_rate: 0.0,
            server_error_status: 500,
            seed: 0x5eed,
            latency: Duration::ZERO,
            malformed_every: None,
            stall_post: None,
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    pub fn with_rate_limit_every(mut self, n: u32, retry_after_secs: u32) -> Faults {
        self.rate_limit_every = Some(n);
        self.retry_after_secs = retry_after_secs;
        self
    }

    pub fn with_server_error_every(mut self, n: u32) -> Faults {
        self.server_error_every = Some(n);
        self
    }

    pub fn with_server_error_rate(mut self, rate: f64, seed: u64) -> Faults {
        self.server_error_rate = rate;
        self.seed = seed;
        self
    }

    pub fn with_server_error_status(mut self, status: u16) -> Faults {
        self.server_error_status = status;
        self
    }

    pub fn with_latency(mut self, latency: Duration) -> Faults {
        self.latency = latency;
        self
    }

    pub fn with_malformed_every(mut self, n: u32) -> Faults {
        self.malformed_every = Some(n);
        self
    }

    pub fn with_stall_post(mut self, nth: u64) -> Faults {
        self.stall_post = Some(nth);
        self
    }
}

/// What to do to one request, decided when it arrives.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Decision {
    pub latency: Duration,
    /// Answer 429 with this `Retry-After`.
    pub rate_limited: Option<u32>,
    /// Answer this 5xx status.
    pub server_error: Option<u16>,
    pub malformed: bool,
    pub stall: bool,
}

/// Faults plus their counters.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub faults: Faults,
    requests: u64,
    posts: u64,
    rng: u64,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> FaultState {
        let rng = faults.seed;
        FaultState {
            faults,
            requests: 0,
            posts: 0,
            rng,
        }
    }

    /// Decides the fate of the next API request.
    pub(crate) fn decide(&mut self, is_post: bool) -> Decision {
        self.requests += 1;
        let n = self.requests;
        let every =
            |period: Option<u32>| period.is_some_and(|p| p > 0 && n.is_multiple_of(u64::from(p)));
        let f = &self.faults;
        let mut d = Decision {
            latency: f.latency,
            ..Decision::default()
        };
        let (rate_hit, error_hit, malformed_hit) = (
            every(f.rate_limit_every),
            every(f.server_error_every),
            every(f.malformed_every),
        );
        let rate = f.server_error_rate;
        let (retry_after, status) = (f.retry_after_secs, f.server_error_status);
        let random_hit = rate > 0.0 && self.next_unit() < rate;
        if rate_hit {
            d.rate_limited = Some(retry_after);
        } else if error_hit || random_hit {
            d.server_error = Some(status);
        } else {
            d.malformed = malformed_hit;
            if is_post {
                self.posts += 1;
                d.stall = self.faults.stall_post == Some(self.posts);
            }
        }
        d
    }

    /// SplitMix64 → uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_count_from_setting() {
        let mut s = FaultState::new(Faults::none().with_rate_limit_every(3, 7));
        let hits: Vec<bool> = (0..6)
            .map(|_| s.decide(false).rate_limited.is_some())
            .collect();
        assert_eq!(hits, [false, false, true, false, false, true]);
    }

    #[test]
    fn random_rate_is_reproducible_and_roughly_right() {
        let run = || {
            let mut s = FaultState::new(Faults::none().with_server_error_rate(0.25, 42));
            (0..2000)
                .map(|_| s.decide(false).server_error.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|h| **h).count();
        assert!((400..600).contains(&hits), "{hits}");
    }

    #[test]
    fn stall_counts_posts_only() {
        let mut s = FaultState::new(Faults::none().with_stall_post(2));
        assert!(!s.decide(false).stall);
        assert!(!s.decide(true).stall);
        assert!(!s.decide(false).stall);
        assert!(s.decide(true).stall);
        assert!(!s.decide(true).stall);
    }
}
