//! The dependency graph that orders every apply, and its waves.
//!
//! Edges come from three places: references between resources (a workload
//! after the identity and secrets it uses), cpln's kind order (secrets and
//! cloud accounts before the GVC; the GVC before what lives in it; domains
//! last) and the plan file's explicit `ordering`. Waves are topological
//! layers: everything in a wave depends only on earlier waves, so a wave
//! can be applied in parallel. Pure.

use std::collections::HashMap;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::config::OrderRule;
use crate::diagnostic::{Location, Problem};
use crate::manifest::refs::references;
use crate::manifest::{ManifestSet, Phase, ResourceId};

/// Why one resource comes before another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reason {
    /// `then` refers to `first` through this field.
    Reference { field: String },
    /// The plan file's `ordering` says so.
    Ordering,
}

/// `first` must be applied before `then`.
#[derive(Debug, Clone, Serialize)]
pub struct Dependency {
    pub first: ResourceId,
    pub then: ResourceId,
    #[serde(flatten)]
    pub reason: Reason,
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
