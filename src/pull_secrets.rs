//! The pull secrets a promotion needs: every image outside the org that
//! SRC's GVC pulls with a pull secret must find one on DST's GVC too, or
//! DST's replicas fail to pull (Control Plane skips a missing or
//! mismatched secret silently, at deploy time; the seed
//! `000_b8c83c5cfb9d90fc`). Which secret serves which image is
//! [`crate::manifest::image::pull_secret_serves`].

use serde_json::Value;

use crate::api::{ApiError, Client, paths};
use crate::config::Environment;
use crate::execute::Finding;
use crate::manifest::image::{self, pull_secret_serves};
use crate::manifest::{Kind, ResourceId};
use crate::plan;
use crate::render::Rendered;

/// A pull secret as the check needs it.
struct PullSecret {
    name: String,
    secret_type: String,
    data: Value,
}

/// One problem per image outside the org that SRC pulls with a pull secret
/// and DST's GVC (as it will be after this promotion) has none for. Images
/// of SRC's own registry (the `pull-secret` strategy) are checked apart.
pub async fn missing(
    src_client: &Client,
    src: &Environment,
    dst_client: &Client,
    dst: &Environment,
    rendered: &[Rendered],
) -> Result<Vec<Finding>, ApiError> {
    let mut images: Vec<&str> = rendered
        .iter()
        .filter(|r| r.id.kind == Kind::Workload)
        .flat_map(|r| plan::container_images(&r.body).into_iter().map(|(_, image)| image))
        .filter(|text| {
            let host = image::classify(text, Some(dst.own_registry())).source.host();
            host.is_some_and(|host| host != src.registry)
        })
        .collect();
    images.sort_unstable();
    images.dedup();
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let src_gvc = src_client.get_opt(&paths::item(&src.org, &src.gvc, Kind::Gvc, &src.gvc)).await?;
    let src_secrets = linked(src_client, src, src_gvc.as_ref(), &[]).await?;
    let dst_gvc = match rendered.iter().find(|r| r.id.kind == Kind::Gvc) {
        Some(gvc) => Some(gvc.body.clone()),
        None => dst_client.get_opt(&paths::item(&dst.org, &dst.gvc, Kind::Gvc, &dst.gvc)).await?,
    };
    let dst_secrets = linked(dst_client, dst, dst_gvc.as_ref(), rendered).await?;
    let serving = |secrets: &[PullSecret], text: &str| -> Option<String> {
        let parsed = image::classify(text, None);
        secrets
            .iter()
            .find(|s| pull_secret_serves(&s.secret_type, &s.data, &parsed))
            .map(|s| format!("`{}` ({})", s.name, s.secret_type))
    };
    let mut problems = Vec::new();
    for text in images {
        let Some(used) = serving(&src_secrets, text) else { continue };
        if serving(&dst_secrets, text).is_none() {
            problems.push(Finding::NoPullSecret {
                image: text.to_owned(),
                source: src.name.clone(),
                used,
                target: dst.name.clone(),
            });
        }
    }
    Ok(problems)
}

/// The secrets a GVC's `pullSecretLinks` name, with their data: from the
/// rendered manifests when Ferry applies them, else from the live org
/// (revealed; a secret that cannot be read serves nothing).
async fn linked(
    client: &Client,
    env: &Environment,
    gvc: Option<&Value>,
    rendered: &[Rendered],
) -> Result<Vec<PullSecret>, ApiError> {
    let links = gvc.and_then(|g| g.pointer("/spec/pullSecretLinks")).and_then(Value::as_array);
    let mut secrets = Vec::new();
    for link in links.into_iter().flatten().filter_map(Value::as_str) {
        let name = link.rsplit('/').next().unwrap_or(link).to_owned();
        let id = ResourceId::new(Kind::Secret, name.clone());
        let body = match rendered.iter().find(|r| r.id == id) {
            Some(rendered) => Some(rendered.body.clone()),
            None => {
                let path = paths::item(&env.org, &env.gvc, Kind::Secret, &name);
                match client.get_opt(&format!("{path}/-reveal")).await {
                    Err(error) if error.status() == Some(403) => {
                        tracing::warn!(
                            "cannot reveal pull secret {name} in {}; it is taken to serve no image",
                            env.name
                        );
                        None
                    }
                    other => other?,
                }
            }
        };
        let Some(body) = body else { continue };
        secrets.push(PullSecret {
            name,
            secret_type: body.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
            data: body.get("data").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(secrets)
}
