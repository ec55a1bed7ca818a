//! What can go wrong talking to the Control Plane API. No variant ever
//! holds a token or a request body.

use miette::Diagnostic;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ApiError {
    #[error("refusing to send a token over plain HTTP to {endpoint}")]
    #[diagnostic(
        code(ferry::api::insecure),
        help(
            "use an https:// endpoint; plain HTTP is only allowed to 127.0.0.1, [::1] and localhost"
        )
    )]
    Insecure { endpoint: String },

    #[error("no token for {org}: environment variable {variable} is not set")]
    #[diagnostic(
        code(ferry::api::no_token),
        help(
            "export {variable} with a service-account key for org {org} (CPLN_TOKEN is used when it is unset)"
        )
    )]
    NoToken { org: String, variable: String },

    #[error("the token in {variable} for {org} {reason}")]
    #[diagnostic(
        code(ferry::api::malformed_token),
        help(
            "export {variable} with the token alone: a service-account key on one line, without quotes or spaces (Ferry never shows its value)"
        )
    )]
    MalformedToken { org: String, variable: String, reason: String },

    #[error("{method} {path}: {message}")]
    #[diagnostic(code(ferry::api::status), help("{}", help_for(*status)))]
    Status { method: String, path: String, status: u16, message: String, code: Option<String> },

    #[error("{method} {path}: quota exhausted: {message}")]
    #[diagnostic(
        code(ferry::api::quota),
        help("a quota limit is not retried; raise the quota or remove resources")
    )]
    Quota { method: String, path: String, message: String },

    #[error("{method} {path}: could not reach the API")]
    #[diagnostic(
        code(ferry::api::transport),
        help("check the endpoint and the network; transient failures were retried")
    )]
    Transport {
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{method} {path}: the answer is not the JSON expected: {reason}")]
    #[diagnostic(code(ferry::api::decode))]
    Decode { method: String, path: String, reason: String },

    /// The query for the resources Ferry manages of a kind the manifests
    /// use was refused: without it Ferry cannot tell which of them it
    /// manages, so it does not plan blind.
    #[error(
        "cannot read which {kind} resources Ferry manages in org {org}: POST {path} answered {status}"
    )]
    #[diagnostic(code(ferry::api::managed_query), help("{help}"))]
    ManagedQuery { kind: String, org: String, path: String, status: u16, help: String },

    #[error("could not set up the HTTP client")]
    #[diagnostic(code(ferry::api::client))]
    Client(#[source] reqwest::Error),
}

impl ApiError {
    /// A write that may or may not have taken effect: the server failed
    /// (500, 502–504) or the answer never came. Its caller reads back what
    /// is there rather than failing blind or repeating blind.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => matches!(status, 500 | 502..=504),
            ApiError::Transport { source, .. } => !source.is_connect(),
            _ => false,
        }
    }

    /// The HTTP status, for errors the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Quota { .. } => Some(429),
            ApiError::ManagedQuery { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn help_for(status: u16) -> &'static str {
    match status {
        401 => {
            "the token is missing, invalid or expired; check the environment's tokenEnv variable"
        }
        403 => "the token is valid but may not do this here; a token only works in its own org",
        404 => "it does not exist (or the org or GVC name is wrong)",
        409 => "it conflicts with what exists (already created, or still in use)",
        400 | 422 => "Control Plane rejected the request as invalid; the message says what",
        _ => "the request failed; transient failures were retried",
    }
}
