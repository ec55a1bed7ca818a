//! Freeze windows (`freeze:` at the top of the plan file, for every
//! environment, and in an environment, for it alone) and the approval
//! settings (`approval: {maxPlanAge}`): read and checked here, judged
//! against a time the caller gives (pure).
//!
//! A window is absolute, `{start, end, reason}` in RFC 3339 with `Z` or an
//! offset (`2026-12-24T00:00:00+01:00`), because that is how a change
//! calendar announces a freeze: a start, an end and why. Releases into an
//! environment are refused while `start <= now < end` (docs/approval.md).

use std::time::Duration;

use crate::diagnostic::Location;
use crate::manifest::yaml::Node;

use super::reader::Reader;

const WINDOW_KEYS: &[&str] = &["start", "end", "reason"];
const APPROVAL_KEYS: &[&str] = &["maxPlanAge"];

/// How old a saved plan `ferry apply` still carries out, without
/// `approval.maxPlanAge`: a working day's review plus slack.
pub const DEFAULT_MAX_PLAN_AGE: Duration = Duration::from_secs(24 * 3600);

/// One freeze window.
#[derive(Debug, Clone)]
pub struct FreezeWindow {
    /// Milliseconds since the epoch, inclusive.
    pub start_ms: u64,
    /// Milliseconds since the epoch, exclusive.
    pub end_ms: u64,
    /// The start and end as written.
    pub start: String,
    pub end: String,
    pub reason: String,
    /// The window in the plan file.
    pub location: Location,
}

impl FreezeWindow {
    /// Whether `now_ms` falls inside the window.
    pub fn covers(&self, now_ms: u64) -> bool {
        self.start_ms <= now_ms && now_ms < self.end_ms
    }
}

/// The first of `windows` that covers `now_ms`.
pub fn active(windows: &[FreezeWindow], now_ms: u64) -> Option<&FreezeWindow> {
    windows.iter().find(|w| w.covers(now_ms))
}

/// `approval: {maxPlanAge: DURATION}`; the default when left out.
pub(super) fn read_approval(reader: &mut Reader, node: Option<&Node>) -> Option<Duration> {
    let Some(node) = node else { return Some(DEFAULT_MAX_PLAN_AGE) };
    reader.mapping(node, "`approval`", APPROVAL_KEYS)?;
    node.get("maxPlanAge")
        .map_or(Some(DEFAULT_MAX_PLAN_AGE), |n| reader.duration(n, "`approval.maxPlanAge`"))
}

/// A `freeze:` list (`what`: whose, for messages); every bad window is
/// reported, the good ones kept.
pub(super) fn read_freeze(reader: &mut Reader, node: &Node, what: &str) -> Vec<FreezeWindow> {
    let what = format!("`freeze` of {what}");
    reader.list(node, &what).iter().filter_map(|item| read_window(reader, item, &what)).collect()
}

fn read_window(reader: &mut Reader, node: &Node, what: &str) -> Option<FreezeWindow> {
    reader.mapping(node, &format!("a window of {what}"), WINDOW_KEYS)?;
    let mut time = |key: &str| {
        let value = reader.required(node, key, &format!("a window of {what}"))?;
        let text = reader.string(value, &format!("`{key}` of a window of {what}"))?;
        match parse_time(&text) {
            Some(ms) => Some((ms, text, value)),
            None => {
                reader.invalid(
                    value,
                    format!("`{key}` of a window of {what} is not an RFC 3339 time"),
                    "not a time",
                    "write a date and time with its offset, such as `2026-12-24T00:00:00Z` or `2026-12-24T00:00:00+01:00`",
                );
                None
            }
        }
    };
    let start = time("start");
    let end = time("end");
    let reason = reader
        .required(node, "reason", &format!("a window of {what}"))
        .and_then(|n| reader.string(n, &format!("`reason` of a window of {what}")));
    let ((start_ms, start, _), (end_ms, end, end_node)) = (start?, end?);
    if end_ms <= start_ms {
        reader.invalid(
            end_node,
            format!("a window of {what} ends at or before it starts ({start})"),
            "not after `start`",
            "a window runs from `start` (inclusive) to `end` (exclusive): swap them or fix the date",
        );
        return None;
    }
    Some(FreezeWindow {
        start_ms,
        end_ms,
        start,
        end,
        reason: reason?,
        location: reader.location(node),
    })
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff]` followed by
/// `Z` or `±HH:MM`.
pub fn parse_time(text: &str) -> Option<u64> {
    if text.ends_with('Z') || text.ends_with('z') {
        return crate::timestamp::parse_rfc3339(&format!("{}Z", &text[..text.len() - 1]));
    }
    let split = text.len().checked_sub(6)?;
    let (local, offset) = (text.get(..split)?, text.get(split..)?);
    let sign: i64 = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let local = i64::try_from(crate::timestamp::parse_rfc3339(&format!("{local}Z"))?).ok()?;
    u64::try_from(local - sign * (hours * 3600 + minutes * 60) * 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_with_z_or_an_offset() {
        let utc = parse_time("2026-12-24T00:00:00Z").expect("utc");
        assert_eq!(parse_time("2026-12-24T01:00:00+01:00"), Some(utc));
        assert_eq!(parse_time("2026-12-23T19:30:00-04:30"), Some(utc));
        assert_eq!(parse_time("2026-12-24T00:00:00.500Z"), Some(utc + 500));
        for bad in ["2026-12-24", "2026-12-24T00:00:00", "2026-12-24T00:00:00+25:00", "soon"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_window_covers_its_start_and_not_its_end() {
        let source = crate::diagnostic::SourceFile::new("p.yaml", "x");
        let window = FreezeWindow {
            start_ms: 10,
            end_ms: 20,
            start: "a".into(),
            end: "b".into(),
            reason: "r".into(),
            location: Location::new(&source, 0..1),
        };
        let windows = [window];
        assert!(active(&windows, 9).is_none());
        assert!(active(&windows, 10).is_some());
        assert!(active(&windows, 19).is_some());
        assert!(active(&windows, 20).is_none());
    }
}
