//! Per-location deployments of a workload and whether they are ready
//! (reference §5.3–5.4), computed on demand from the sim's clock.
//!
//! A version written at time T reaches a location at T + that location's
//! rollout delay. It is ready there unless an image is missing from its
//! registry, another org's image has no matching docker pull secret on the
//! GVC, the location is suspended, or the workload carries the tag
//! [`FAIL_TAG`]`: fail`.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::clock::rfc3339;
use super::config::ExternalRegistry;
use super::images::{ImageRef, parse_ref, resolve};
use super::state::{Item, ItemKey, Rollout, State};

/// A workload tag that forces locations to report not ready: `fail` in
/// every location, `fail-in:LOC[,LOC…]` in those named (a cron workload
/// that one location never reports ready, say).
pub const FAIL_TAG: &str = "ferry-sim/readiness";

/// Whether the [`FAIL_TAG`] value `tag` fails `location`.
fn forced_failure(tag: &str, location: &str) -> bool {
    match tag.strip_prefix("fail-in:") {
        Some(locations) => locations.split(',').any(|l| l.trim() == location),
        None => tag == "fail",
    }
}

/// What deployments are computed against.
pub(crate) struct World<'a> {
    pub state: &'a State,
    /// Org → the `127.0.0.1:PORT` its registry listens on.
    pub registry_hosts: &'a BTreeMap<String, String>,
    /// External host → the registry that stands in for it.
    pub external_registries: &'a BTreeMap<String, ExternalRegistry>,
    /// Token → the org it belongs to.
    pub token_orgs: &'a BTreeMap<String, String>,
    pub now_ms: u64,
    /// A rollout's delay, by workload name and location.
    pub delay_ms: &'a dyn Fn(&str, &str) -> u64,
}

