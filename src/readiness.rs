//! Whether a workload runs its new version everywhere it should, and
//! waiting until it does.
//!
//! [`assess`] is pure: judged from the workload and its per-location
//! deployments, on versions, as `cpln apply --ready` judges them
//! (`readyLatest` in the CLI's dist/src/util/workload.js). A location
//! counts when it is not suspended (`suspend: true`, or `minScale` =
//! `maxScale` = 0, in `defaultOptions` or the location's `localOptions`).
//! It is ready when its deployment is ready without a failed sync, has
//! processed the workload's version (`lastProcessedVersion`), and the
//! version it expects (`expectedDeploymentVersion`) is ready in its
//! `versions`. The images the deployment reports are only a cross-check:
//! one that differs from the workload's is a warning
//! ([`WorkloadReport::warnings`]), since nothing confirms how the platform
//! writes a digest-pinned image there. A cron workload is ready once one
//! location has deployed its version (the CLI: "cron → ready"), since a
//! cron between runs may never report ready everywhere. Unlike `cpln apply
//! --ready`, this is judged per workload and per location, on the
//! workload's own GVC, and a cron's location counts only once it has
//! processed the workload's version.
//!
//! [`wait`] polls through any [`ControlPlane`] (tokio's clock, so that
//! unit tests on the fake run under `tokio::time::pause()`).

use std::collections::HashMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use miette::Diagnostic;
use serde::Serialize;
use serde_json::Value;

use crate::api::{ApiError, ControlPlane, paths};
use crate::config::{Environment, Readiness};
use crate::manifest::Kind;

/// How one location stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocationReport {
    pub location: String,
    pub state: LocationState,
    /// Why it is not ready yet (the platform's message).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The container that blocks, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationState {
    Ready,
    Waiting,
    Suspended,
}

/// How a workload stands, location by location.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkloadReport {
    pub workload: String,
    pub version: u64,
    /// A cron workload: ready once one location has deployed its version.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cron: bool,
    pub locations: Vec<LocationReport>,
    /// What the cross-check of images found in locations that are ready
    /// by version: a container reported running another image than the
    /// workload names. Warnings, never a reason to wait.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl WorkloadReport {
    /// Every location that counts is ready (and deployments exist); for a
    /// cron workload, one location is enough.
    pub fn is_ready(&self) -> bool {
        let none_waiting = !self.locations.is_empty()
            && self.locations.iter().all(|l| l.state != LocationState::Waiting);
        none_waiting
            || (self.cron && self.locations.iter().any(|l| l.state == LocationState::Ready))
    }

    /// The first location still waiting, while the workload is not ready.
    pub fn blocking(&self) -> Option<&LocationReport> {
        if self.is_ready() {
            return None;
        }
        self.locations.iter().find(|l| l.state == LocationState::Waiting)
    }

    /// `2/3 locations ready`, for progress lines.
    pub fn progress(&self) -> String {
        let counted = self.locations.iter().filter(|l| l.state != LocationState::Suspended).count();
        let ready = self.locations.iter().filter(|l| l.state == LocationState::Ready).count();
        let cron = if self.cron { " (a cron workload needs one)" } else { "" };
        format!("{ready}/{counted} locations ready{cron}")
    }
}

/// Judges `workload` (its live body) from its `deployments`.
pub fn assess(workload: &Value, deployments: &[Value]) -> WorkloadReport {
    let name = workload.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let version = workload.get("version").and_then(version_number).unwrap_or(0);
    let spec = workload.get("spec");
    let cron = spec.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("cron");
    let images: Vec<(&str, &str)> = crate::plan::container_images(workload);
    let mut warnings = Vec::new();
    let mut locations: Vec<LocationReport> = deployments
        .iter()
        .map(|deployment| {
            let (report, mismatches) = location(deployment, spec, version, cron, &images);
            if report.state == LocationState::Ready {
                warnings
                    .extend(mismatches.into_iter().map(|m| format!("{}: {m}", report.location)));
            }
            report
        })
        .collect();
    locations.sort_by(|a, b| a.location.cmp(&b.location));
    warnings.sort();
    if locations.is_empty() {
        locations.push(LocationReport {
            location: "(none)".to_owned(),
            state: LocationState::Waiting,
            message: "no deployments yet".to_owned(),
            container: None,
        });
    }
    WorkloadReport { workload: name, version, cron, locations, warnings }
}

