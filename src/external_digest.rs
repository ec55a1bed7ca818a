//! The digests of external images (Docker Hub, `gcr.io`, any registry
//! outside Control Plane), asked of their registries for the release
//! record and `images.pinExternal` (docs/images.md).
//!
//! Such a registry may not answer at all (a locked-down CI runner, a
//! laptop offline), so the lookups of one call run at once and share one
//! short deadline, [`BOUND`]: what has not answered by then is recorded as
//! unknown. What could not be resolved is reported in ONE warning line
//! naming how many images and which, and an image reported once in a
//! process is not reported again (`ferry status` plans every edge, each
//! of which asks for the same images). Results are kept for the process,
//! so that a second edge does not ask again.
//!
//! Under `--sim` nothing is sent beyond this machine: only registries on
//! a loopback host are asked, unless `FERRY_SIM_EXTERNAL_LOOKUPS=1`
//! ([`sim_session`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::manifest::image;
use crate::registry::{Credentials, ImageRef};

/// How long all the lookups of one call may take together.
pub const BOUND: Duration = Duration::from_secs(2);

/// Lookups at once.
const QUEUE: usize = 64;

/// The variable that lets `--sim` ask registries beyond this machine.
pub const SIM_LOOKUPS_VAR: &str = "FERRY_SIM_EXTERNAL_LOOKUPS";

/// Set by `--sim`: only loopback registries are asked.
static LOOPBACK_ONLY: AtomicBool = AtomicBool::new(false);

/// What this process has learnt: each image's digest, or why it is unknown.
#[derive(Default)]
struct Memory {
    resolved: HashMap<String, Result<String, String>>,
    reported: BTreeSet<String>,
}

static MEMORY: Mutex<Option<Memory>> = Mutex::new(None);

fn memory() -> MutexGuard<'static, Option<Memory>> {
    MEMORY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Called once by `--sim`: registries beyond this machine are not asked
/// (their digests are unknown), unless [`SIM_LOOKUPS_VAR`] is `1`.
pub fn sim_session() {
    let allowed = std::env::var(SIM_LOOKUPS_VAR).is_ok_and(|v| v == "1");
    LOOPBACK_ONLY.store(!allowed, Ordering::Relaxed);
}

/// Whether `registry` (a host, maybe with a port) is this machine.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// The digest each of `images` points at (`None`: unknown), all asked at
/// once within [`BOUND`], with Docker config credentials for their hosts;
/// one warning line names those that stay unknown and were not named
/// before in this process.
pub async fn resolve(images: impl IntoIterator<Item = String>) -> HashMap<String, Option<String>> {
    let mut images: Vec<String> = images.into_iter().collect();
    images.sort();
    images.dedup();
    let known: HashMap<String, Result<String, String>> = {
        let memory = memory();
        let resolved = memory.as_ref().map(|m| &m.resolved);
        images
            .iter()
            .filter_map(|i| resolved.and_then(|r| r.get(i)).map(|d| (i.clone(), d.clone())))
            .collect()
    };
    let credentials = Credentials::anonymous().with_default_docker_config();
    let credentials = &credentials;
    let deadline = tokio::time::Instant::now() + BOUND;
    let loopback_only = LOOPBACK_ONLY.load(Ordering::Relaxed);
    let asked: Vec<(String, Result<String, String>)> =
        stream::iter(images.iter().filter(|i| !known.contains_key(*i)).cloned())
            .map(|text| async move {
                let found = lookup(&text, credentials, deadline, loopback_only).await;
                (text, found)
            })
            .buffer_unordered(QUEUE)
            .collect()
            .await;
    let mut memory = memory();
    let memory = memory.get_or_insert_with(Memory::default);
    memory.resolved.extend(asked.iter().cloned());
    let all: BTreeMap<String, Result<String, String>> = known.into_iter().chain(asked).collect();
    let unknown: Vec<(&String, &String)> = all
        .iter()
        .filter_map(|(image, found)| found.as_ref().err().map(|why| (image, why)))
        .filter(|(image, _)| !memory.reported.contains(*image))
        .collect();
    if !unknown.is_empty() {
        tracing::warn!("{}", summary(&unknown));
        memory.reported.extend(unknown.iter().map(|(image, _)| (*image).clone()));
    }
    all.into_iter().map(|(image, found)| (image, found.ok())).collect()
}

/// One image's digest within `deadline`, or why not; with
/// `loopback_only`, a registry beyond this machine is not asked.
async fn lookup(
    text: &str,
    credentials: &Credentials,
    deadline: tokio::time::Instant,
    loopback_only: bool,
) -> Result<String, String> {
    if let Some(digest) = image::classify(text, None).digest {
        return Ok(digest.to_owned());
    }
    let reference = text.parse::<ImageRef>().map_err(|error| error.to_string())?;
    if loopback_only && !is_loopback(&reference.registry) {
        return Err(format!("not asked under --sim ({SIM_LOOKUPS_VAR}=1 asks)"));
    }
    let asked = crate::registry::resolve_digest(&reference, credentials);
    match tokio::time::timeout_at(deadline, asked).await {
        Ok(Ok(digest)) => Ok(digest.to_string()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {}s", BOUND.as_secs())),
    }
}

/// `the digests of 3 external images are recorded as unknown: A (why); B (why); C (why)`.
fn summary(unknown: &[(&String, &String)]) -> String {
    let listed: Vec<String> = unknown
        .iter()
        .map(|(image, why)| {
            let why = why.lines().next().unwrap_or_default();
            format!("{image} ({why})")
        })
        .collect();
    let count = crate::output::count(unknown.len(), "external image");
    format!("the digests of {count} are recorded as unknown: {}", listed.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_this_machine() {
        for host in ["127.0.0.1:5000", "localhost", "localhost:80", "[::1]:5000", "127.0.0.2"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["docker.io", "ghcr.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[tokio::test]
    async fn under_sim_only_registries_on_this_machine_are_asked() {
        let credentials = Credentials::anonymous();
        let deadline = tokio::time::Instant::now() + BOUND;
        let far = lookup("ghcr.io/owner/tool:v1", &credentials, deadline, true).await;
        assert_eq!(far, Err(format!("not asked under --sim ({SIM_LOOKUPS_VAR}=1 asks)")));
        // A loopback port that refuses: asked, and refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let near = lookup(&format!("127.0.0.1:{port}/app:1"), &credentials, deadline, true).await;
        assert!(near.as_ref().is_err_and(|why| !why.starts_with("not asked")), "{near:?}");
        let pinned = format!("ghcr.io/owner/tool@sha256:{}", "a".repeat(64));
        let known = lookup(&pinned, &credentials, deadline, true).await;
        assert_eq!(known, Ok(format!("sha256:{}", "a".repeat(64))), "a pinned digest needs no one");
    }

    #[test]
    fn the_summary_names_how_many_and_which_in_one_line() {
        let (a, b) = ("redis:alpine".to_owned(), "ghcr.io/o/t:1".to_owned());
        let (slow, refused) = ("no answer within 2s".to_owned(), "refused\nmore".to_owned());
        let line = summary(&[(&a, &slow), (&b, &refused)]);
        assert_eq!(
            line,
            "the digests of 2 external images are recorded as unknown: redis:alpine (no answer within 2s); ghcr.io/o/t:1 (refused)"
        );
        assert!(!line.contains('\n'));
    }
}
