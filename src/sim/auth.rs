//! Who may act on which org: bearer tokens on the API, Basic `<token>`
//! credentials on the registries. A token belongs to exactly one org.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};
use base64::Engine;

/// The outcome of checking a request's credentials against an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Granted,
    /// No credentials, or a token no org knows: 401.
    Unauthenticated,
    /// A valid token of another org: 403.
    Denied,
}

/// Token → org, built from the config.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    orgs: BTreeMap<String, String>,
}

impl Tokens {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let orgs = pairs
            .into_iter()
            .filter(|(_, token)| !token.is_empty())
            .map(|(org, token)| (token.to_owned(), org.to_owned()))
            .collect();
        Self { orgs }
    }

    pub fn org_of(&self, token: &str) -> Option<&str> {
        self.orgs.get(token).map(String::as_str)
    }

    pub fn by_token(&self) -> &BTreeMap<String, String> {
        &self.orgs
    }

    fn check(&self, token: Option<&str>, org: &str) -> Access {
        match token.and_then(|t| self.org_of(t)) {
            None => Access::Unauthenticated,
            Some(owner) if owner == org => Access::Granted,
            Some(_) => Access::Denied,
        }
    }

    /// API: `Authorization: Bearer TOKEN` (the prefix is optional, as the
    /// CLI adds it when missing).
    pub fn check_api(&self, headers: &HeaderMap, org: &str) -> Access {
        self.check(bearer(headers), org)
    }

    /// Registry: Basic with user `<token>` and the token as password, or a
    /// bearer token.
    pub fn check_registry(&self, headers: &HeaderMap, org: &str) -> Access {
        let Some(value) = authorization(headers) else { return Access::Unauthenticated };
        if let Some(encoded) = strip_scheme(value, "basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok();
            let text = decoded.and_then(|d| String::from_utf8(d).ok());
            return match text.as_deref().and_then(|t| t.split_once(':')) {
                Some(("<token>", password)) => self.check(Some(password), org),
                _ => Access::Unauthenticated,
            };
        }
        self.check(bearer(headers), org)
    }
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = authorization(headers)?.trim();
    let token = strip_scheme(value, "bearer").unwrap_or(value).trim();
    (!token.is_empty() && !token.contains(' ')).then_some(token)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn tokens_are_scoped_to_their_org() {
        let tokens = Tokens::new([("dev", "t-dev"), ("prod", "t-prod")]);
        assert_eq!(tokens.check_api(&headers("Bearer t-dev"), "dev"), Access::Granted);
        assert_eq!(tokens.check_api(&headers("t-dev"), "dev"), Access::Granted);
        assert_eq!(tokens.check_api(&headers("Bearer t-dev"), "prod"), Access::Denied);
        assert_eq!(tokens.check_api(&headers("Bearer nope"), "dev"), Access::Unauthenticated);
        assert_eq!(tokens.check_api(&HeaderMap::new(), "dev"), Access::Unauthenticated);
    }

    #[test]
    fn registry_wants_the_token_user() {
        let tokens = Tokens::new([("dev", "t-dev")]);
        let basic = |creds: &str| {
            headers(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(creds)))
        };
        assert_eq!(tokens.check_registry(&basic("<token>:t-dev"), "dev"), Access::Granted);
        assert_eq!(tokens.check_registry(&basic("admin:t-dev"), "dev"), Access::Unauthenticated);
        assert_eq!(tokens.check_registry(&basic("<token>:x"), "dev"), Access::Unauthenticated);
    }
}
