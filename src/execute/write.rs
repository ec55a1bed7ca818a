//! Writing one resource as a [`Write`] says: PUT upserts as `cpln apply`
//! does, then a PATCH with `$replace/…` where the desired state removes
//! fields (a PUT merges and would keep them), a PATCH as it is, a DELETE,
//! or delete-then-create for fields that cannot change.

use std::time::Duration;

use serde_json::Value;

use crate::api::{ApiError, ControlPlane, paths};
use crate::config::Environment;
use crate::manifest::Kind;
use crate::plan::steps::removal_patch;
use crate::plan::{Method, Write};

/// Writes `body` (the write's body, payloads put back) as `write` says.
pub(super) async fn write<A: ControlPlane>(
    client: &A,
    env: &Environment,
    write: &Write,
    body: Option<&Value>,
) -> Result<(), ApiError> {
    let id = &write.id;
    let item = paths::item(&env.org, &env.gvc, id.kind, &id.name);
    let collection = if id.kind == Kind::Gvc {
        format!("/org/{}/gvc", env.org)
    } else {
        paths::collection(&env.org, &env.gvc, id.kind)
    };
    match (&write.method, body) {
        (Method::Delete, _) => client.delete(&item).await.map(|_| ()),
        (_, None) => Ok(()),
        (Method::Recreate, Some(body)) => {
            client.delete(&item).await?;
            wait_gone(client, &item).await?;
            client.put(&collection, body).await.map(|_| ())
        }
        (Method::Put, Some(body)) => client.put(&collection, body).await.map(|_| ()),
        (Method::PutExact { tags }, Some(body)) => {
            client.put(&collection, body).await?;
            if let Some(patch) = removal_patch(body, tags) {
                client.patch(&item, &patch).await?;
            }
            Ok(())
        }
        (Method::Patch, Some(body)) => client.patch(&item, body).await.map(|_| ()),
    }
}

/// Deletes are asynchronous for some kinds: poll until the item is gone.
async fn wait_gone<A: ControlPlane>(client: &A, item: &str) -> Result<(), ApiError> {
    for _ in 0..120 {
        if client.get_opt(item).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