impl World<'_> {
    fn gvc(&self, workload: &Item) -> Option<&Item> {
        let gvc = workload.gvc.as_deref()?;
        self.state.item(&ItemKey::new(&workload.org, None, "gvc", gvc))
    }

    /// The GVC's location names, in `locationLinks` order (sorted).
    pub fn locations(&self, workload: &Item) -> Vec<String> {
        let links = self
            .gvc(workload)
            .and_then(Item::spec)
            .and_then(|s| s.get("staticPlacement"))
            .and_then(|p| p.get("locationLinks"))
            .and_then(Value::as_array);
        links
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|l| l.rsplit('/').next())
            .map(str::to_owned)
            .collect()
    }

    /// One deployment per GVC location.
    pub fn deployments(&self, workload: &Item) -> Vec<Value> {
        self.locations(workload).iter().map(|l| self.deployment(workload, l)).collect()
    }

    pub fn deployment(&self, workload: &Item, location: &str) -> Value {
        let self_link = format!("{}/deployment/{location}", workload.key().path());
        let delay = (self.delay_ms)(&workload.name, location);
        let processed =
            workload.rollouts.iter().rev().find(|r| r.at_ms.saturating_add(delay) <= self.now_ms);
        let deploying = processed.is_none_or(|r| r.version < workload.version);
        let mut status = match processed {
            None => json!({
                "lastProcessedVersion": 0,
                "expectedDeploymentVersion": workload.version,
                "internal": {"syncFailed": false},
                "ready": false,
                "deploying": true,
                "message": format!("deploying version {}", workload.version),
                "versions": [],
            }),
            Some(rollout) => self.processed_status(workload, rollout, location),
        };
        status["deploying"] = Value::Bool(deploying);
        status["endpoint"] = json!(format!(
            "https://{}-{}.{location}.sim.cpln.local",
            workload.name,
            workload.gvc.as_deref().unwrap_or("")
        ));
        if workload.spec().and_then(|s| s.get("type")).and_then(Value::as_str) == Some("cron") {
            status["jobExecutions"] = json!([]);
        }
        json!({
            "name": location,
            "kind": "deployment",
            "lastModified": rfc3339(processed.map_or(workload.modified_ms, |r| r.at_ms.saturating_add(delay))),
            "links": [
                {"rel": "self", "href": self_link},
                {"rel": "workload", "href": workload.key().path()},
                {"rel": "location", "href": format!("/org/{}/location/{location}", workload.org)},
            ],
            "status": status,
        })
    }

    fn processed_status(&self, workload: &Item, rollout: &Rollout, location: &str) -> Value {
        let spec = rollout.body.get("spec").and_then(Value::as_object);
        let mut problems = Vec::new();
        let mut containers = Map::new();
        for container in
            spec.and_then(|s| s.get("containers")).and_then(Value::as_array).into_iter().flatten()
        {
            let name = container.get("name").and_then(Value::as_str).unwrap_or("main");
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            let problem = self.image_problem(workload, image).err();
            let replicas = if problem.is_some() { 0 } else { scale(spec, location) };
            containers.insert(
                name.to_owned(),
                json!({
                    "name": name, "image": image, "ready": problem.is_none(),
                    "message": problem.clone().unwrap_or_default(),
                    "resources": {"replicas": scale(spec, location), "replicasReady": replicas},
                    "restarts": {"count": 0, "exitCode": 0, "reason": ""},
                }),
            );
            problems.extend(problem.map(|p| format!("container '{name}': {p}")));
        }
        let tag = rollout.body.get("tags").and_then(|t| t.get(FAIL_TAG)).and_then(Value::as_str);
        let forced = tag.is_some_and(|tag| forced_failure(tag, location));
        if forced {
            problems.push(format!("readiness failure forced by tag {FAIL_TAG}=fail"));
        }
        let version_ready = problems.is_empty();
        let suspended = suspended(spec, location);
        let message = match (suspended, problems.first()) {
            (true, _) => format!("workload is suspended in {location}"),
            (false, Some(problem)) => problem.clone(),
            (false, None) => String::new(),
        };
        let gvc_version = self.gvc(workload).map_or(0, |g| g.version);
        json!({
            "lastProcessedVersion": rollout.version,
            "expectedDeploymentVersion": rollout.version,
            "internal": {"syncFailed": false},
            "ready": version_ready && !suspended,
            "message": message,
            "versions": [{
                "name": format!("{}-v{}", workload.name, rollout.version),
                "created": rfc3339(rollout.at_ms),
                "workload": rollout.version,
                "gvc": gvc_version,
                "ready": version_ready && !suspended,
                "message": problems.join("; "),
                "containers": containers,
            }],
        })
    }

    /// `Ok` when the image can be pulled for this workload, else why not.
    fn image_problem(&self, workload: &Item, image: &str) -> Result<(), String> {
        let (org, repo, reference, host) =
            match parse_ref(image, &workload.org, self.registry_hosts) {
                ImageRef::Sim { org, repo, reference, host } => (org, repo, reference, host),
                ImageRef::External { host, repo, reference } => {
                    return self.external_image_problem(workload, image, &host, &repo, &reference);
                }
            };
        let Some(index) = self.state.registries.get(&org) else {
            return Err(format!("image {image}: registry of org '{org}' does not exist"));
        };
        if org != workload.org {
            self.pull_secret(workload, &org, host.as_deref())
                .map_err(|why| format!("image {image}: cannot pull from org '{org}': {why}"))?;
        }
        match resolve(index, &repo, &reference) {
            Some(_) => Ok(()),
            None => Err(format!(
                "image {image}: {repo}:{reference} not found in the registry of org '{org}'"
            )),
        }
    }

    /// An external image is pullable unless the config maps its host to a
    /// registry: then it must be there and, when that registry is private,
    /// a docker pull secret on the GVC must hold its credentials for the
    /// host.
    fn external_image_problem(
        &self,
        workload: &Item,
        image: &str,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<(), String> {
        let Some(registry) = self.external_registries.get(host) else { return Ok(()) };
        if let Some(password) = &registry.password {
            let held = self
                .docker_pull_secrets(workload)
                .into_iter()
                .any(|auths| auths.iter().any(|(h, p)| h == host && p == password));
            if !held {
                return Err(format!(
                    "image {image}: no docker pull secret on gvc '{}' holds credentials for {host}",
                    workload.gvc.as_deref().unwrap_or("")
                ));
            }
        }
        let index = self.state.external_registries.get(host);
        match index.and_then(|index| resolve(index, repo, reference)) {
            Some(_) => Ok(()),
            None => Err(format!("image {image}: {repo}:{reference} not found at {host}")),
        }
    }

    /// `auths` of each docker secret among the GVC's `pullSecretLinks`.
    fn docker_pull_secrets(&self, workload: &Item) -> Vec<Vec<(String, String)>> {
        let links = self
            .gvc(workload)
            .and_then(Item::spec)
            .and_then(|s| s.get("pullSecretLinks"))
            .and_then(Value::as_array);
        links
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|link| {
                let name = link.rsplit('/').next().unwrap_or(link);
                self.state.item(&ItemKey::new(&workload.org, None, "secret", name))
            })
            .filter(|secret| secret.body.get("type").and_then(Value::as_str) == Some("docker"))
            .map(|secret| docker_auths(secret.body.get("data")))
            .collect()
    }

    /// A docker secret among the GVC's `pullSecretLinks` whose `auths` has
    /// the other org's registry host with a token of that org.
    fn pull_secret(&self, workload: &Item, org: &str, host: Option<&str>) -> Result<(), String> {
        let mut hosts = vec![format!("{org}.registry.cpln.io")];
        hosts.extend(host.map(str::to_owned));
        hosts.extend(self.registry_hosts.get(org).cloned());
        let valid =
            self.docker_pull_secrets(workload).into_iter().flatten().any(|(h, password)| {
                hosts.contains(&h)
                    && self.token_orgs.get(&password).map(String::as_str) == Some(org)
            });
        if valid {
            return Ok(());
        }
        Err(format!(
            "no docker pull secret on gvc '{}' holds a token for {}",
            workload.gvc.as_deref().unwrap_or(""),
            hosts[0]
        ))
    }

    /// The workload's `status` as a GET shows it.
    pub fn workload_status(&self, workload: &Item) -> Value {
        let gvc = workload.gvc.as_deref().unwrap_or("");
        let deployments = self.deployments(workload);
        let ready = deployments.iter().filter(|d| d["status"]["ready"] == true).count();
        let suspended = deployments.iter().filter(|d| {
            d["status"]["message"].as_str().is_some_and(|m| m.starts_with("workload is suspended"))
        });
        let suspended_status = match (suspended.count(), deployments.len()) {
            (0, _) => "notSuspended",
            (s, n) if s == n => "suspended",
            _ => "partiallySuspended",
        };
        json!({
            "parentId": self.gvc(workload).map(|g| g.id.clone()),
            "canonicalEndpoint": format!("https://{}-{gvc}.sim.cpln.local", workload.name),
            "endpoint": format!("https://{}-{gvc}.sim.cpln.local", workload.name),
            "internalName": format!("{}.{gvc}.cpln.local", workload.name),
            "currentReplicaCount": ready,
            "suspendedStatus": suspended_status,
        })
    }
}

