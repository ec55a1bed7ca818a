//! When and how long to wait before trying again: one policy for the
//! Control Plane API client, the registry client, the promotion lock and
//! the waits. Backoff is [`backon`]'s exponential with jitter (the crate
//! kube uses, style.md §3.2); a server's `Retry-After` (seconds or an HTTP
//! date, read with [`httpdate`]) replaces our own delay, bounded. What is
//! retried is each client's business: transient failures of requests that
//! are safe to repeat (docs/plan-output.md, "Talking to the API").

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};

/// Attempts in all of [`RetryPolicy::default`]: 11, the first and ten
/// retries, as many as the `cpln` CLI's `axiosRetry` gives a request
/// (reference §1, "Vendor retry policies"). With 6, a promotion of the
/// example under 25% injected 503/429 failed about one run in fifteen,
/// one of its 200–350 requests refused six times in a row
/// (docs/performance.md); with 11 that is about one request in four
/// million.
pub const DEFAULT_ATTEMPTS: u32 = 11;

/// How many times, and how far apart, transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubled for each one after.
    pub first_delay: Duration,
    /// No delay of ours is longer than this.
    pub max_delay: Duration,
    /// A server's `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: DEFAULT_ATTEMPTS,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delays between attempts, `attempts - 1` of them: exponential,
    /// each with up to as much again of random jitter, so that parallel
    /// requests do not retry in lockstep.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(usize::try_from(self.attempts.saturating_sub(1)).unwrap_or(0))
            .with_jitter()
            .build()
    }
}

/// The waits of one request's retries under a [`RetryPolicy`]: at most
/// `attempts - 1` of them. A server's `Retry-After` is the wait (bounded)
/// and leaves our own backoff where it was: that backoff guesses how long
/// a server that said nothing needs, and a 429 that said when is no
/// evidence that the next silent failure needs longer. Before this, each
/// 429 doubled the next 503's wait too, so that under many 429s a 503
/// waited 3.2–6.4 s although the server had only ever asked for 1 s
/// (docs/performance.md, "Promoting under injected faults").
pub struct Backoff {
    policy: RetryPolicy,
    ours: Box<dyn Iterator<Item = Duration> + Send>,
    retries: u32,
    refusals: u32,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy, ours: Box::new(policy.delays()), retries: 0, refusals: 0 }
    }

    /// The wait before the next attempt, or `None` when the attempts are
    /// spent; `retry_after` is what the failed answer asked for.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.retries.saturating_add(1) >= self.policy.attempts {
            return None;
        }
        self.retries += 1;
        Some(match retry_after {
            Some(after) => after.min(self.policy.max_retry_after),
            None => self.ours.next().unwrap_or(self.policy.max_delay),
        })
    }

    /// Retries so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The wait before the next attempt after a failure that says the
    /// address cannot be reached ([`is_unreachable`]), or `None` once
    /// [`REFUSED_RETRIES`] of them were retried: a minute of retries does
    /// not change it (a refused endpoint took 71 s to be reported, and a
    /// host that does not resolve 77 s, before this).
    pub fn next_after_refusal(&mut self) -> Option<Duration> {
        self.refusals += 1;
        if self.refusals > REFUSED_RETRIES {
            return None;
        }
        self.next(None)
    }
}

/// How many unreachable answers in one request's retries are tried again:
/// enough to ride out a listener restarting (about 1.5 to 3 s of waits under
/// the default policy), few enough that a wrong endpoint is reported within
/// seconds.
pub const REFUSED_RETRIES: u32 = 3;

/// Whether `error` (or what caused it) says the address cannot be reached
/// at all: a connection the other side refused (nothing listens there),
/// or a host name that does not resolve (a wrong endpoint, or a runner
/// with no DNS). Neither is a busy server, which retries help.
pub fn is_unreachable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        // hyper-util's connector says `dns error` for a failed lookup, and
        // keeps no typed cause for it.
        if error.to_string().starts_with("dns error") {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A `Retry-After` header value: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_bounded_and_stop() {
        let policy = RetryPolicy::default();
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), policy.attempts as usize - 1);
        for (retry, delay) in delays.iter().enumerate() {
            let base = (policy.first_delay * (1 << retry)).min(policy.max_delay);
            assert!(*delay >= base && *delay <= base * 2, "{retry}: {delay:?}");
        }
    }

    #[test]
    fn a_servers_wait_does_not_grow_our_backoff() {
        let policy = RetryPolicy::default();
        let mut backoff = Backoff::new(policy);
        let second = Some(Duration::from_secs(1));
        // Four 429s asking for a second each, then a 503 saying nothing:
        // the 503 waits our first delay, not the fifth.
        for _ in 0..4 {
            assert_eq!(backoff.next(second), second);
        }
        let ours = backoff.next(None).unwrap_or_default();
        assert!(ours >= policy.first_delay && ours <= policy.first_delay * 2, "{ours:?}");
        // Attempts stay bounded whatever the mix.
        for _ in 5..policy.attempts - 1 {
            assert!(backoff.next(second).is_some());
        }
        assert_eq!(backoff.retries(), policy.attempts - 1);
        assert_eq!(backoff.next(None), None);
        assert_eq!(backoff.next(second), None);
        let mut capped = Backoff::new(policy);
        assert_eq!(capped.next(Some(Duration::from_secs(3600))), Some(policy.max_retry_after));
    }

    #[test]
    fn refused_connections_are_retried_only_a_few_times() {
        let mut backoff = Backoff::new(RetryPolicy::default());
        let waits: Vec<Duration> =
            std::iter::from_fn(|| backoff.next_after_refusal()).take(20).collect();
        assert_eq!(waits.len(), REFUSED_RETRIES as usize);
        assert!(waits.iter().sum::<Duration>() <= Duration::from_secs(3), "{waits:?}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_unreachable(&refused));
        assert!(!is_unreachable(&std::io::Error::from(std::io::ErrorKind::TimedOut)));
    }

    #[test]
    fn reads_retry_after() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let parsed = parse_retry_after(&later).unwrap_or_default();
        assert!(parsed > Duration::from_secs(115) && parsed <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
