//! Writing one resource as a [`Write`] says: PUT upserts as `cpln apply`
//! does, then, where git removed fields (a PUT merges and would keep
//! them), a PATCH removing exactly those (`null`, `$drop/F`), so that
//! fields the server owns stay; a PATCH as it is; a DELETE; or
//! delete-then-create for fields that cannot change. Restoring an earlier
//! state PATCHes `$replace/…` of every field it sets.
//!
//! A PUT is repeated by the client on a transient failure (it is an
//! upsert: repeating it is safe). A PATCH is not, so one whose answer is
//! lost (a 500, a 502–504, a timeout: [`crate::api::ApiError::is_ambiguous`])
//! is resolved by reading the resource back ([`write_resolved`], as the
//! lock's POST and the release record are): it took effect when applying
//! it again would change nothing, and is sent again, within the retry
//! policy's bounds, only when it did not. That test is sound for the
//! directives Ferry's PATCHes use (`$patch/` merging by name, `$replace/`,
//! plain keys), which are idempotent; Ferry sends no `$append/`.

use std::time::Duration;

use serde_json::Value;

use super::StepError;
use crate::api::{ApiError, ControlPlane, paths, write_resolved};
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
                patch_resolved(client, &item, &patch).await.map_err(failed)?;
            }
            Ok(())
        }
        (Method::PutRemoving { removals }, Some(body)) => {
            client.put(&collection, body).await.map_err(failed)?;
            patch_resolved(client, &item, removals).await.map_err(failed)
        }
        (Method::Patch, Some(body)) => patch_resolved(client, &item, body).await.map_err(failed),
    }
}

/// PATCHes `item`; an ambiguous failure is resolved by reading it back.
async fn patch_resolved<A: ControlPlane>(
    client: &A,
    item: &str,
    patch: &Value,
) -> Result<(), ApiError> {
    let policy = crate::retry::RetryPolicy::default();
    let landed = |live: Option<&Value>| took_effect(live, patch);
    write_resolved(client, &policy, item, landed, || client.patch(item, patch)).await.map(|_| ())
}

/// Whether `live` already is as `patch` makes it.
fn took_effect(live: Option<&Value>, patch: &Value) -> bool {
    let (Some(Value::Object(live)), Value::Object(patch)) = (live, patch) else {
        return false;
    };
    let mut again = live.clone();
    crate::patch::apply(&mut again, patch).is_ok() && &again == live
}

/// How long a recreated resource may take to go after its DELETE.
const GONE_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::fake::{Fake, Fault, Verb, environment};
    use crate::diff::Action;
    use crate::manifest::ResourceId;

    const API: &str = "/org/acme/gvc/app/workload/api";

    fn image(tag: &str) -> Value {
        json!({"spec": {"$patch/containers": [{"name": "main", "image": format!("//image/api:{tag}")}]}})
    }

    /// The api workload running 1.0, and a PATCH of it to 2.0.
    fn setup() -> (Fake, Write) {
        let fake = Fake::new();
        fake.seed(
            API,
            json!({"kind": "workload", "name": "api", "version": 3, "spec": {"containers": [
                {"name": "main", "image": "//image/api:1.0", "cpu": "50m"},
                {"name": "proxy", "image": "nginx:1.27"}]}}),
        );
        let write = Write {
            id: ResourceId::new(Kind::Workload, "api"),
            action: Action::Update,
            method: Method::Patch,
            body: Some(image("2.0")),
            after_written: Vec::new(),
            after_ready: Vec::new(),
            gate: true,
            stamp: false,
        };
        (fake, write)
    }

    async fn written(fake: &Fake, write: &Write) -> Result<(), StepError> {
        super::write(fake, &environment(), write, write.body.as_ref()).await
    }

    fn running(fake: &Fake) -> Value {
        fake.body(API).map(|b| b["spec"]["containers"].clone()).unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn a_patch_whose_answer_was_lost_after_it_took_effect_is_read_back_not_repeated() {
        let (fake, write) = setup();
        fake.inject(Fault::new(Verb::Patch, API, 500).after_effect());
        let result = written(&fake, &write).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(fake.count(Verb::Patch, API), 1, "not repeated");
        assert_eq!(fake.count(Verb::Get, API), 1, "read back");
        assert_eq!(running(&fake)[0]["image"], "//image/api:2.0");
        assert_eq!(running(&fake)[1]["image"], "nginx:1.27", "merged by name");
    }

    #[tokio::test(start_paused = true)]
    async fn a_patch_that_did_not_take_effect_is_sent_again_and_one_that_keeps_failing_fails() {
        let (fake, write) = setup();
        fake.inject(Fault::new(Verb::Patch, API, 504));
        let result = written(&fake, &write).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(fake.count(Verb::Patch, API), 2);
        assert_eq!(running(&fake)[0]["image"], "//image/api:2.0");

        let (failing, write) = setup();
        failing.inject(Fault::new(Verb::Patch, API, 500).times(100));
        let result = written(&failing, &write).await;
        let Err(StepError::Write { source, .. }) = result else { panic!("{result:?}") };
        assert_eq!(source.status(), Some(500));
        let attempts = crate::retry::RetryPolicy::default().attempts as usize;
        assert_eq!(failing.count(Verb::Patch, API), attempts, "bounded");
        assert_eq!(running(&failing)[0]["image"], "//image/api:1.0", "nothing changed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_patch_is_not_read_back() {
        let (fake, write) = setup();
        fake.inject(Fault::new(Verb::Patch, API, 400));
        let result = written(&fake, &write).await;
        assert!(matches!(result, Err(StepError::Write { .. })), "{result:?}");
        assert_eq!(fake.count(Verb::Get, API), 0);
        assert_eq!(fake.count(Verb::Patch, API), 1);
    }

    #[test]
    fn a_patch_took_effect_when_applying_it_again_changes_nothing() {
        let live = json!({"spec": {"containers": [{"name": "main", "image": "//image/api:2.0"}]}});
        assert!(took_effect(Some(&live), &image("2.0")));
        assert!(!took_effect(Some(&live), &image("3.0")));
        assert!(!took_effect(None, &image("2.0")), "a resource that is gone");
    }
}
