//! When and how long to wait before trying again: one policy for the
//! Control Plane API client, the registry client, the promotion lock and
//! the waits. Backoff is [`backon`]'s exponential with jitter (the crate
//! kube uses, style.md §3.2); a server's `Retry-After` (seconds or an HTTP
//! date, read with [`httpdate`]) replaces our own delay, bounded. What is
//! retried is each client's business: transient failures of requests that
//! are safe to repeat (docs/plan-output.md, "Talking to the API").

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};

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
            attempts: 6,
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

    /// The wait before the next attempt: the server's, when it said one
    /// (bounded), else `ours`.
    pub fn wait(&self, ours: Duration, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or(ours, |after| after.min(self.max_retry_after))
    }
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
        assert_eq!(delays.len(), 5);
        for (retry, delay) in delays.iter().enumerate() {
            let base = (policy.first_delay * (1 << retry)).min(policy.max_delay);
            assert!(*delay >= base && *delay <= base * 2, "{retry}: {delay:?}");
        }
    }

    #[test]
    fn the_server_wait_wins_up_to_a_bound() {
        let policy = RetryPolicy::default();
        let ours = Duration::from_millis(300);
        assert_eq!(policy.wait(ours, None), ours);
        assert_eq!(policy.wait(ours, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(policy.wait(ours, Some(Duration::from_secs(3600))), policy.max_retry_after);
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
