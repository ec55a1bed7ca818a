//! Turns an environment of the plan file into an API client, reading its
//! token from the environment variable the plan file names.
//!
//! Like the `cpln` CLI: `CPLN_ENDPOINT` is used when the plan file names no
//! endpoint, and `CPLN_TOKEN` when the environment's own variable is unset.
//! The org always comes from the plan file, so `CPLN_ORG` is not read.

use std::collections::HashMap;

use crate::api::{ApiError, Client, ClientSettings, Token};
use crate::config::{DEFAULT_ENDPOINT, Environment};

/// The variables Ferry reads, by name.
pub mod vars {
    pub const CPLN_ENDPOINT: &str = "CPLN_ENDPOINT";
    pub const CPLN_TOKEN: &str = "CPLN_TOKEN";
}

/// The endpoint of `env`: the plan file's, else `$CPLN_ENDPOINT`, else the
/// public API.
pub fn endpoint(env: &Environment) -> String {
    env.endpoint
        .clone()
        .or_else(|| std::env::var(vars::CPLN_ENDPOINT).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
}

/// Tokens Ferry itself holds, by org: the embedded simulator's (`--sim`).
/// Set once per process, before any client is made.
static OWN_TOKENS: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();

/// Uses these tokens (by org) instead of the environment's variables.
pub fn use_own_tokens(tokens: HashMap<String, String>) {
    let _ = OWN_TOKENS.set(tokens);
}

/// The token of `env`: one Ferry holds for its org (`--sim`), else
/// `$tokenEnv`, else `$CPLN_TOKEN` (a variable set but blank counts as
/// unset, as for `cpln`). Surrounding whitespace is dropped; a token that
/// still cannot be sent (several lines, spaces, non-ASCII) is an input
/// error naming the variable, before anything goes on the network.
pub fn token(env: &Environment) -> Result<Token, ApiError> {
    if let Some(token) = OWN_TOKENS.get().and_then(|tokens| tokens.get(&env.org)) {
        return Ok(Token::new(token.clone()));
    }
    let malformed = |variable: &str, reason: &str| ApiError::MalformedToken {
        org: env.org.clone(),
        variable: variable.to_owned(),
        reason: reason.to_owned(),
    };
    let mut blank = None;
    for variable in [env.token_env.as_str(), vars::CPLN_TOKEN] {
        let Some(value) = std::env::var_os(variable) else { continue };
        let Some(value) = value.to_str() else {
            return Err(malformed(variable, "is not valid Unicode"));
        };
        if value.trim().is_empty() {
            blank.get_or_insert(variable);
            continue;
        }
        let token = Token::new(value.trim());
        return match token.malformed() {
            None => Ok(token),
            Some(reason) => Err(malformed(variable, reason)),
        };
    }
    match blank {
        Some(variable) => Err(malformed(variable, "is empty")),
        None => Err(ApiError::NoToken { org: env.org.clone(), variable: env.token_env.clone() }),
    }
}

/// A client for `env`'s org.
pub fn client(env: &Environment) -> Result<Client, ApiError> {
    Client::new(ClientSettings::new(endpoint(env), token(env)?))
}
