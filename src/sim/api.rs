//! The REST API: routing `/org/…` paths onto the store, rendering items
//! with their server-managed fields, lists with paging, queries, secrets'
//! `-reveal`, deployments and image resources.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::auth::Access;
use super::clock::{now_ms, rfc3339};
use super::deploy::World;
use super::error::ApiError;
use super::images;
use super::query::Query;
use super::server::Shared;
use super::state::{Item, ItemKey, State as SimState};
use super::store::{GVC_KINDS, ORG_KINDS, WriteMode};
use crate::normalize::Scope;

type Params = HashMap<String, String>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/discovery", get(discovery)).fallback(dispatch).with_state(shared)
}

/// What `cpln` reads from `/discovery` (fetched without a token).
async fn discovery() -> Response {
    axum::Json(json!({
        "endpoints": {
            "registry": "https://{org}.registry.cpln.io",
            "audit": "https://audit.sim.invalid/audit",
            "logs": "https://logs.sim.invalid",
            "metrics": "https://metrics.sim.invalid",
            "billing-ng": "https://billing.sim.invalid",
        },
        "firebase": {"apiKey": "simulator", "authDomain": "sim.invalid", "projectId": "ferry-sim"},
    }))
    .into_response()
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    QueryParams(params): QueryParams<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.upstreams.is_empty() {
        shared.upstreams.refresh(&shared, std::time::Instant::now()).await;
    }
    let request = Request {
        shared: &shared,
        method: &method,
        path: uri.path(),
        params: &params,
        body: &body,
    };
    let segments: Vec<String> =
        uri.path().trim_matches('/').split('/').map(percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match segments.as_slice() {
        ["org"] => request.orgs(&headers),
        ["org", org, rest @ ..] => match shared.tokens.check_api(&headers, org) {
            Access::Granted => request.org_route(org, rest),
            Access::Unauthenticated => Err(ApiError::unauthorized("a valid token is required")),
            Access::Denied => {
                Err(ApiError::forbidden(format!("the token has no access to org '{org}'")))
            }
        },
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {}", uri.path()),
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// One API request being answered.
struct Request<'a> {
    shared: &'a Shared,
    method: &'a Method,
    path: &'a str,
    params: &'a Params,
    body: &'a Bytes,
}

impl Request<'_> {
    fn orgs(&self, headers: &HeaderMap) -> Result<Response, ApiError> {
        let token = super::auth::bearer(headers);
        let org = token
            .and_then(|t| self.shared.tokens.org_of(t))
            .ok_or_else(|| ApiError::unauthorized("a valid token is required"))?;
        Ok(self.list("org", vec![org_item(org)]))
    }

    fn org_route(&self, org: &str, rest: &[&str]) -> Result<Response, ApiError> {
        let m = self.method;
        let scope = Scope { org, gvc: None };
        if let Some(kind) = self.denied_read(org, rest) {
            return Err(ApiError::forbidden(format!(
                "the token lacks the view permission on {kind} (simulated: queryDenied)"
            )));
        }
        match rest {
            [] if m == Method::GET => Ok(json_response(StatusCode::OK, org_item(org))),
            ["image"] if m == Method::GET => Ok(self.list("image", self.images(org, None))),
            ["image"] if m == Method::POST || m == Method::PUT => {
                Err(ApiError::forbidden("You can create an image only by pushing"))
            }
            ["image", "-query"] if is_query(m) => self.query("image", self.images(org, None)),
            ["image", name @ ..] => self.image(org, &name.join("/")),
            ["location"] if m == Method::GET => {
                Ok(self.list("location", self.shared.locations.list(org)))
            }
            ["location", name] if m == Method::GET => self
                .shared
                .locations
                .get(org, name)
                .map(|l| json_response(StatusCode::OK, l))
                .ok_or_else(|| ApiError::not_found("location", name)),
            [kind] if GVC_KINDS.contains(kind) && m == Method::GET => {
                Ok(self.list(kind, self.rendered(org, None, kind)))
            }
            [kind, "-query"] if is_kind(kind) && is_query(m) => {
                self.query(kind, self.rendered(org, None, kind))
            }
            [kind] if ORG_KINDS.contains(kind) => self.collection(scope, kind),
            ["secret", name, "-reveal"] if m == Method::GET => {
                self.get(&ItemKey::new(org, None, "secret", name), true)
            }
            [kind, name] if ORG_KINDS.contains(kind) => self.item(scope, kind, name),
            ["gvc", gvc, kind] if GVC_KINDS.contains(kind) => {
                self.collection(Scope { org, gvc: Some(gvc) }, kind)
            }
            ["gvc", gvc, kind, name] if GVC_KINDS.contains(kind) => {
                self.item(Scope { org, gvc: Some(gvc) }, kind, name)
            }
            ["gvc", gvc, "workload", name, "deployment", location @ ..]
                if m == Method::GET && location.len() <= 1 =>
            {
                self.deployments(
                    &ItemKey::new(org, Some(gvc), "workload", name),
                    location.first().copied(),
                )
            }
            _ if rest.first().is_some_and(|k| is_kind(k)) || rest.is_empty() => {
                Err(method_not_allowed(m))
            }
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {}", self.path),
            )),
        }
    }

    /// The kind of a list or query the org's tokens are refused
    /// (`queryDenied` in the config), if this is one.
    fn denied_read<'r>(&self, org: &str, rest: &[&'r str]) -> Option<&'r str> {
        let kind = match rest {
            [kind, "-query"] if is_query(self.method) => kind,
            [kind] | ["gvc", _, kind] if *self.method == Method::GET => kind,
            _ => return None,
        };
        let denied = self.shared.query_denied.get(org)?;
        denied.iter().any(|d| d == kind).then_some(*kind)
    }

    fn collection(&self, scope: Scope<'_>, kind: &str) -> Result<Response, ApiError> {
        match *self.method {
            Method::GET => Ok(self.list(kind, self.rendered(scope.org, scope.gvc, kind))),
            Method::PUT => self.write(scope, kind, None, WriteMode::Upsert),
            Method::POST => self.write(scope, kind, None, WriteMode::Create),
            ref other => Err(method_not_allowed(other)),
        }
    }

    fn item(&self, scope: Scope<'_>, kind: &str, name: &str) -> Result<Response, ApiError> {
        let key = ItemKey::new(scope.org, scope.gvc, kind, name);
        match *self.method {
            Method::GET => self.get(&key, false),
            Method::PUT => self.write(scope, kind, Some(name), WriteMode::Replace),
            Method::PATCH => self.write(scope, kind, Some(name), WriteMode::Patch),
            Method::DELETE => {
                let mut state = self.shared.lock();
                state.delete(&key)?;
                self.shared.save(&state)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            ref other => Err(method_not_allowed(other)),
        }
    }

    fn get(&self, key: &ItemKey, reveal: bool) -> Result<Response, ApiError> {
        let state = self.shared.lock();
        let item = state.item(key).ok_or_else(|| ApiError::not_found(&key.kind, &key.name))?;
        let rendered = self.shared.with_world(&state, |world| render(world, item, reveal));
        Ok(json_response(StatusCode::OK, rendered))
    }

    fn write(
        &self,
        scope: Scope<'_>,
        kind: &str,
        name: Option<&str>,
        mode: WriteMode,
    ) -> Result<Response, ApiError> {
        let body: Value = serde_json::from_slice(self.body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(body) = body else {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        };
        self.shared.locations.check_links(scope.org, &body)?;
        let dry_run = self.params.get("dryRun").is_some_and(|v| v == "true");
        let mut state = self.shared.lock();
        let mut draft;
        let target = if dry_run {
            draft = SimState {
                items: state.items.clone(),
                server_fields: state.server_fields.clone(),
                ..SimState::default()
            };
            &mut draft
        } else {
            &mut *state
        };
        let written = target.write(scope, kind, name, &body, mode, now_ms())?;
        if written.changed && !dry_run {
            self.shared.save(&state)?;
        }
        let rendered = self.shared.with_world(&state, |world| render(world, &written.item, false));
        let mut response = json_response(
            if written.created { StatusCode::CREATED } else { StatusCode::OK },
            rendered,
        );
        if written.created
            && let Ok(location) = HeaderValue::from_str(&written.item.key().path())
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    fn rendered(&self, org: &str, gvc: Option<&str>, kind: &str) -> Vec<Value> {
        let state = self.shared.lock();
        let items = state.list(org, gvc, kind);
        self.shared
            .with_world(&state, |world| items.iter().map(|i| render(world, i, false)).collect())
    }

    /// A `kind: list` page of `items`, with `rel: next` while more remain.
    fn list(&self, kind: &str, items: Vec<Value>) -> Response {
        let (page, links) = self.page(items, "");
        json_response(
            StatusCode::OK,
            json!({"kind": "list", "itemKind": kind, "items": page, "links": links}),
        )
    }

    /// The page of `items` that `?next=N` asks for (the first without it),
    /// and its links: `self`, and `next` (`?next=M` then `carried`) while
    /// more remain.
    fn page(&self, items: Vec<Value>, carried: &str) -> (Vec<Value>, Vec<Value>) {
        let size = self.shared.page_size();
        let start = self.params.get("next").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
        let total = items.len();
        let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
        let mut links = vec![json!({"rel": "self", "href": self.path})];
        if start.saturating_add(size) < total {
            let href = format!("{}?next={}{carried}", self.path, start + size);
            links.push(json!({"rel": "next", "href": href}));
        }
        (page, links)
    }

    /// A query's first page (POST, `kind: queryresult`), or a later one:
    /// a GET on the `rel: next` link, which carries the query (the API's
    /// later pages are GETs that do not send the query again; libs-go
    /// `QueryResponse.NextPage`) and answers in the list envelope.
    fn query(&self, kind: &str, items: Vec<Value>) -> Result<Response, ApiError> {
        let invalid =
            |e: &dyn std::fmt::Display| ApiError::bad_request(format!("invalid query: {e}"));
        let body: Value = match self.params.get("query") {
            Some(carried) => {
                let bytes = URL_SAFE_NO_PAD.decode(carried).map_err(|e| invalid(&e))?;
                serde_json::from_slice(&bytes).map_err(|e| invalid(&e))?
            }
            None if self.body.is_empty() => json!({}),
            None => serde_json::from_slice(self.body).map_err(|e| invalid(&e))?,
        };
        let query = Query::parse(&body, kind)?;
        let matched: Vec<Value> = items.into_iter().filter(|i| query.matches(i)).collect();
        let carried = format!("&query={}", URL_SAFE_NO_PAD.encode(body.to_string()));
        let (page, links) = self.page(matched, &carried);
        let answer = if *self.method == Method::GET {
            json!({"kind": "list", "itemKind": kind, "items": page, "links": links})
        } else {
            json!({"kind": "queryresult", "itemKind": kind, "items": page, "links": links, "query": query.raw})
        };
        Ok(json_response(StatusCode::OK, answer))
    }

    fn deployments(&self, key: &ItemKey, location: Option<&str>) -> Result<Response, ApiError> {
        let state = self.shared.lock();
        let workload = state.item(key).ok_or_else(|| ApiError::not_found("workload", &key.name))?;
        let all = self.shared.with_world(&state, |world| world.deployments(workload));
        match location {
            None => Ok(self.list("deployment", all)),
            Some(name) => all
                .into_iter()
                .find(|d| d["name"] == name)
                .map(|d| json_response(StatusCode::OK, d))
                .ok_or_else(|| ApiError::not_found("deployment", name)),
        }
    }

    /// Image resources of an org, optionally only `name` (`REPO:TAG`).
    fn images(&self, org: &str, only: Option<&str>) -> Vec<Value> {
        let state = self.shared.lock();
        let Some(index) = state.registries.get(org) else { return Vec::new() };
        let mut out = Vec::new();
        for (repo, entry) in &index.repos {
            for (tag, tagged) in &entry.tags {
                if only.is_some_and(|n| n != format!("{repo}:{tag}")) {
                    continue;
                }
                let manifest = self
                    .shared
                    .disk
                    .blob_path(org, &tagged.digest)
                    .and_then(|p| std::fs::read(p).ok())
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                out.push(images::render(org, repo, tag, tagged, manifest));
            }
        }
        out
    }

    fn image(&self, org: &str, name: &str) -> Result<Response, ApiError> {
        let (repo, tag) = images::split_reference(name);
        let full = format!("{repo}:{tag}");
        match *self.method {
            Method::GET => self
                .images(org, Some(&full))
                .into_iter()
                .next()
                .map(|i| json_response(StatusCode::OK, i))
                .ok_or_else(|| ApiError::not_found("image", &full)),
            Method::DELETE => {
                let mut state = self.shared.lock();
                let removed = state
                    .registries
                    .get_mut(org)
                    .and_then(|i| i.repos.get_mut(&repo))
                    .and_then(|r| r.tags.remove(&tag));
                if removed.is_none() {
                    return Err(ApiError::not_found("image", &full));
                }
                self.shared.save(&state)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            ref other => Err(method_not_allowed(other)),
        }
    }
}

/// An item as a GET shows it: server fields first, then the body.
fn render(world: &World<'_>, item: &Item, reveal: bool) -> Value {
    let key = item.key();
    let mut out = Map::new();
    out.insert("id".into(), json!(item.id));
    out.insert("name".into(), json!(item.name));
    out.insert("kind".into(), json!(item.kind));
    if let Some(gvc) = &item.gvc {
        out.insert("gvc".into(), json!(gvc));
    }
    out.insert("version".into(), json!(item.version));
    for field in ["description", "tags"] {
        out.insert(field.into(), item.body.get(field).cloned().unwrap_or(Value::Null));
    }
    out.insert("created".into(), json!(rfc3339(item.created_ms)));
    out.insert("lastModified".into(), json!(rfc3339(item.modified_ms)));
    let mut links = vec![
        json!({"rel": "self", "href": key.path()}),
        json!({"rel": "org", "href": format!("/org/{}", item.org)}),
    ];
    if let Some(gvc) = &item.gvc {
        links.push(json!({"rel": "gvc", "href": format!("/org/{}/gvc/{gvc}", item.org)}));
    }
    if item.kind == "workload" {
        links.push(json!({"rel": "deployment", "href": format!("{}/deployment", key.path())}));
    }
    out.insert("links".into(), Value::Array(links));
    for (field, value) in &item.body {
        let hidden = item.kind == "secret" && field == "data" && !reveal;
        if !matches!(field.as_str(), "description" | "tags") && !hidden {
            out.insert(field.clone(), value.clone());
        }
    }
    match item.kind.as_str() {
        "workload" => {
            out.insert("status".into(), world.workload_status(item));
        }
        "gvc" | "identity" | "volumeset" | "domain" | "ipset" | "cloudaccount" => {
            out.insert("status".into(), json!({}));
        }
        _ => {}
    }
    Value::Object(out)
}

fn org_item(org: &str) -> Value {
    json!({
        "id": super::clock::stable_id(&format!("org/{org}")), "name": org, "kind": "org", "version": 1, "description": org, "tags": {},
        "created": rfc3339(0), "lastModified": rfc3339(0),
        "links": [{"rel": "self", "href": format!("/org/{org}")}],
        "spec": {}, "status": {"active": true, "endpointPrefix": org},
    })
}

/// A query's first page is POSTed, its later ones are GETs.
fn is_query(method: &Method) -> bool {
    method == Method::POST || method == Method::GET
}

fn is_kind(text: &str) -> bool {
    ORG_KINDS.contains(&text) || GVC_KINDS.contains(&text) || text == "image"
}

fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed here"),
    )
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Decodes `%XX` escapes in a path segment; bad escapes stay as written.
pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("api%3A1.0"), "api:1.0");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
