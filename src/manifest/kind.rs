//! The kinds of Control Plane resources Ferry manages.

use std::fmt;

use serde::Serialize;

/// A Control Plane resource kind that manifests may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Agent,
    AuditCtx,
    CloudAccount,
    Domain,
    Group,
    Gvc,
    Identity,
    IpSet,
    Policy,
    Secret,
    ServiceAccount,
    VolumeSet,
    Workload,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Agent,
        Kind::AuditCtx,
        Kind::CloudAccount,
        Kind::Domain,
        Kind::Group,
        Kind::Gvc,
        Kind::Identity,
        Kind::IpSet,
        Kind::Policy,
        Kind::Secret,
        Kind::ServiceAccount,
        Kind::VolumeSet,
        Kind::Workload,
    ];

    /// The name used in manifests and API paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::AuditCtx => "auditctx",
            Kind::CloudAccount => "cloudaccount",
            Kind::Domain => "domain",
            Kind::Group => "group",
            Kind::Gvc => "gvc",
            Kind::Identity => "identity",
            Kind::IpSet => "ipset",
            Kind::Policy => "policy",
            Kind::Secret => "secret",
            Kind::ServiceAccount => "serviceaccount",
            Kind::VolumeSet => "volumeset",
            Kind::Workload => "workload",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Workloads, identities and volume sets live inside a GVC; everything
    /// else belongs to the org.
    pub fn is_gvc_scoped(self) -> bool {
        matches!(self, Kind::Workload | Kind::Identity | Kind::VolumeSet)
    }

    /// The apply phase of this kind: every resource of an earlier phase is
    /// written before any of a later one. It extends `cpln apply`'s order
    /// with the kinds it leaves unordered (reference §4.3).
    pub fn phase(self) -> Phase {
        match self {
            Kind::Agent
            | Kind::AuditCtx
            | Kind::CloudAccount
            | Kind::Group
            | Kind::IpSet
            | Kind::Secret
            | Kind::ServiceAccount => Phase::OrgPrerequisites,
            Kind::Gvc => Phase::Gvc,
            Kind::Identity | Kind::Policy | Kind::VolumeSet | Kind::Workload => Phase::GvcContents,
            Kind::Domain => Phase::Routing,
        }
    }

    /// Every kind name, for "expected one of …" messages.
    pub fn names() -> String {
        Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Apply phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Secrets, cloud accounts and other org-level things a GVC may use.
    OrgPrerequisites,
    Gvc,
    /// Identities, volume sets, policies and workloads.
    GvcContents,
    /// Domains route to workloads, so they come last.
    Routing,
}

impl Phase {
    pub const ALL: [Phase; 4] =
        [Phase::OrgPrerequisites, Phase::Gvc, Phase::GvcContents, Phase::Routing];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("deployment"), None);
    }

    #[test]
    fn phases_follow_cpln_order() {
        assert!(Kind::Secret.phase() < Kind::Gvc.phase());
        assert!(Kind::Gvc.phase() < Kind::Workload.phase());
        assert!(Kind::Workload.phase() < Kind::Domain.phase());
    }
}