/// How one location stands, and the containers whose reported image
/// differs from the workload's (the cross-check, `container X runs …`).
fn location(
    deployment: &Value,
    spec: Option<&Value>,
    version: u64,
    cron: bool,
    images: &[(&str, &str)],
) -> (LocationReport, Vec<String>) {
    let location = deployment.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    if suspended(spec, &location) {
        let report = LocationReport {
            location,
            state: LocationState::Suspended,
            message: String::new(),
            container: None,
        };
        return (report, Vec::new());
    }
    let status = deployment.get("status").unwrap_or(&Value::Null);
    let number = |key: &str| status.get(key).and_then(version_number).unwrap_or(0);
    let sync_failed =
        status.pointer("/internal/syncFailed").and_then(Value::as_bool).unwrap_or(false);
    let deployment_ready =
        status.get("ready").and_then(Value::as_bool).unwrap_or(false) && !sync_failed;
    let processed = number("lastProcessedVersion") >= version;
    let expected = number("expectedDeploymentVersion");
    let current = status.get("versions").and_then(Value::as_array).and_then(|versions| {
        versions.iter().find(|v| v.get("workload").and_then(version_number) == Some(expected))
    });
    let mut message = text(status.get("message"));
    let mut container = None;
    let mut mismatches = Vec::new();
    let ready = if cron {
        deployment_ready && processed
    } else {
        let version_ready =
            current.and_then(|v| v.get("ready")).and_then(Value::as_bool).unwrap_or(false);
        if message.is_empty() {
            message = text(current.and_then(|v| v.get("message")));
        }
        for (name, image) in images {
            let running = current.and_then(|v| v.get("containers")).and_then(|c| c.get(*name));
            let runs = running.and_then(|c| c.get("image")).and_then(Value::as_str);
            let container_ready =
                running.and_then(|c| c.get("ready")).and_then(Value::as_bool).unwrap_or(false);
            if runs.is_some_and(|runs| runs != *image) {
                mismatches.push(format!(
                    "container {name} runs {} while the workload names {image}",
                    runs.unwrap_or_default()
                ));
            }
            if !container_ready && container.is_none() && !version_ready {
                container = Some((*name).to_owned());
                let why = text(running.and_then(|c| c.get("message")));
                if !why.is_empty() {
                    message = why;
                }
            }
        }
        deployment_ready && processed && version_ready
    };
    if !ready && message.is_empty() {
        message = if processed {
            "not ready yet".to_owned()
        } else {
            format!("deploying version {version}")
        };
    }
    let report = LocationReport {
        location,
        state: if ready { LocationState::Ready } else { LocationState::Waiting },
        message: if ready { String::new() } else { message },
        container: if ready { None } else { container },
    };
    (report, mismatches)
}

/// A version number as the API writes it: an integer, or a whole number
/// written as a float (the published types declare these fields `number`,
/// types-go `pkg/deployment/models.go` has them `float32`).
fn version_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let float = value.as_f64()?;
        let whole = float.is_finite() && float >= 0.0 && float.fract() == 0.0;
        // A whole, non-negative float converts exactly up to 2^53.
        whole.then_some(float as u64)
    })
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Suspended by `defaultOptions` or the location's `localOptions`.
fn suspended(spec: Option<&Value>, location: &str) -> bool {
    let is_suspended = |options: &Value| {
        let scale =
            |key: &str| options.pointer(&format!("/autoscaling/{key}")).and_then(Value::as_u64);
        options.get("suspend") == Some(&Value::Bool(true))
            || (scale("minScale") == Some(0) && scale("maxScale") == Some(0))
    };
    let Some(spec) = spec else { return false };
    let local =
        spec.get("localOptions").and_then(Value::as_array).into_iter().flatten().find(|o| {
            o.get("location")
                .and_then(Value::as_str)
                .is_some_and(|l| l.rsplit('/').next() == Some(location))
        });
    match local {
        Some(options) => is_suspended(options),
        None => spec.get("defaultOptions").is_some_and(is_suspended),
    }
}

