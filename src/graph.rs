//! The dependency graph that orders every apply, and its waves.
//!
//! Edges come from four places: references between resources (a workload
//! after the identity and secrets it uses), access (a workload after the
//! policy that lets its identity reveal a secret it reads), cpln's kind
//! order (secrets and cloud accounts before the GVC; the GVC before what
//! lives in it; domains last) and the plan file's explicit `ordering`. Waves are topological
//! layers: everything in a wave depends only on earlier waves, so a wave
//! can be applied in parallel. Pure.

use std::collections::HashMap;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::config::OrderRule;
use crate::diagnostic::{Location, Problem};
use crate::manifest::refs::{RevealGrant, references, reveal_grant};
use crate::manifest::{Kind, ManifestSet, Phase, ResourceId};

/// Why one resource comes before another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reason {
    /// `then` refers to `first` through this field.
    Reference { field: String },
    /// The plan file's `ordering` says so.
    Ordering,
    /// `first` is a policy that grants `identity`, which `then` runs as,
    /// `reveal` on `secrets` that `then` reads.
    Reveal { identity: ResourceId, secrets: Vec<ResourceId> },
}

/// `first` must be applied before `then`.
#[derive(Debug, Clone, Serialize)]
pub struct Dependency {
    pub first: ResourceId,
    pub then: ResourceId,
    #[serde(flatten)]
    pub reason: Reason,
}

impl Dependency {
    /// Why the edge exists, in words: the field holding the reference,
    /// `ordering`, or what the policy grants.
    pub fn why(&self) -> String {
        match &self.reason {
            Reason::Reference { field } => field.clone(),
            Reason::Ordering => "ordering".to_owned(),
            Reason::Reveal { identity, secrets } => {
                let secrets: Vec<String> = secrets.iter().map(ToString::to_string).collect();
                format!(
                    "grants {identity} reveal on {}, which {} reads",
                    secrets.join(" and "),
                    self.then
                )
            }
        }
    }
}

/// The ordered graph of one manifest set.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Layers in apply order; names sorted within a layer.
    pub waves: Vec<Vec<ResourceId>>,
    /// Reference and ordering edges (kind order is implied by the waves).
    pub dependencies: Vec<Dependency>,
}

impl Graph {
    /// The wave (0-based) a resource is in.
    pub fn wave_of(&self, id: &ResourceId) -> Option<usize> {
        self.waves.iter().position(|wave| wave.contains(id))
    }

    /// What `id` waits for directly.
    pub fn dependencies_of<'a>(
        &'a self,
        id: &'a ResourceId,
    ) -> impl Iterator<Item = &'a Dependency> + 'a {
        self.dependencies.iter().filter(move |d| &d.then == id)
    }
}

