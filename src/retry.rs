//! When and how long to wait before trying a request again. Shared by the
//! Control Plane API client and the registry client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many times, and how far apart, transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubled for each one after.
    pub first_delay: Duration,
    /// No delay is longer than this (a `Retry-After` excepted).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): exponential with
    /// full jitter, so that parallel requests do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let exponential = self.first_delay.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let ceiling = exponential.min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        // Between half and all of the ceiling.
        Duration::from_millis(millis / 2 + jitter() % (millis / 2 + 1))
    }

    /// The delay to use when the server said how long to wait.
    pub fn delay_with(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or_else(|| self.delay(retry), |after| after.min(Duration::from_secs(120)))
    }
}

/// A `Retry-After` header value: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate(value)?;
    Some(date.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
fn httpdate(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let month =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            .iter()
            .position(|m| m == month)?;
    let (day, year): (u64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let clock: Vec<u64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [hours, minutes, seconds] = clock.as_slice() else { return None };
    let days = days_from_civil(year, u64::try_from(month).ok()? + 1, day)?;
    let total = u64::try_from(days).ok()? * 86_400 + hours * 3600 + minutes * 60 + seconds;
    UNIX_EPOCH.checked_add(Duration::from_secs(total))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u64, day: u64) -> Option<i64> {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::try_from(month).ok()?;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5
        + i64::try_from(day).ok()?
        - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// A cheap pseudo-random number (xorshift), enough to spread retries.
fn jitter() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        let policy = RetryPolicy::default();
        for retry in 1..10 {
            let delay = policy.delay(retry);
            let ceiling = (policy.first_delay * (1 << (retry - 1))).min(policy.max_delay);
            assert!(delay <= ceiling && delay >= ceiling / 2, "{retry}: {delay:?}");
        }
    }

    #[test]
    fn reads_retry_after() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(
            httpdate("Sun, 06 Nov 1994 08:49:37 GMT")
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok()),
            Some(Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
