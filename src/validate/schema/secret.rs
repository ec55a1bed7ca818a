//! `kind: secret`: the type, and the shape of `data` each type has.

use serde_json::{Map, Value};

use super::{Checker, Ptr, top_level};

/// Secret types (types-go `secret/models.go`).
pub const TYPES: [&str; 12] = [
    "opaque",
    "tls",
    "gcp",
    "aws",
    "ecr",
    "userpass",
    "keypair",
    "azure-sdk",
    "azure-connector",
    "docker",
    "dictionary",
    "nats-account",
];

pub(super) fn check(c: &mut Checker, root: &Ptr, body: &Value) {
    let Some(doc) = c.mapping(root, body, &top_level(&["type", "data"])) else { return };
    let Some(kind) = c.required(doc, root, "type", "add `type:`, one of: opaque, tls, gcp, aws, ecr, userpass, keypair, azure-sdk, azure-connector, docker, dictionary, nats-account") else {
        return;
    };
    let Some(kind) = c.one_of(&root.key("type"), kind, &TYPES) else { return };
    let at = root.key("data");
    // From here on, messages name types, never values: they are secrets.
    c.hide_values = true;
    let Some(data) = doc.get("data").filter(|v| !v.is_null()) else {
        c.error(&at, format!("a secret of type {kind} needs `data`"), data_help(&kind));
        return;
    };
    // Values kept out of git (`ferry:keep-live`) are the live secret's,
    // which the API accepted; their shape is not known here.
    if crate::manifest::kept_secret::holds(data) {
        return;
    }
    match kind.as_str() {
        "opaque" => {
            let Some(map) = shaped(c, &at, data, &kind, &["payload", "encoding"]) else { return };
            let encoding = c
                .field(map, &at, "encoding", |c, at, v| c.one_of(at, v, &["plain", "base64"]))
                .flatten();
            if let Some(payload) = c.required(map, &at, "payload", "the secret's value") {
                let at = at.key("payload");
                if let Some(text) = c.string(&at, payload)
                    && encoding.as_deref() == Some("base64")
                    && !is_base64(text)
                {
                    // Inferred: no source says the API decodes it on write.
                    c.warn(
                        &at,
                        format!("{at} is not base64, but `encoding` says it is"),
                        "encode the payload, or set `encoding: plain`",
                    );
                }
            }
        }
        "dictionary" => {
            let Value::Object(entries) = data else {
                c.wrong_type(&at, data, "a mapping of names to values", data_help(&kind));
                return;
            };
            for (key, value) in entries {
                if key.is_empty()
                    || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                {
                    c.push(
                        &at.key(key),
                        format!("the key `{key}` in {at} is not a valid dictionary key"),
                        "dictionary keys use letters, digits, `-`, `.` and `_`",
                        super::Severity::Error,
                        true,
                    );
                }
                if !value.is_string() {
                    c.wrong_type(
                        &at.key(key),
                        value,
                        "a string",
                        "quote the value: dictionary values are text",
                    );
                }
            }
        }
        "docker" | "gcp" | "azure-sdk" => json_text(c, &at, data, &kind),
        "aws" | "ecr" => {
            let known: &[&str] = if kind == "ecr" {
                &["accessKey", "secretKey", "roleArn", "externalId", "repos"]
            } else {
                &["accessKey", "secretKey", "roleArn", "externalId"]
            };
            let Some(map) = shaped(c, &at, data, &kind, known) else { return };
            required_strings(c, map, &at, &["accessKey", "secretKey"]);
            optional_strings(c, map, &at, &["externalId"]);
            c.field(map, &at, "roleArn", |c, at, v| {
                if let Some(arn) = c.string(at, v).filter(|a| !a.starts_with("arn:")) {
                    c.error(
                        at,
                        format!("{at} is `{arn}`, not an AWS role ARN"),
                        "write `arn:aws:iam::ACCOUNT:role/NAME`",
                    );
                }
            });
            if kind == "ecr"
                && let Some(repos) =
                    c.required(map, &at, "repos", "the ECR repositories this secret pulls from")
            {
                ecr_repos(c, &at.key("repos"), repos);
            }
        }
        "azure-connector" => {
            let Some(map) = shaped(c, &at, data, &kind, &["url", "code"]) else { return };
            required_strings(c, map, &at, &["url", "code"]);
            if let Some(url) =
                map.get("url").and_then(Value::as_str).filter(|u| !u.starts_with("https://"))
            {
                // Inferred from what the connector is: a warning.
                c.warn(
                    &at.key("url"),
                    format!("{} is `{url}`, not an https URL", at.key("url")),
                    "the Azure function's https:// URL",
                );
            }
        }
        "keypair" => {
            let Some(map) = shaped(c, &at, data, &kind, &["secretKey", "publicKey", "passphrase"])
            else {
                return;
            };
            required_strings(c, map, &at, &["secretKey"]);
            optional_strings(c, map, &at, &["publicKey", "passphrase"]);
        }
        "tls" => {
            let Some(map) = shaped(c, &at, data, &kind, &["key", "cert", "chain"]) else { return };
            required_strings(c, map, &at, &["cert"]);
            optional_strings(c, map, &at, &["key", "chain"]);
            for key in ["key", "cert", "chain"] {
                if map
                    .get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.trim_start().starts_with("-----BEGIN"))
                {
                    // The reference says PEM; none says the API refuses
                    // other text: a warning.
                    c.warn(
                        &at.key(key),
                        format!("{} is not PEM", at.key(key)),
                        "paste the PEM text, starting with `-----BEGIN`",
                    );
                }
            }
        }
        "userpass" => {
            let Some(map) = shaped(c, &at, data, &kind, &["username", "password", "encoding"])
            else {
                return;
            };
            required_strings(c, map, &at, &["username", "password"]);
            c.field(map, &at, "encoding", |c, at, v| c.one_of(at, v, &["plain", "base64"]));
        }
        "nats-account" => {
            let Some(map) = shaped(c, &at, data, &kind, &["accountId", "privateKey"]) else {
                return;
            };
            required_strings(c, map, &at, &["accountId", "privateKey"]);
            // NATS nkeys: an account's public key is `A` and 55 base32
            // characters, its seed `SA` and 56 (the Terraform provider's
            // validators).
            for (key, prefix, rest) in [("accountId", "A", 55), ("privateKey", "SA", 56)] {
                let valid = |t: &str| {
                    t.strip_prefix(prefix).is_some_and(|r| {
                        r.len() == rest
                            && r.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    })
                };
                if map.get(key).and_then(Value::as_str).is_some_and(|t| !valid(t)) {
                    c.error(
                        &at.key(key),
                        format!("{} is not a NATS {key}", at.key(key)),
                        format!(
                            "a NATS nkey: `{prefix}` then {rest} upper-case letters and digits"
                        ),
                    );
                }
            }
        }
        _ => {}
    }
}