/// What a wait reports as it goes.
pub enum Progress<'a> {
    /// A check found the workload not ready.
    Waiting(&'a WorkloadReport),
    /// The workload was ready for the checks required.
    Ready(&'a WorkloadReport),
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum WaitError {
    #[error("workload/{workload} was not ready after {timeout:?}: location {location}{}: {message}", container.as_deref().map_or(String::new(), |c| format!(", container {c}")))]
    #[diagnostic(
        code(ferry::apply::not_ready),
        help(
            "look at the workload's deployments in that location; raise `readiness.timeout` if it only needs longer"
        )
    )]
    NotReady {
        workload: String,
        location: String,
        container: Option<String>,
        message: String,
        timeout: Duration,
    },

    #[error("reading the readiness of workload/{workload} failed")]
    #[diagnostic(code(ferry::apply::readiness))]
    Read {
        workload: String,
        #[source]
        #[diagnostic_source]
        source: ApiError,
    },

    #[error("{path} was still there {timeout:?} after it was deleted")]
    #[diagnostic(
        code(ferry::apply::not_gone),
        help(
            "Control Plane deletes some kinds asynchronously; look at what still holds it (a GVC's workloads, a volume set's workload), then run again"
        )
    )]
    NotGone { path: String, timeout: Duration },

    #[error("reading whether {path} is gone failed")]
    #[diagnostic(code(ferry::apply::gone))]
    ReadGone {
        path: String,
        #[source]
        #[diagnostic_source]
        source: ApiError,
    },
}

/// How often a deleted resource is looked at until it is gone.
const GONE_POLL: Duration = Duration::from_millis(500);

/// Waits until the resource at `path`, just deleted, is gone (deletes are
/// asynchronous for some kinds); [`WaitError::NotGone`] after `timeout`.
pub async fn wait_gone<A: ControlPlane>(
    api: &A,
    path: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let live = api
            .get_opt(path)
            .await
            .map_err(|source| WaitError::ReadGone { path: path.to_owned(), source })?;
        if live.is_none() {
            return Ok(());
        }
        if tokio::time::Instant::now() + GONE_POLL > deadline {
            return Err(WaitError::NotGone { path: path.to_owned(), timeout });
        }
        tokio::time::sleep(GONE_POLL).await;
    }
}

/// The first look again at a workload not yet ready; doubled after each
/// check that still finds it not ready, up to `readiness.interval`.
const FIRST_RECHECK: Duration = Duration::from_millis(250);

