//! `ferry sim image push ENV NAME:TAG`: a demo image in a simulated org's
//! registry, so that a newcomer has a second version to release (and to
//! roll back from) without building one.

use serde_json::json;

use super::Session;
use crate::cli::OutputFormat;
use crate::diagnostic::Problem;
use crate::{Error, ExitStatus, connect, output};

/// Version of `sim image push --output json`.
pub const SCHEMA: &str = "ferry.sim-image/v1";

pub(crate) fn push(session: &Session<'_>, env: &str, image: &str) -> Result<ExitStatus, Error> {
    let workspace = session.workspace()?;
    let env = workspace.config.environment(env)?;
    let (repository, tag) = name_and_tag(image)?;
    if !session.global.sim && !loopback(&env.registry) {
        return Err(Problem::new(
            "ferry::sim::not-a-simulator",
            format!("{}'s registry {} is not a simulator's", env.name, env.registry),
        )
        .help("add --sim to push into the embedded simulator; demo images only go to a simulator's registry (loopback), never to a real org's")
        .into());
    }
    let token = connect::token(env)?;
    let digest = super::runtime()?.block_on(crate::sim::seed::push_demo_image(
        &env.registry,
        token.expose(),
        repository,
        tag,
    ))?;
    if session.global.output == OutputFormat::Json {
        output::print(&format!(
            "{:#}\n",
            json!({
                "schema": SCHEMA,
                "environment": env.name,
                "org": env.org,
                "registry": env.registry,
                "repository": repository,
                "tag": tag,
                "digest": digest,
                "image": format!("//image/{repository}:{tag}"),
            })
        ))?;
    } else {
        output::print(&format!(
            "Pushed {repository}:{tag} to {}'s registry (org {}): {digest}\n",
            env.name, env.org
        ))?;
        output::status(&format!(
            "A workload whose image is //image/{repository}:{tag} in git now releases it into {}",
            env.name
        ));
    }
    Ok(ExitStatus::Success)
}

/// `NAME:TAG` (or `//image/NAME:TAG`, as a workload writes it) split; the
/// tag is required, digests are not accepted (the image is built here).
fn name_and_tag(image: &str) -> Result<(&str, &str), Error> {
    let written = image.strip_prefix("//image/").unwrap_or(image);
    let split = written.rsplit_once(':').filter(|(name, tag)| {
        let name_ok = !name.is_empty()
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        name_ok && tag_ok
    });
    split.ok_or_else(|| {
        Problem::new(
            "ferry::sim::image-name",
            format!("`{image}` is not NAME:TAG"),
        )
        .help("a repository name (lowercase letters, digits, `._-`, `/` between parts) and a tag, such as api:1.5.0")
        .into()
    })
}

/// `127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`: a registry on this
/// machine (the simulator's).
fn loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(host, _)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_a_tag_and_registry_safe_characters() {
        assert!(matches!(name_and_tag("api:1.5.0"), Ok(("api", "1.5.0"))));
        assert!(matches!(name_and_tag("//image/team/api:v2"), Ok(("team/api", "v2"))));
        for wrong in ["api", "api:", ":1", "Api:1", "api@sha256:ab", "a//b:1", "api:-x"] {
            assert!(name_and_tag(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn only_loopback_registries_are_simulators() {
        assert!(loopback("127.0.0.1:5001") && loopback("localhost:5000") && loopback("[::1]:5"));
        assert!(!loopback("acme-prod.registry.cpln.io") && !loopback("127.0.0.2:5000"));
    }
}
