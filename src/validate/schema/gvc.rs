//! `kind: gvc`.

use serde_json::Value;

use super::{Checker, Ptr, env, link, top_level};

const SPEC_FIELDS: [&str; 11] = [
    "staticPlacement",
    "pullSecretLinks",
    "domain",
    "endpointNamingFormat",
    "tracing",
    "sidecar",
    "env",
    "loadBalancer",
    "keda",
    "locationOptions",
    "aliasWorkloadLink",
];

pub(super) fn check(c: &mut Checker, root: &Ptr, body: &Value) {
    let Some(doc) = c.mapping(root, body, &top_level(&["spec"])) else { return };
    let Some(spec) = doc.get("spec").filter(|v| !v.is_null()) else { return };
    let at = root.key("spec");
    let Some(spec) = c.mapping(&at, spec, &SPEC_FIELDS) else { return };
    c.field(spec, &at, "staticPlacement", |c, at, v| {
        let Some(placement) =
            c.mapping(at, v, &["locationLinks", "locationQuery", "locationOptions"])
        else {
            return;
        };
        c.field(placement, at, "locationLinks", |c, at, v| {
            for (at, text) in c.strings(at, v) {
                super::location(c, &at, text, false);
            }
        });
        c.each(
            placement,
            at,
            "locationOptions",
            "a list of `locationLink`/`routingTier` items",
            |c, at, v| {
                let known =
                    ["locationLink", "routingTier", "latencyOffsetMs", "latencyToleranceMs"];
                let Some(option) = c.mapping(at, v, &known) else { return };
                if let Some(link) =
                    c.required(option, at, "locationLink", "the location, `//location/NAME`")
                {
                    let at = at.key("locationLink");
                    if let Some(text) = c.string(&at, link) {
                        super::location(c, &at, text, false);
                    }
                }
                for key in ["routingTier", "latencyToleranceMs"] {
                    c.field(option, at, key, |c, at, v| c.integer(at, v, 0, i64::MAX));
                }
                c.field(option, at, "latencyOffsetMs", |c, at, v| {
                    c.integer(at, v, i64::MIN, i64::MAX)
                });
            },
        );
        c.field(placement, at, "locationQuery", |c, at, v| {
            c.mapping(at, v, &["kind", "context", "fetch", "spec"]);
        });
    });
    c.field(spec, &at, "pullSecretLinks", |c, at, v| {
        for (at, text) in c.strings(at, v) {
            link(c, &at, &Value::String(text.to_owned()), "secret");
        }
    });
    c.field(spec, &at, "endpointNamingFormat", |c, at, v| {
        c.one_of(at, v, &["default", "legacy", "org"])
    });
    c.field(spec, &at, "env", env);
    c.field(spec, &at, "domain", Checker::string);
    c.field(spec, &at, "loadBalancer", |c, at, v| {
        let known = ["dedicated", "multiZone", "trustedProxies", "redirect", "ipSet"];
        let Some(balancer) = c.mapping(at, v, &known) else { return };
        c.field(balancer, at, "dedicated", Checker::boolean);
        c.field(balancer, at, "trustedProxies", |c, at, v| c.integer(at, v, 0, 2));
        c.field(balancer, at, "ipSet", Checker::string);
    });
    c.field(spec, &at, "keda", |c, at, v| {
        let Some(keda) = c.mapping(at, v, &["enabled", "identityLink", "secrets"]) else { return };
        c.field(keda, at, "enabled", Checker::boolean);
        c.field(keda, at, "identityLink", |c, at, v| link(c, at, v, "identity"));
        c.field(keda, at, "secrets", Checker::strings);
    });
    c.field(spec, &at, "tracing", |c, at, v| {
        let Some(tracing) = c.mapping(at, v, &["sampling", "lightstep", "customTags", "provider"])
        else {
            return;
        };
        c.field(tracing, at, "sampling", |c, at, v| c.number(at, v, 0.0, 100.0));
        c.field(tracing, at, "provider", |c, at, v| {
            c.mapping(at, v, &["otel", "lightstep", "controlplane"]);
        });
    });
}