/// Waits until every one of `workloads` is ready `consecutive_checks` times
/// in a row, `interval` apart, for at most `timeout`. A workload not yet
/// ready is looked at again sooner (from [`FIRST_RECHECK`], doubling up to
/// `interval`), so that its readiness is noticed when it comes rather than
/// up to an interval later; the streak that proves it stays ready is
/// always checked `interval` apart.
pub async fn wait<A: ControlPlane>(
    api: &A,
    env: &Environment,
    workloads: &[String],
    readiness: Readiness,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<(), WaitError> {
    if workloads.is_empty() {
        return Ok(());
    }
    let started = tokio::time::Instant::now();
    let deadline = started + readiness.timeout;
    let enough = |count: u32| count >= readiness.consecutive_checks;
    let mut streak: HashMap<&str, u32> = workloads.iter().map(|w| (w.as_str(), 0)).collect();
    // When each workload is looked at next, and its wait after a not-ready check.
    let mut due: HashMap<&str, tokio::time::Instant> =
        workloads.iter().map(|w| (w.as_str(), started)).collect();
    let mut recheck: HashMap<&str, Duration> =
        workloads.iter().map(|w| (w.as_str(), FIRST_RECHECK.min(readiness.interval))).collect();
    let mut last: HashMap<&str, WorkloadReport> = HashMap::new();
    // Each workload as its first check read it (see `check`).
    let mut bodies: HashMap<&str, Value> = HashMap::new();
    loop {
        let now = tokio::time::Instant::now();
        let pending: Vec<&str> = workloads
            .iter()
            .map(String::as_str)
            .filter(|w| !enough(streak[w]) && due[w] <= now)
            .collect();
        let bodies_now = &bodies;
        let reports: Vec<(&str, Result<Checked, ApiError>)> = stream::iter(pending)
            .map(|workload| async move {
                (workload, check(api, env, workload, bodies_now.get(workload)).await)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for (workload, report) in reports {
            let (body, report) = report
                .map_err(|source| WaitError::Read { workload: workload.to_owned(), source })?;
            bodies.insert(workload, body);
            let count = streak.entry(workload).or_insert(0);
            let wait = recheck.entry(workload).or_insert(readiness.interval);
            if report.is_ready() {
                *count += 1;
                due.insert(workload, now + readiness.interval);
                if enough(*count) {
                    if !report.warnings.is_empty() {
                        tracing::warn!(
                            "workload/{workload} is ready by version, but its deployments report other images: {}",
                            report.warnings.join("; ")
                        );
                    }
                    progress(Progress::Ready(&report));
                }
            } else {
                *count = 0;
                due.insert(workload, now + *wait);
                *wait = (*wait * 2).min(readiness.interval);
                progress(Progress::Waiting(&report));
            }
            last.insert(workload, report);
        }
        let next = due.iter().filter(|(w, _)| !enough(streak[*w])).map(|(_, at)| *at).min();
        let Some(next) = next else { return Ok(()) };
        if next > deadline {
            let (workload, report) = last
                .iter()
                .find(|(w, _)| streak.get(*w).is_some_and(|c| !enough(*c)))
                .map(|(w, r)| ((*w).to_owned(), r.clone()))
                .unwrap_or_default();
            let blocking = report.blocking().cloned();
            return Err(WaitError::NotReady {
                workload,
                location: blocking
                    .as_ref()
                    .map_or_else(|| "(all)".to_owned(), |b| b.location.clone()),
                container: blocking.as_ref().and_then(|b| b.container.clone()),
                message: blocking
                    .map_or_else(|| "ready, but not for long enough".to_owned(), |b| b.message),
                timeout: readiness.timeout,
            });
        }
        tokio::time::sleep_until(next).await;
    }
}

/// What a check read of a workload, and how it judged it.
type Checked = (Value, WorkloadReport);

/// One check of one workload: its deployments, judged against the
/// workload as the wait's first check read it (`read`), which it reads
/// with them at once (one round, so that a retried read, such as a 429's
/// `Retry-After`, delays the check once, not twice). What the judgement
/// takes from the workload (its version, containers and options) changes
/// only when someone writes it, so the later checks of a wait read the
/// deployments alone: one request each, half the chances of meeting a
/// refusal that holds the check up (docs/performance.md, "Promoting under
/// injected faults"). Should someone else write the workload during the
/// wait, its locations do not run the images read first, and the wait
/// ends in an error rather than in taking their version for this one.
/// Read in either order the judgement errs on the safe side: a deployment
/// counts only when it has processed the version of the workload read.
async fn check<A: ControlPlane>(
    api: &A,
    env: &Environment,
    workload: &str,
    read: Option<&Value>,
) -> Result<Checked, ApiError> {
    let (item, deployments) = (
        paths::item(&env.org, &env.gvc, Kind::Workload, workload),
        paths::deployments(&env.org, &env.gvc, workload),
    );
    let body = async {
        match read {
            Some(body) => Ok(body.clone()),
            None => api.get(&item).await,
        }
    };
    let (body, deployments) = futures::try_join!(body, api.list(&deployments))?;
    let report = assess(&body, &deployments);
    Ok((body, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workload(version: u64, spec: Value) -> Value {
        json!({"name": "api", "version": version, "spec": spec})
    }

    fn deployment(location: &str, processed: u64, ready: bool, image: &str) -> Value {
        json!({"name": location, "status": {
            "lastProcessedVersion": processed, "expectedDeploymentVersion": processed, "ready": ready,
            "internal": {"syncFailed": false}, "message": "",
            "versions": [{"workload": processed, "ready": ready, "message": "",
                          "containers": {"main": {"image": image, "ready": ready, "message": if ready { "" } else { "image not found" }}}}]}})
    }

    const SPEC: &str =
        r#"{"type": "standard", "containers": [{"name": "main", "image": "/org/o/image/api:2"}]}"#;

    fn spec() -> Value {
        serde_json::from_str(SPEC).unwrap_or_default()
    }

    #[test]
    fn ready_when_every_location_runs_the_new_version() {
        let w = workload(4, spec());
        let report = assess(
            &w,
            &[
                deployment("a", 4, true, "/org/o/image/api:2"),
                deployment("b", 4, true, "/org/o/image/api:2"),
            ],
        );
        assert!(report.is_ready());
        assert_eq!(report.progress(), "2/2 locations ready");
    }

    #[test]
    fn an_old_or_failing_version_is_not_ready() {
        let w = workload(4, spec());
        let stale = assess(&w, &[deployment("a", 3, true, "/org/o/image/api:1")]);
        assert!(!stale.is_ready());
        assert_eq!(stale.blocking().map(|l| l.message.as_str()), Some("deploying version 4"));
        assert!(stale.warnings.is_empty(), "no cross-check before the version is ready");
        let failing = assess(&w, &[deployment("a", 4, false, "/org/o/image/api:2")]);
        let blocking = failing.blocking().cloned();
        assert_eq!(blocking.as_ref().and_then(|l| l.container.as_deref()), Some("main"));
        assert_eq!(blocking.map(|l| l.message), Some("image not found".to_owned()));
        assert!(!assess(&w, &[]).is_ready(), "no deployments is not ready");
    }

    #[test]
    fn readiness_decides_on_versions_and_another_image_string_only_warns() {
        let w = workload(4, spec());
        // The platform may write a pinned image in another form.
        let pinned = "/org/o/image/api@sha256:0123";
        let report = assess(
            &w,
            &[deployment("a", 4, true, pinned), deployment("b", 4, true, "/org/o/image/api:2")],
        );
        assert!(report.is_ready());
        assert_eq!(
            report.warnings,
            [format!(
                "a: container main runs {pinned} while the workload names /org/o/image/api:2"
            )]
        );
        // The version expected not ready is not ready, whatever the images.
        let mut d = deployment("a", 4, true, "/org/o/image/api:2");
        d["status"]["versions"][0]["ready"] = json!(false);
        assert!(!assess(&w, &[d]).is_ready());
    }

    #[test]
    fn versions_written_as_floats_are_read_as_the_numbers_they_are() {
        let w = json!({"name": "api", "version": 4.0, "spec": spec()});
        let mut d = deployment("a", 4, true, "/org/o/image/api:2");
        d["status"]["lastProcessedVersion"] = json!(4.0);
        d["status"]["expectedDeploymentVersion"] = json!(4.0);
        d["status"]["versions"][0]["workload"] = json!(4.0);
        assert!(assess(&w, &[d.clone()]).is_ready());
        d["status"]["lastProcessedVersion"] = json!(3.5);
        assert!(!assess(&w, &[d]).is_ready());
    }

    #[test]
    fn suspended_locations_do_not_count() {
        let mut s = spec();
        s["localOptions"] = json!([{"location": "/org/o/location/b", "autoscaling": {"minScale": 0, "maxScale": 0}}]);
        let report = assess(
            &workload(4, s),
            &[deployment("a", 4, true, "/org/o/image/api:2"), deployment("b", 4, false, "x")],
        );
        assert!(report.is_ready());
        assert_eq!(report.locations[1].state, LocationState::Suspended);
        assert_eq!(report.progress(), "1/1 locations ready");
    }

    #[test]
    fn a_cron_workload_is_ready_once_one_location_has_deployed_its_version() {
        let mut s = spec();
        s["type"] = json!("cron");
        let between_runs = |location: &str, processed: u64, ready: bool| {
            let mut d = deployment(location, processed, ready, "x");
            d["status"]["versions"] = json!([]);
            d
        };
        let w = workload(4, s);
        let report = assess(&w, &[between_runs("a", 4, true), between_runs("b", 4, false)]);
        assert!(report.is_ready(), "{report:?}");
        assert!(report.blocking().is_none());
        assert_eq!(report.progress(), "1/2 locations ready (a cron workload needs one)");
        let old = assess(&w, &[between_runs("a", 3, true), between_runs("b", 4, false)]);
        assert!(!old.is_ready(), "ready on the old version only is not ready");
    }

    mod waiting {
        use std::sync::Mutex;
        use std::time::Duration;

        use serde_json::json;
        use tokio::time::Instant;

        use super::super::*;
        use crate::api::fake::{Fake, Fault, Rollout, Verb, environment};

        const SETTINGS: Readiness = Readiness {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
            consecutive_checks: 3,
        };

        async fn deployed(fake: &Fake, name: &str) {
            let body = json!({"kind": "workload", "name": name, "spec": {"type": "standard",
                "containers": [{"name": "main", "image": "/org/acme/image/api:2"}]}});
            let written = fake.put("/org/acme/gvc/app/workload", &body).await;
            assert!(written.is_ok(), "{written:?}");
        }

        /// A fake where workload `api` is written and rolls out in 1 s.
        async fn api_ready_a_second_after_it_is_written() -> Fake {
            let fake = Fake::new();
            fake.set_rollout("api", Rollout::After(Duration::from_secs(1)));
            deployed(&fake, "api").await;
            fake
        }

        /// Waits for `names`; the outcome, what was reported, how long it took.
        async fn wait_for(
            fake: &Fake,
            names: &[&str],
            settings: Readiness,
        ) -> (Result<(), WaitError>, Vec<String>, Duration) {
            let seen = Mutex::new(Vec::new());
            let record = |progress: Progress<'_>| {
                let line = match progress {
                    Progress::Waiting(r) => format!("waiting {}: {}", r.workload, r.progress()),
                    Progress::Ready(r) => format!("ready {} {:?}", r.workload, r.warnings),
                };
                seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
            };
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let started = Instant::now();
            let result = wait(fake, &environment(), &names, settings, &record).await;
            let seen = seen.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            (result, seen, started.elapsed())
        }

        #[tokio::test(start_paused = true)]
        async fn waits_for_every_location_and_enough_checks() {
            let fake = Fake::new();
            fake.set_locations(&["aws-eu-central-1", "aws-us-west-2"]);
            fake.set_rollout("api", Rollout::After(Duration::from_secs(90)));
            deployed(&fake, "api").await;
            deployed(&fake, "web").await;
            let (result, seen, took) = wait_for(&fake, &["api", "web"], SETTINGS).await;
            assert!(result.is_ok(), "{result:?}");
            // Ready at 90 s; looked at after 0.25, 0.5, 1, 2 s, then every
            // 5 s: seen ready at 92.75, 97.75 and 102.75 s.
            assert_eq!(took, Duration::from_millis(102_750));
            assert_eq!(seen.iter().filter(|l| l.starts_with("ready")).count(), 2, "{seen:?}");
            assert!(seen.contains(&"waiting api: 0/2 locations ready".to_owned()), "{seen:?}");
            assert!(!seen.iter().any(|l| l.starts_with("waiting web")), "{seen:?}");
        }

        #[tokio::test(start_paused = true)]
        async fn a_check_reads_the_workload_and_its_deployments_at_once() {
            let fake = Fake::new();
            deployed(&fake, "api").await;
            // Every call takes a second: a check that read the workload and
            // then its deployments took two, so three checks 5 s apart
            // ended at 12 s; read together, at 11 s.
            fake.set_latency(Duration::from_secs(1));
            let (result, _, took) = wait_for(&fake, &["api"], SETTINGS).await;
            assert!(result.is_ok(), "{result:?}");
            assert_eq!(took, Duration::from_secs(11));
        }

        #[tokio::test(start_paused = true)]
        async fn after_its_first_check_a_wait_reads_only_the_deployments() {
            let fake = api_ready_a_second_after_it_is_written().await;
            let (result, _, _) = wait_for(&fake, &["api"], SETTINGS).await;
            assert!(result.is_ok(), "{result:?}");
            let path = "/org/acme/gvc/app/workload/api";
            // Not ready at 0, 0.25 and 0.75 s, then ready three times.
            assert_eq!(fake.count(Verb::List, &format!("{path}/deployment")), 6);
            assert_eq!(fake.count(Verb::Get, path), 1, "{:?}", fake.calls());
        }

        #[tokio::test(start_paused = true)]
        async fn someone_elses_write_during_the_wait_is_named_in_a_warning() {
            let fake = api_ready_a_second_after_it_is_written().await;
            let settings = Readiness { timeout: Duration::from_secs(30), ..SETTINGS };
            let waiting = wait_for(&fake, &["api"], settings);
            let other = async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let body = json!({"kind": "workload", "name": "api", "spec": {"type": "standard",
                    "containers": [{"name": "main", "image": "/org/acme/image/api:3"}]}});
                fake.put("/org/acme/gvc/app/workload", &body).await
            };
            let ((result, seen, _), written) = tokio::join!(waiting, other);
            assert!(written.is_ok(), "{written:?}");
            // Ready by version (a newer one), and the images differ: a
            // warning, not a wait that never ends.
            assert!(result.is_ok(), "{result:?}");
            assert!(
                seen.iter().any(|l| l.contains(
                    "container main runs /org/acme/image/api:3 while the workload names /org/acme/image/api:2"
                )),
                "{seen:?}"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn readiness_is_noticed_soon_and_then_proved_an_interval_apart() {
            let fake = api_ready_a_second_after_it_is_written().await;
            let (result, _, took) = wait_for(&fake, &["api"], SETTINGS).await;
            assert!(result.is_ok(), "{result:?}");
            // Looked at after 0, 0.25 and 0.75 s (not ready), ready at
            // 1.75 s, then 6.75 and 11.75 s: not 5, 10 and 15 s.
            assert_eq!(took, Duration::from_millis(11_750));
        }

        #[tokio::test(start_paused = true)]
        async fn a_workload_never_ready_fails_naming_where_and_why() {
            let fake = Fake::new();
            fake.set_rollout("api", Rollout::Never);
            deployed(&fake, "api").await;
            let settings = Readiness { timeout: Duration::from_secs(60), ..SETTINGS };
            let (result, _, took) = wait_for(&fake, &["api"], settings).await;
            match result {
                Err(WaitError::NotReady { workload, location, container, message, .. }) => {
                    assert_eq!(
                        (workload.as_str(), location.as_str(), container.as_deref()),
                        ("api", "aws-us-west-2", Some("main"))
                    );
                    assert_eq!(message, "starting");
                }
                other => panic!("{other:?}"),
            }
            assert!(took >= Duration::from_secs(55) && took <= Duration::from_secs(60), "{took:?}");
        }

        #[tokio::test(start_paused = true)]
        async fn ready_but_not_for_long_enough_is_not_ready() {
            let fake = Fake::new();
            fake.set_rollout("api", Rollout::After(Duration::from_secs(52)));
            deployed(&fake, "api").await;
            let settings = Readiness { timeout: Duration::from_secs(60), ..SETTINGS };
            let (result, _, _) = wait_for(&fake, &["api"], settings).await;
            assert!(
                matches!(&result, Err(WaitError::NotReady { location, .. }) if location == "(all)"),
                "{result:?}"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_deleted_resource_that_does_not_go_is_an_error() {
            let fake = Fake::new();
            let path = "/org/acme/gvc/app/volumeset/data";
            fake.seed(path, json!({"name": "data"}));
            fake.set_delete_linger(Duration::from_secs(20));
            assert_eq!(fake.delete(path).await.ok(), Some(true));
            let started = Instant::now();
            let gone = wait_gone(&fake, path, Duration::from_secs(30)).await;
            assert!(gone.is_ok(), "{gone:?}");
            assert_eq!(started.elapsed(), Duration::from_secs(20));
            fake.seed(path, json!({"name": "data"}));
            fake.set_delete_linger(Duration::from_secs(3600));
            assert_eq!(fake.delete(path).await.ok(), Some(true));
            let stuck = wait_gone(&fake, path, Duration::from_secs(30)).await;
            assert!(
                matches!(&stuck, Err(WaitError::NotGone { path: p, .. }) if p == path),
                "{stuck:?}"
            );
            assert_eq!(
                stuck.map_err(|e| e.to_string()).err().as_deref(),
                Some("/org/acme/gvc/app/volumeset/data was still there 30s after it was deleted")
            );
        }

        #[tokio::test(start_paused = true)]
        async fn a_failed_read_names_the_workload() {
            let fake = Fake::new();
            deployed(&fake, "api").await;
            fake.inject(Fault::new(Verb::List, "/workload/api/deployment", 403));
            let (result, _, _) = wait_for(&fake, &["api"], SETTINGS).await;
            match result {
                Err(WaitError::Read { workload, source }) => {
                    assert_eq!((workload.as_str(), source.status()), ("api", Some(403)));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
