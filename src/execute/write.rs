//! Writing one resource as a [`Write`] says: PUT upserts as `cpln apply`
//! does, then a PATCH with `$replace/…` where the desired state removes
//! fields (a PUT merges and would keep them), a PATCH as it is, a DELETE,
//! or delete-then-create for fields that cannot change.

use std::time::Duration;

use serde_json::Value;

use super::StepError;
use crate::api::{ControlPlane, paths};
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
) -> Result<(), StepError> {
    let id = &write.id;
    let failed = |source| StepError::Write { id: id.clone(), source };
    let item = paths::item(&env.org, &env.gvc, id.kind, &id.name);
    let collection = if id.kind == Kind::Gvc {
        format!("/org/{}/gvc", env.org)
    } else {
        paths::collection(&env.org, &env.gvc, id.kind)
    };
    match (&write.method, body) {
        (Method::Delete, _) => client.delete(&item).await.map(|_| ()).map_err(failed),
        (_, None) => Ok(()),
        (Method::Recreate, Some(body)) => {
            client.delete(&item).await.map_err(failed)?;
            crate::readiness::wait_gone(client, &item, GONE_TIMEOUT).await?;
            client.put(&collection, body).await.map(|_| ()).map_err(failed)
        }
        (Method::Put, Some(body)) => {
            client.put(&collection, body).await.map(|_| ()).map_err(failed)
        }
        (Method::PutExact { tags }, Some(body)) => {
            client.put(&collection, body).await.map_err(failed)?;
            if let Some(patch) = removal_patch(body, tags) {
                client.patch(&item, &patch).await.map_err(failed)?;
            }
            Ok(())
        }
        (Method::Patch, Some(body)) => client.patch(&item, body).await.map(|_| ()).map_err(failed),
    }
}

/// How long a recreated resource may take to go after its DELETE.
const GONE_TIMEOUT: Duration = Duration::from_secs(60);
