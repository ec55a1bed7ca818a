//! What a whole registry holds: every repository, tag and the manifest
//! digest each tag points at (`/v2/_catalog`, `tags/list`, a HEAD per tag).

use futures::{StreamExt, TryStreamExt, stream};
use reqwest::Method;
use reqwest::header::LINK;
use serde::Deserialize;

use super::RegistryError;
use super::auth::Scopes;
use super::client::{Registry, expect, http_client};
use super::credentials::Credential;
use super::manifest::{self, header_str};

/// One tag of one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedTag {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
}

/// Requests in flight while reading tags.
const CONCURRENCY: usize = 8;

/// Every tag in the registry at `host`.
pub async fn list_tags(
    host: &str,
    credential: Credential,
) -> Result<Vec<ListedTag>, RegistryError> {
    let registry = Registry::for_host(http_client()?, host, credential);
    let repositories = paged::<Catalog>(&registry, &Scopes::catalog(), "", "_catalog").await?;
    let repositories: Vec<String> = repositories.into_iter().flat_map(|c| c.repositories).collect();
    let tags: Vec<(String, String)> = stream::iter(repositories)
        .map(|repository| {
            let registry = &registry;
            async move {
                let scopes = Scopes::pull(&repository);
                let path = format!("{repository}/tags/list");
                let pages = paged::<TagList>(registry, &scopes, &repository, &path).await?;
                let tags = pages.into_iter().flat_map(|p| p.tags.unwrap_or_default());
                Ok::<_, RegistryError>(tags.map(|t| (repository.clone(), t)).collect::<Vec<_>>())
            }
        })
        .buffered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    stream::iter(tags)
        .map(|(repository, tag)| {
            let registry = &registry;
            async move { head(registry, repository, tag).await }
        })
        .buffered(CONCURRENCY)
        .try_filter_map(|listed| async move { Ok(listed) })
        .try_collect()
        .await
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(Deserialize)]
struct TagList {
    tags: Option<Vec<String>>,
}

/// GETs `/v2/{path}` and every page its `Link: <…>; rel="next"` headers
/// lead to.
async fn paged<T: for<'de> Deserialize<'de>>(
    registry: &Registry,
    scopes: &Scopes,
    repository: &str,
    path: &str,
) -> Result<Vec<T>, RegistryError> {
    let mut pages = Vec::new();
    let mut url = Some(registry.root_url(path));
    while let Some(current) = url.take() {
        let response = registry.send(scopes, Method::GET, &current, |r| r).await?;
        if response.status() == 404 {
            break;
        }
        let response = expect(response, &[200], &registry.host, repository).await?;
        url = header_str(&response, LINK.as_str())
            .and_then(|link| next_link(&link))
            .map(|next| registry.absolute(&next));
        let page = response.json::<T>().await.map_err(|cause| RegistryError::Unexpected {
            url: current.clone(),
            status: 200,
            detail: format!("unreadable listing: {cause}"),
            retry_after: None,
        })?;
        pages.push(page);
    }
    Ok(pages)
}

/// The target of a `rel="next"` link in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

/// The digest and media type of `repository:tag`; `None` if the tag went
/// away since it was listed.
async fn head(
    registry: &Registry,
    repository: String,
    tag: String,
) -> Result<Option<ListedTag>, RegistryError> {
    let scopes = Scopes::pull(&repository);
    let found = manifest::describe(registry, &scopes, &repository, &tag).await?;
    Ok(found.map(|(digest, media_type)| ListedTag {
        repository,
        tag,
        digest: digest.to_string(),
        media_type,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/a>; rel="prev", </v2/x?last=1>; rel=next"#).as_deref(),
            Some("/v2/x?last=1")
        );
        assert_eq!(next_link(r#"</v2/a>; rel="prev""#), None);
    }
}