/// What `data` looks like for a type, for help lines.
fn data_help(kind: &str) -> &'static str {
    match kind {
        "opaque" => "write `data:` with `payload: …` (and `encoding: plain` or `base64`)",
        "dictionary" => "write `data:` as `KEY: value` lines",
        "docker" => {
            "write `data:` as the text of a Docker config.json: `{\"auths\": {\"HOST\": {…}}}`"
        }
        "gcp" => "write `data:` as the text of a GCP service account key (JSON)",
        "azure-sdk" => "write `data:` as the text of an Azure SDK credentials JSON",
        "aws" => {
            "write `data:` with `accessKey` and `secretKey` (and optionally `roleArn`, `externalId`)"
        }
        "ecr" => "write `data:` with `accessKey`, `secretKey` and `repos`",
        "azure-connector" => "write `data:` with `url` and `code`",
        "keypair" => "write `data:` with `secretKey` (and optionally `publicKey`, `passphrase`)",
        "tls" => "write `data:` with `cert` and `key` (and optionally `chain`), PEM text",
        "userpass" => "write `data:` with `username` and `password`",
        _ => "write `data:` with `accountId` and `privateKey`",
    }
}

/// `data` as a mapping with the fields of its type.
fn shaped<'v>(
    c: &mut Checker,
    at: &Ptr,
    data: &'v Value,
    kind: &str,
    known: &[&str],
) -> Option<&'v Map<String, Value>> {
    if !data.is_object() {
        c.wrong_type(at, data, &format!("a mapping for type {kind}"), data_help(kind));
        return None;
    }
    c.mapping(at, data, known)
}

fn required_strings(c: &mut Checker, map: &Map<String, Value>, at: &Ptr, keys: &[&str]) {
    for key in keys {
        if let Some(value) = c.required(map, at, key, "a text value") {
            c.string(&at.key(key), value);
        }
    }
}

fn optional_strings(c: &mut Checker, map: &Map<String, Value>, at: &Ptr, keys: &[&str]) {
    for key in keys {
        c.field(map, at, key, Checker::string);
    }
}

/// Docker, GCP and Azure SDK secrets hold a JSON document as text.
fn json_text(c: &mut Checker, at: &Ptr, data: &Value, kind: &str) {
    let Some(text) = data.as_str() else {
        let help = format!(
            "{}; as YAML, use a block scalar: `data: |` then the JSON, indented",
            data_help(kind)
        );
        c.wrong_type(at, data, &format!("JSON text for type {kind}"), &help);
        return;
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(document)) => {
            if kind == "docker" && !document.get("auths").is_some_and(Value::is_object) {
                // Inferred (a docker config without `auths` logs in
                // nowhere): a warning.
                c.warn(at, format!("{at} has no `auths` mapping"), data_help(kind));
            }
        }
        // The payload is never quoted: it is a secret.
        _ => c.error(at, format!("{at} is not a JSON object"), data_help(kind)),
    }
}

/// `repos` of an ecr secret: 1–20 ECR repository addresses.
fn ecr_repos(c: &mut Checker, at: &Ptr, repos: &Value) {
    let found = c.strings(at, repos);
    if repos.is_array() && (found.is_empty() || found.len() > 20) {
        c.error(
            at,
            format!("an ecr secret lists 1 to 20 repositories, found {}", found.len()),
            "list `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME` items",
        );
    }
    for (at, repo) in found {
        let host = repo.split('/').next().unwrap_or_default();
        let parts: Vec<&str> = host.split('.').collect();
        let valid = matches!(parts.as_slice(), [account, "dkr", "ecr", _, "amazonaws", ..] if account.chars().all(|c| c.is_ascii_digit()) && !account.is_empty());
        if !valid {
            c.error(
                &at,
                format!("{at} is `{repo}`, not an ECR repository"),
                "write `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`",
            );
        }
    }
}

fn is_base64(text: &str) -> bool {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    text.len().is_multiple_of(4)
        && text
            .trim_end_matches('=')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}