/// `auths` of a docker secret as (host, password) pairs; the data may be
/// a JSON string (the documented form) or an object.
fn docker_auths(data: Option<&Value>) -> Vec<(String, String)> {
    let parsed = match data {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let Some(auths) = parsed.get("auths").and_then(Value::as_object) else { return Vec::new() };
    auths
        .iter()
        .filter_map(|(host, entry)| {
            let password =
                entry.get("password").and_then(Value::as_str).map(str::to_owned).or_else(|| {
                    let auth = entry.get("auth").and_then(Value::as_str)?;
                    let decoded = base64::engine::general_purpose::STANDARD.decode(auth).ok()?;
                    let text = String::from_utf8(decoded).ok()?;
                    text.split_once(':').map(|(_, p)| p.to_owned())
                })?;
            Some((host.clone(), password))
        })
        .collect()
}

/// The options that apply in a location: its `localOptions` entry over
/// `defaultOptions`.
fn options<'a>(spec: Option<&'a Map<String, Value>>, location: &str) -> [Option<&'a Value>; 2] {
    let local =
        spec.and_then(|s| s.get("localOptions")).and_then(Value::as_array).and_then(|all| {
            all.iter().find(|o| {
                o.get("location").and_then(Value::as_str).and_then(|l| l.rsplit('/').next())
                    == Some(location)
            })
        });
    [local, spec.and_then(|s| s.get("defaultOptions"))]
}

/// Suspended in a location: `suspend: true`, or `minScale == maxScale == 0`.
fn suspended(spec: Option<&Map<String, Value>>, location: &str) -> bool {
    options(spec, location).into_iter().flatten().any(|o| {
        let scale = |k: &str| o.get("autoscaling").and_then(|a| a.get(k)).and_then(Value::as_u64);
        o.get("suspend") == Some(&Value::Bool(true))
            || (scale("minScale") == Some(0) && scale("maxScale") == Some(0))
    })
}

fn scale(spec: Option<&Map<String, Value>>, location: &str) -> u64 {
    options(spec, location)
        .into_iter()
        .flatten()
        .find_map(|o| o.get("autoscaling").and_then(|a| a.get("minScale")).and_then(Value::as_u64))
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_auths_in_both_forms() {
        let text =
            json!(r#"{"auths":{"dev.registry.cpln.io":{"username":"<token>","password":"t1"}}}"#);
        assert_eq!(docker_auths(Some(&text)), vec![("dev.registry.cpln.io".into(), "t1".into())]);
        let auth = base64::engine::general_purpose::STANDARD.encode("<token>:t2");
        let object = json!({"auths": {"h": {"auth": auth}}});
        assert_eq!(docker_auths(Some(&object)), vec![("h".into(), "t2".into())]);
    }

    #[test]
    fn the_readiness_tag_fails_every_location_or_those_it_names() {
        assert!(forced_failure("fail", "a"));
        assert!(forced_failure("fail-in:b, a", "a"));
        assert!(!forced_failure("fail-in:b", "a"));
        assert!(!forced_failure("ok", "a"));
    }

    #[test]
    fn local_options_suspend_a_location() {
        let spec = json!({"localOptions": [{"location": "/org/o/location/b", "autoscaling": {"minScale": 0, "maxScale": 0}}],
                          "defaultOptions": {"suspend": false}});
        let spec = spec.as_object();
        assert!(suspended(spec, "b"));
        assert!(!suspended(spec, "a"));
    }
}