#[cfg(test)]
impl Graph {
    /// A graph of `ordering` edges only (`first`, `then` as `kind/name`),
    /// for tests of what is made from a graph.
    pub(crate) fn of_ordering(edges: &[(&str, &str)]) -> Graph {
        let id = |text: &str| text.parse().unwrap_or_else(|_| panic!("{text}"));
        Graph {
            waves: vec![],
            dependencies: edges
                .iter()
                .map(|(first, then)| Dependency {
                    first: id(first),
                    then: id(then),
                    reason: Reason::Ordering,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vertex {
    Resource(usize),
    /// Everything of `Phase` and before comes before what follows it.
    EndOf(Phase),
}

/// Builds the graph. References to resources that are not in the manifests
/// are ignored here (validation reports them); a cycle is a problem that
/// names every resource in it.
pub fn build(manifests: &ManifestSet, ordering: &[OrderRule]) -> Result<Graph, Problem> {
    let mut graph: DiGraph<Vertex, Option<(Location, Reason)>> = DiGraph::new();
    let mut index_of: HashMap<ResourceId, NodeIndex> = HashMap::new();
    let ids: Vec<ResourceId> = manifests.resources.iter().map(|r| r.id()).collect();
    for (position, id) in ids.iter().enumerate() {
        if !index_of.contains_key(id) {
            index_of.insert(id.clone(), graph.add_node(Vertex::Resource(position)));
        }
    }
    // Kind order through one barrier per phase: O(n) edges, not O(n²).
    let barriers: Vec<NodeIndex> =
        Phase::ALL.iter().map(|p| graph.add_node(Vertex::EndOf(*p))).collect();
    for pair in barriers.windows(2) {
        graph.add_edge(pair[0], pair[1], None);
    }
    for (id, &node) in &index_of {
        let phase = Phase::ALL.iter().position(|p| *p == id.kind.phase()).unwrap_or(0);
        graph.add_edge(node, barriers[phase], None);
        if let Some(previous) = phase.checked_sub(1) {
            graph.add_edge(barriers[previous], node, None);
        }
    }
    let mut dependencies = Vec::new();
    for resource in &manifests.resources {
        let Some(&then) = index_of.get(&resource.id()) else { continue };
        for reference in references(resource) {
            let Some(&first) = index_of.get(&reference.target) else { continue };
            if first == then {
                continue;
            }
            let reason = Reason::Reference { field: reference.field.clone() };
            dependencies.push(Dependency {
                first: reference.target.clone(),
                then: resource.id(),
                reason: reason.clone(),
            });
            graph.add_edge(first, then, Some((resource.location_of(reference.node), reason)));
        }
    }
    for (dependency, location) in reveal_dependencies(manifests) {
        if let (Some(&first), Some(&then)) =
            (index_of.get(&dependency.first), index_of.get(&dependency.then))
        {
            graph.add_edge(first, then, Some((location, dependency.reason.clone())));
            dependencies.push(dependency);
        }
    }
    for rule in ordering {
        if let (Some(&first), Some(&then)) = (index_of.get(&rule.first), index_of.get(&rule.then)) {
            dependencies.push(Dependency {
                first: rule.first.clone(),
                then: rule.then.clone(),
                reason: Reason::Ordering,
            });
            graph.add_edge(first, then, Some((rule.then_location.clone(), Reason::Ordering)));
        }
    }
    let order = toposort(&graph, None).map_err(|_| cycle_problem(&graph, &ids))?;
    let mut level: HashMap<NodeIndex, usize> = HashMap::new();
    for &node in &order {
        let depth = graph
            .edges_directed(node, petgraph::Direction::Incoming)
            .map(|e| level.get(&e.source()).copied().unwrap_or(0) + 1)
            .max()
            .unwrap_or(0);
        level.insert(node, depth);
    }
    let mut by_level: Vec<Vec<ResourceId>> = Vec::new();
    for (id, node) in &index_of {
        let depth = level.get(node).copied().unwrap_or(0);
        if by_level.len() <= depth {
            by_level.resize_with(depth + 1, Vec::new);
        }
        by_level[depth].push(id.clone());
    }
    let mut waves: Vec<Vec<ResourceId>> = by_level.into_iter().filter(|w| !w.is_empty()).collect();
    for wave in &mut waves {
        wave.sort();
    }
    dependencies.sort_by(|a, b| (&a.then, &a.first).cmp(&(&b.then, &b.first)));
    dependencies.dedup_by(|a, b| a.then == b.then && a.first == b.first && a.reason == b.reason);
    Ok(Graph { waves, dependencies })
}

/// A workload after each policy that lets its identity reveal a secret it
/// reads (env `cpln://secret/…`, volumes): started before the policy, it
/// could not read its secret. Located at the workload's first such read.
fn reveal_dependencies(manifests: &ManifestSet) -> Vec<(Dependency, Location)> {
    let grants: Vec<(ResourceId, RevealGrant)> = manifests
        .resources
        .iter()
        .filter_map(|policy| reveal_grant(policy).map(|grant| (policy.id(), grant)))
        .collect();
    let mut found = Vec::new();
    if grants.is_empty() {
        return found;
    }
    for workload in manifests.resources.iter().filter(|r| r.kind == Kind::Workload) {
        let refs = references(workload);
        let Some(identity) = refs.iter().find(|r| r.field == "spec.identityLink") else {
            continue;
        };
        let reads: Vec<_> = refs
            .iter()
            .filter(|r| r.target.kind == Kind::Secret && r.field.starts_with("spec.containers"))
            .collect();
        for (policy, grant) in &grants {
            if !grant.identities.contains(&identity.target) {
                continue;
            }
            let covered: Vec<_> = reads.iter().filter(|r| grant.covers(&r.target)).collect();
            let Some(first_read) = covered.first() else { continue };
            let mut secrets: Vec<ResourceId> = covered.iter().map(|r| r.target.clone()).collect();
            secrets.sort();
            secrets.dedup();
            let reason = Reason::Reveal { identity: identity.target.clone(), secrets };
            found.push((
                Dependency { first: policy.clone(), then: workload.id(), reason },
                workload.location_of(first_read.node),
            ));
        }
    }
    found
}

fn cycle_problem(
    graph: &DiGraph<Vertex, Option<(Location, Reason)>>,
    ids: &[ResourceId],
) -> Problem {
    let component = tarjan_scc(graph).into_iter().find(|c| c.len() > 1).unwrap_or_default();
    let path = cycle_path(graph, &component);
    let describe = |node: NodeIndex| match graph[node] {
        Vertex::Resource(i) => ids.get(i).map_or_else(String::new, ToString::to_string),
        Vertex::EndOf(phase) => format!("(kind order: end of {phase:?})"),
    };
    let route: Vec<String> = path.iter().map(|n| describe(*n)).collect();
    let mut members: Vec<String> = path
        .iter()
        .filter(|n| matches!(graph[**n], Vertex::Resource(_)))
        .map(|n| describe(*n))
        .collect();
    members.sort();
    members.dedup();
    let through_kind_order = component.iter().any(|n| matches!(graph[*n], Vertex::EndOf(_)));
    let mut labelled = path.windows(2).filter_map(|pair| {
        graph.find_edge(pair[0], pair[1]).and_then(|e| graph[e].as_ref()).map(
            |(location, reason)| {
                let why = match reason {
                    Reason::Reference { field } => format!("refers through {field}"),
                    Reason::Ordering => "ordering rule".to_owned(),
                    Reason::Reveal { identity, .. } => {
                        format!("the policy grants {identity} reveal on a secret read here")
                    }
                };
                (location.clone(), why)
            },
        )
    });
    let mut problem = Problem::new(
        "ferry::graph::cycle",
        format!("dependency cycle between {}: {}", members.join(", "), route.join(" → ")),
    );
    if let Some((location, why)) = labelled.next() {
        problem = problem.at(location, why);
    }
    for (location, why) in labelled {
        problem = problem.note(location, why);
    }
    problem.help(if through_kind_order {
        "an ordering rule or reference goes against cpln's kind order (secrets, then the GVC, then what lives in it, domains last); remove it"
    } else {
        "break the cycle: remove one of these references or ordering rules"
    })
}

/// One closed walk through a strongly connected component.
fn cycle_path<N, E>(graph: &DiGraph<N, E>, component: &[NodeIndex]) -> Vec<NodeIndex> {
    let Some(&start) = component.iter().min() else { return Vec::new() };
    let inside = |n: &NodeIndex| component.contains(n);
    // Breadth-first search back to `start`, staying inside the component.
    let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.neighbors(node).filter(inside) {
            if next == start {
                let mut path = vec![node];
                let mut cursor = node;
                while let Some(&p) = previous.get(&cursor) {
                    path.push(p);
                    cursor = p;
                }
                if cursor != start {
                    path.push(start);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if next != start && !previous.contains_key(&next) {
                previous.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    vec![start]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use crate::manifest::load_documents;

    fn manifests(text: &str) -> ManifestSet {
        let (resources, _) = load_documents(&[SourceFile::new("m.yaml", text)]);
        ManifestSet { resources }
    }

    fn names(graph: &Graph) -> Vec<Vec<String>> {
        graph.waves.iter().map(|w| w.iter().map(ToString::to_string).collect()).collect()
    }

    #[test]
    fn waves_follow_references_and_kind_order() {
        let set = manifests(
            "kind: domain\nname: app.example.com\nspec: {ports: [{routes: [{workloadLink: //gvc/app/workload/api}]}]}\n---\nkind: workload\nname: api\nspec:\n  identityLink: //gvc/app/identity/api-id\n  containers: [{name: main, env: [{name: X, value: cpln://secret/db.url}]}]\n---\nkind: identity\nname: api-id\n---\nkind: gvc\nname: app\n---\nkind: secret\nname: db\n",
        );
        let graph = build(&set, &[]).map_err(|p| p.message.clone());
        let graph = graph.unwrap_or_else(|m| panic!("{m}"));
        assert_eq!(
            names(&graph),
            [
                vec!["secret/db"],
                vec!["gvc/app"],
                vec!["identity/api-id"],
                vec!["workload/api"],
                vec!["domain/app.example.com"]
            ]
        );
    }

    #[test]
    fn a_workload_waits_for_the_policy_that_lets_it_reveal_its_secrets() {
        let set = manifests(
            "kind: workload\nname: api\nspec:\n  identityLink: //gvc/app/identity/api-id\n  containers:\n    - name: main\n      env: [{name: DB, value: cpln://secret/db.url}]\n      volumes: [{uri: cpln://secret/tls, path: /tls}]\n---\nkind: workload\nname: other\nspec:\n  identityLink: //gvc/app/identity/other-id\n  containers: [{name: main, env: [{name: DB, value: cpln://secret/db.url}]}]\n---\nkind: identity\nname: api-id\n---\nkind: identity\nname: other-id\n---\nkind: policy\nname: db-reveal\ntargetKind: secret\ntargetLinks: [//secret/db, //secret/tls]\nbindings: [{permissions: [reveal], principalLinks: [//gvc/app/identity/api-id]}]\n---\nkind: secret\nname: db\n---\nkind: secret\nname: tls\n",
        );
        let graph = build(&set, &[]).unwrap_or_else(|p| panic!("{}", p.message));
        let api = ResourceId::new(Kind::Workload, "api");
        let policy = ResourceId::new(Kind::Policy, "db-reveal");
        let edge = graph.dependencies_of(&api).find(|d| d.first == policy);
        let edge = edge.unwrap_or_else(|| panic!("{:?}", graph.dependencies));
        assert_eq!(
            edge.why(),
            "grants identity/api-id reveal on secret/db and secret/tls, which workload/api reads"
        );
        assert!(graph.wave_of(&policy) < graph.wave_of(&api));
        // Another identity reading the same secret gets no such edge.
        let other = ResourceId::new(Kind::Workload, "other");
        assert!(graph.dependencies_of(&other).all(|d| d.first != policy));
        assert_eq!(graph.wave_of(&other), graph.wave_of(&policy));
    }

    #[test]
    fn cycles_name_every_member() {
        let set = manifests("kind: workload\nname: a\n---\nkind: workload\nname: b\n");
        let rule = |first: &str, then: &str| OrderRule {
            first: first.parse().unwrap_or_else(|_| panic!("id")),
            then: then.parse().unwrap_or_else(|_| panic!("id")),
            first_location: Location::new(&SourceFile::new("p.yaml", "x"), (0, 1)),
            then_location: Location::new(&SourceFile::new("p.yaml", "x"), (0, 1)),
        };
        let error =
            build(&set, &[rule("workload/a", "workload/b"), rule("workload/b", "workload/a")])
                .err();
        let message = error.map(|p| p.message.clone()).unwrap_or_default();
        assert!(message.contains("workload/a, workload/b"), "{message}");
        assert!(message.contains("workload/a → workload/b → workload/a"), "{message}");
    }
}
