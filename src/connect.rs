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
/// `$tokenEnv`, else `$CPLN_TOKEN`.
pub fn token(env: &Environment) -> Result<Token, ApiError> {
    if let Some(token) = OWN_TOKENS.get().and_then(|tokens| tokens.get(&env.org)) {
        return Ok(Token::new(token.clone()));
    }
    [env.token_env.as_str(), vars::CPLN_TOKEN]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .map(|value| Token::new(value.trim()))
        .ok_or_else(|| ApiError::NoToken { org: env.org.clone(), variable: env.token_env.clone() })
}

/// A client for `env`'s org.
pub fn client(env: &Environment) -> Result<Client, ApiError> {
    Client::new(ClientSettings::new(endpoint(env), token(env)?))
}
