//! A string that must never be shown: API tokens, registry passwords.

use std::fmt;

/// A secret string. It never shows in `Debug` output, logs or errors; only
/// [`Secret::expose`] gives it out, to build an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Why this cannot be a bearer token, in words that never quote it;
    /// `None` when it can. A token is one word of visible ASCII (RFC 6750's
    /// `b64token` and Control Plane's keys are narrower still), so anything
    /// else is a mistake in the variable, not something to send and retry.
    pub fn malformed(&self) -> Option<&'static str> {
        let value = &self.0;
        if value.is_empty() {
            Some("is empty")
        } else if value.contains(['\n', '\r']) {
            Some("holds more than one line")
        } else if value.chars().any(char::is_whitespace) {
            Some("contains a space")
        } else if value.chars().any(|c| !c.is_ascii_graphic()) {
            Some(
                "contains characters that are not visible ASCII (a quote, a control character or non-ASCII text?)",
            )
        } else {
            None
        }
    }

    /// The secret itself, to send it where it belongs. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn malformed_tokens_are_named_without_their_value() {
        assert_eq!(Secret::new("eyJhbGciOi.J9-_x=").malformed(), None);
        for (value, why) in [
            ("", "empty"),
            ("abc\ndef", "more than one line"),
            ("abc def", "space"),
            ("abc\u{7}", "visible ASCII"),
            ("tökén", "visible ASCII"),
        ] {
            let reason = Secret::new(value).malformed().unwrap_or_default();
            assert!(reason.contains(why), "{value:?}: {reason}");
        }
    }
}
