//! Who Ferry is at each registry host.
//!
//! Credentials are given explicitly per host (the plan file names an
//! environment variable per environment; the CLI takes `--src-creds-env`
//! and `--dst-creds-env`), and otherwise looked up in Docker's
//! `config.json` (`auths`, `credHelpers`, `credsStore`). A host with
//! neither is used anonymously.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::RegistryError;

/// The username Control Plane registries expect: the literal `<token>`, with
/// an org token or service-account key as the password.
pub const TOKEN_USER: &str = "<token>";

pub use crate::secret::Secret;

/// How to authenticate at one registry host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credential {
    #[default]
    Anonymous,
    /// Sent as HTTP Basic to a Basic registry, or to the token server of a
    /// Bearer registry.
    Basic { username: String, password: Secret },
}

impl Credential {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic { username: username.into(), password: Secret::new(password) }
    }

    /// Parses the value of a credentials variable: `user:password`, or a
    /// bare token, which becomes user `<token>` (Control Plane's convention).
    pub fn from_env_value(value: &str) -> Self {
        let value = value.trim_end_matches(['\n', '\r']);
        match value.split_once(':') {
            Some((user, password)) if !user.is_empty() => Self::basic(user, password),
            _ => Self::basic(TOKEN_USER, value),
        }
    }

    /// Reads a credentials variable; it must be set and non-empty.
    pub fn from_env(variable: &str) -> Result<Self, RegistryError> {
        match std::env::var(variable) {
            Ok(value) if !value.is_empty() => Ok(Self::from_env_value(&value)),
            _ => Err(RegistryError::MissingCredentials { variable: variable.to_owned() }),
        }
    }
}

/// Credentials for every host a copy touches.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    explicit: HashMap<String, Credential>,
    docker_config: Option<PathBuf>,
}

impl Credentials {
    /// No explicit credentials and no Docker config: anonymous everywhere.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Also consult Docker's config file: `$DOCKER_CONFIG/config.json`, or
    /// `~/.docker/config.json`.
    pub fn with_default_docker_config(self) -> Self {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")));
        match dir {
            Some(dir) => self.with_docker_config(dir.join("config.json")),
            None => self,
        }
    }

    /// Also consult the Docker config file at `path` (a missing file is
    /// the same as an empty one).
    pub fn with_docker_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.docker_config = Some(path.into());
        self
    }

    /// Uses `credential` for `host` (as written in image references,
    /// with its port), ahead of anything in the Docker config.
    pub fn insert(&mut self, host: impl Into<String>, credential: Credential) {
        self.explicit.insert(host.into(), credential);
    }

    /// The credential for `host`: explicit, else from the Docker config,
    /// else anonymous. May run a Docker credential helper.
    pub fn for_host(&self, host: &str) -> Result<Credential, RegistryError> {
        if let Some(credential) = self.explicit.get(host) {
            return Ok(credential.clone());
        }
        match &self.docker_config {
            Some(path) => Ok(docker_config_lookup(path, host)?.unwrap_or_default()),
            None => Ok(Credential::Anonymous),
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

fn docker_config_lookup(path: &Path, host: &str) -> Result<Option<Credential>, RegistryError> {
    let config_error =
        |reason: String| RegistryError::DockerConfig { path: path.to_owned(), reason };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(config_error(error.to_string())),
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|error| config_error(error.to_string()))?;
    if let Some(helper) = config.cred_helpers.get(host) {
        return run_helper(helper, host);
    }
    let entry = config.auths.iter().find(|(key, _)| auth_key_host(key) == host).map(|(_, e)| e);
    if let Some(entry) = entry {
        if let Some(token) = &entry.identitytoken {
            return Ok(Some(Credential::basic(TOKEN_USER, token.clone())));
        }
        if let Some(auth) = &entry.auth {
            let decoded = BASE64
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| config_error(format!("the `auth` of `{host}` is not base64")))?;
            return match decoded.split_once(':') {
                Some((user, password)) => Ok(Some(Credential::basic(user, password))),
                None => Err(config_error(format!("the `auth` of `{host}` is not user:password"))),
            };
        }
        if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Credential::basic(user.clone(), password.clone())));
        }
    }
    match &config.creds_store {
        Some(store) => run_helper(store, host),
        None => Ok(None),
    }
}

/// `auths` keys may be URLs (`https://index.docker.io/v1/`); compare hosts.
fn auth_key_host(key: &str) -> &str {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = key.split('/').next().unwrap_or(key);
    if host == "index.docker.io" || host == "registry-1.docker.io" { "docker.io" } else { host }
}

/// Runs `docker-credential-<name> get` with the host on stdin. A helper
/// that knows nothing about the host is not an error: the host is then
/// used anonymously.
fn run_helper(name: &str, host: &str) -> Result<Option<Credential>, RegistryError> {
    let program = format!("docker-credential-{name}");
    let failed =
        |reason: String| RegistryError::CredentialHelper { helper: program.clone(), reason };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failed(error.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(host.as_bytes()).map_err(|error| failed(error.to_string()))?;
    }
    let output = child.wait_with_output().map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stdout);
        if message.contains("credentials not found") {
            return Ok(None);
        }
        // The helper's output is not shown: it might echo a secret.
        return Err(failed(format!("it exited with {}", output.status)));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperAnswer {
        username: String,
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| failed("its answer is not the JSON Docker helpers write".to_owned()))?;
    Ok(Some(Credential::basic(answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_variable_values() {
        assert_eq!(Credential::from_env_value("ci:pa:ss\n"), Credential::basic("ci", "pa:ss"));
        assert_eq!(Credential::from_env_value("key123"), Credential::basic(TOKEN_USER, "key123"));
        assert_eq!(
            Credential::from_env_value("<token>:key123"),
            Credential::basic(TOKEN_USER, "key123")
        );
    }

    #[test]
    fn never_shows_secrets_in_debug() {
        let text = format!("{:?}", Credential::basic("<token>", "hunter2"));
        assert!(text.contains("<token>") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = BASE64.encode("<token>:k1");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"https://org.registry.cpln.io/v1/": {{"auth": "{auth}"}},
                    "other.io": {{"identitytoken": "t2"}}}}}}"#
            ),
        )
        .unwrap();
        let mut credentials = Credentials::anonymous().with_docker_config(&path);
        assert_eq!(
            credentials.for_host("org.registry.cpln.io").unwrap(),
            Credential::basic(TOKEN_USER, "k1")
        );
        assert_eq!(credentials.for_host("other.io").unwrap(), Credential::basic(TOKEN_USER, "t2"));
        assert_eq!(credentials.for_host("third.io").unwrap(), Credential::Anonymous);
        credentials.insert("other.io", Credential::basic("me", "p"));
        assert_eq!(credentials.for_host("other.io").unwrap(), Credential::basic("me", "p"));
        let missing = Credentials::anonymous().with_docker_config(dir.path().join("none.json"));
        assert_eq!(missing.for_host("other.io").unwrap(), Credential::Anonymous);
    }
}
