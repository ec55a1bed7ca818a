//! `kind: identity`, `policy`, `volumeset`, `domain` and `cloudaccount`.

use serde_json::Value;

use super::{Checker, Ptr, cron, link, top_level};

/// Every kind Control Plane knows (types-go `base.Kind`): what a policy
/// may target.
const ALL_KINDS: [&str; 33] = [
    "org",
    "cloudaccount",
    "policy",
    "user",
    "group",
    "resource",
    "task",
    "permissions",
    "serviceaccount",
    "secret",
    "location",
    "gvc",
    "workload",
    "quota",
    "identity",
    "deployment",
    "event",
    "domain",
    "image",
    "ipset",
    "resourcepolicy",
    "agent",
    "accessreport",
    "policymembership",
    "dbcluster",
    "auditctx",
    "memcachecluster",
    "spicedbcluster",
    "tenant",
    "mk8s",
    "command",
    "imagesummary",
    "volumeset",
];

pub(super) fn identity(c: &mut Checker, root: &Ptr, body: &Value) {
    let extra = [
        "aws",
        "gcp",
        "azure",
        "ngs",
        "networkResources",
        "nativeNetworkResources",
        "memcacheAccess",
        "spicedbAccess",
    ];
    let Some(doc) = c.mapping(root, body, &top_level(&extra)) else { return };
    let providers: [(&str, &[&str]); 4] = [
        ("aws", &["cloudAccountLink", "policyRefs", "trustPolicy", "roleName"]),
        ("gcp", &["cloudAccountLink", "scopes", "serviceAccount", "bindings"]),
        ("azure", &["cloudAccountLink", "roleAssignments"]),
        ("ngs", &["cloudAccountLink", "pub", "sub", "resp", "subs", "data", "payload"]),
    ];
    for (provider, known) in providers {
        c.field(doc, root, provider, |c, at, v| {
            let Some(access) = c.mapping(at, v, known) else { return };
            provider_rules(c, provider, access, at);
            if let Some(account) = c.required(
                access,
                at,
                "cloudAccountLink",
                "the cloud account, `//cloudaccount/NAME`",
            ) {
                link(c, &at.key("cloudAccountLink"), account, "cloudaccount");
            }
        });
    }
    c.each(doc, root, "networkResources", "a list of network resources", |c, at, v| {
        let Some(resource) =
            c.mapping(at, v, &["name", "agentLink", "IPs", "FQDN", "resolverIP", "ports"])
        else {
            return;
        };
        if let Some(name) = c.required(resource, at, "name", "every network resource has a `name`")
        {
            c.string(&at.key("name"), name);
        }
        c.field(resource, at, "IPs", |c, at, v| {
            let ips = c.strings(at, v);
            if v.is_array() && !(1..=5).contains(&ips.len()) {
                c.error(
                    at,
                    format!("{at} lists {} addresses, 1 to 5 allowed", ips.len()),
                    "list 1 to 5 IP addresses",
                );
            }
        });
        c.field(resource, at, "FQDN", Checker::string);
        let has = |k: &str| resource.get(k).is_some_and(|v| !v.is_null());
        if has("IPs") == has("FQDN") {
            c.error(
                &at.key("FQDN"),
                format!("{at} needs exactly one of `IPs` and `FQDN`"),
                "reach the resource by its addresses or by its name, not both",
            );
        }
        ports_list(c, resource, at);
    });
    c.each(
        doc,
        root,
        "nativeNetworkResources",
        "a list of native network resources",
        |c, at, v| {
            let Some(resource) =
                c.mapping(at, v, &["name", "FQDN", "ports", "awsPrivateLink", "gcpServiceConnect"])
            else {
                return;
            };
            if let Some(name) =
                c.required(resource, at, "name", "every network resource has a `name`")
            {
                c.string(&at.key("name"), name);
            }
            ports_list(c, resource, at);
        },
    );
}

/// What the Terraform provider checks in an identity's cloud access.
fn provider_rules(
    c: &mut Checker,
    provider: &str,
    access: &serde_json::Map<String, Value>,
    at: &Ptr,
) {
    match provider {
        "aws" => {
            c.field(access, at, "policyRefs", Checker::strings);
            c.field(access, at, "roleName", |c, at, v| {
                let valid = |t: &str| {
                    !t.is_empty()
                        && t.len() <= 64
                        && t.chars().all(|c| c.is_ascii_alphanumeric() || "/+=,.@_-".contains(c))
                };
                if let Some(name) = c.string(at, v).filter(|t| !valid(t)) {
                    c.error(
                        at,
                        format!("{at} is `{name}`, not an AWS role name"),
                        "at most 64 letters, digits and `/+=,.@_-`",
                    );
                }
            });
            if access.contains_key("roleName") && access.contains_key("policyRefs") {
                c.error(
                    &at.key("roleName"),
                    format!("{at} has both `roleName` and `policyRefs`"),
                    "use an existing role (`roleName`) or attach policies (`policyRefs`), not both",
                );
            }
        }
        "gcp" => {
            c.field(access, at, "scopes", Checker::strings);
            c.field(access, at, "serviceAccount", |c, at, v| {
                if let Some(account) =
                    c.string(at, v).filter(|t| !t.ends_with(".gserviceaccount.com"))
                {
                    c.error(
                        at,
                        format!("{at} is `{account}`, not a GCP service account"),
                        "write `NAME@PROJECT.iam.gserviceaccount.com`",
                    );
                }
            });
        }
        _ => {}
    }
}

/// `ports: [5432, …]` of a network resource.
fn ports_list(c: &mut Checker, resource: &serde_json::Map<String, Value>, at: &Ptr) {
    if let Some(ports) = c.required(resource, at, "ports", "the ports to reach, such as `[5432]`") {
        let at = at.key("ports");
        let items = c.list(&at, ports, "a list of port numbers").unwrap_or_default();
        if ports.is_array() && !(1..=10).contains(&items.len()) {
            c.error(
                &at,
                format!("{at} lists {} ports, 1 to 10 allowed", items.len()),
                "list 1 to 10 ports",
            );
        }
        for (index, item) in items.iter().enumerate() {
            c.integer(&at.index(index), item, 1, 65_535);
        }
    }
}

pub(super) fn policy(c: &mut Checker, root: &Ptr, body: &Value) {
    let extra = ["targetKind", "targetLinks", "targetQuery", "target", "bindings"];
    let Some(doc) = c.mapping(root, body, &top_level(&extra)) else { return };
    if let Some(kind) = c.required(
        doc,
        root,
        "targetKind",
        "the kind of resource the policy grants on, such as `secret`",
    ) {
        c.one_of(&root.key("targetKind"), kind, &ALL_KINDS);
    }
    c.field(doc, root, "target", |c, at, v| c.one_of(at, v, &["all"]));
    c.field(doc, root, "targetLinks", |c, at, v| {
        if c.strings(at, v).len() > 200 {
            c.error(at, format!("{at} lists more than 200 links"), "split the policy");
        }
    });
    c.field(doc, root, "targetQuery", |c, at, v| {
        c.mapping(at, v, &["kind", "context", "fetch", "spec"]);
    });
    if doc.get("target").and_then(Value::as_str) == Some("all") && doc.contains_key("targetLinks") {
        c.warn(
            &root.key("targetLinks"),
            "`targetLinks` is ignored with `target: all`".to_owned(),
            "remove one of them",
        );
    }
    c.at_most(doc, root, "bindings", 50, "merge bindings that grant the same permissions");
    c.each(doc, root, "bindings", "a list of `permissions`/`principalLinks` items", |c, at, v| {
        let Some(binding) = c.mapping(at, v, &["permissions", "principalLinks"]) else { return };
        for key in ["permissions", "principalLinks"] {
            if let Some(list) = c.required(binding, at, key, "a list of strings") {
                let items = c.strings(&at.key(key), list);
                // The Terraform provider requires at least one principal
                // (`SizeAtLeast(1)`) but checks no count of permissions.
                if items.is_empty() && list.is_array() {
                    let (message, help) = (
                        format!("{} is empty", at.key(key)),
                        "a binding grants at least one permission to at least one principal",
                    );
                    if key == "principalLinks" {
                        c.error(&at.key(key), message, help);
                    } else {
                        c.warn(&at.key(key), message, help);
                    }
                }
                if key == "principalLinks" && items.len() > 200 {
                    c.error(
                        &at.key(key),
                        format!("{} lists more than 200 principals", at.key(key)),
                        "use a group",
                    );
                }
            }
        }
    });
}

pub(super) fn volume_set(c: &mut Checker, root: &Ptr, body: &Value) {
    let Some(doc) = c.mapping(root, body, &top_level(&["spec"])) else { return };
    let Some(spec) = c.required(
        doc,
        root,
        "spec",
        "a volume set needs `spec.initialCapacity` and `spec.performanceClass`",
    ) else {
        return;
    };
    let at = root.key("spec");
    let known = [
        "initialCapacity",
        "performanceClass",
        "storageClassSuffix",
        "fileSystemType",
        "customEncryption",
        "snapshots",
        "autoscaling",
        "mountOptions",
    ];
    let Some(spec) = c.mapping(&at, spec, &known) else { return };
    let file_system = c
        .field(spec, &at, "fileSystemType", |c, at, v| c.one_of(at, v, &["ext4", "xfs", "shared"]))
        .flatten();
    let class = match spec.get("performanceClass") {
        Some(v) if !v.is_null() => c.one_of(
            &at.key("performanceClass"),
            v,
            &["general-purpose-ssd", "high-throughput-ssd", "shared"],
        ),
        _ if file_system.as_deref() == Some("shared") => Some("shared".to_owned()),
        _ => {
            c.error(
                &at.key("performanceClass"),
                "a volume set needs `spec.performanceClass`".to_owned(),
                "use general-purpose-ssd, high-throughput-ssd or shared",
            );
            None
        }
    };
    if (class.as_deref() == Some("shared")) != (file_system.as_deref() == Some("shared"))
        && file_system.is_some()
        && class.is_some()
    {
        c.error(
            &at.key("fileSystemType"),
            "the `shared` performance class and file system go together".to_owned(),
            "use `performanceClass: shared` with `fileSystemType: shared`, or neither",
        );
    }
    let minimum = match class.as_deref() {
        Some("high-throughput-ssd") => 200,
        Some("general-purpose-ssd") => 10,
        _ => 1,
    };
    if let Some(capacity) =
        c.required(spec, &at, "initialCapacity", "the size of each volume, in GB")
    {
        let at = at.key("initialCapacity");
        let size = c.integer(&at, capacity, 1, i64::MAX);
        beyond_largest_volume(c, &at, size);
        if let Some(size) = size
            && size < minimum
        {
            c.error(
                &at,
                format!(
                    "{at} is {size} GB, below the {minimum} GB a {} volume needs",
                    class.as_deref().unwrap_or_default()
                ),
                format!("use at least {minimum}"),
            );
        }
    }
    c.field(spec, &at, "storageClassSuffix", |c, at, v| {
        let valid = |t: &str| {
            t.starts_with(|c: char| c.is_ascii_alphabetic())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if let Some(text) = c.string(at, v).filter(|t| !valid(t)) {
            c.error(
                at,
                format!("{at} is `{text}`, not a storage class suffix"),
                "a letter, then letters, digits, `-` and `_`",
            );
        }
    });
    c.field(spec, &at, "snapshots", |c, at, v| {
        let Some(snapshots) =
            c.mapping(at, v, &["createFinalSnapshot", "retentionDuration", "schedule"])
        else {
            return;
        };
        c.field(snapshots, at, "createFinalSnapshot", Checker::boolean);
        c.field(snapshots, at, "retentionDuration", |c, at, v| {
            let valid = |t: &str| {
                t.strip_suffix(['d', 'h', 'm'])
                    .is_some_and(|n| n.parse::<f64>().is_ok_and(|n| n > 0.0))
            };
            if let Some(text) = c.string(at, v).filter(|t| !valid(t)) {
                c.error(
                    at,
                    format!("{at} is `{text}`, not a duration"),
                    "write a number of days, hours or minutes, such as `7d`",
                );
            }
        });
        c.field(snapshots, at, "schedule", |c, at, v| {
            if let Some(text) = c.string(at, v)
                && let Err(reason) = cron::check(text)
            {
                // No source checks the syntax: a warning.
                c.warn(
                    at,
                    format!("{at} `{text}`: {reason}"),
                    "a cron expression such as `0 3 * * *`",
                );
            }
        });
    });
    c.field(spec, &at, "autoscaling", |c, at, v| {
        let Some(scaling) =
            c.mapping(at, v, &["maxCapacity", "minFreePercentage", "scalingFactor", "predictive"])
        else {
            return;
        };
        c.field(scaling, at, "maxCapacity", |c, at, v| {
            let size = c.integer(at, v, 10, i64::MAX);
            beyond_largest_volume(c, at, size);
        });
        c.field(scaling, at, "minFreePercentage", |c, at, v| c.integer(at, v, 1, 100));
        c.field(scaling, at, "scalingFactor", |c, at, v| c.number(at, v, 1.1, f64::MAX));
    });
}

pub(super) fn domain(c: &mut Checker, root: &Ptr, body: &Value) {
    let Some(doc) = c.mapping(root, body, &top_level(&["spec"])) else { return };
    let Some(spec) = doc.get("spec").filter(|v| !v.is_null()) else { return };
    let at = root.key("spec");
    let known = [
        "dnsMode",
        "gvcLink",
        "certChallengeType",
        "workloadLink",
        "acceptAllHosts",
        "acceptAllSubdomains",
        "ports",
    ];
    let Some(spec) = c.mapping(&at, spec, &known) else { return };
    c.field(spec, &at, "dnsMode", |c, at, v| c.one_of(at, v, &["cname", "ns"]));
    c.field(spec, &at, "certChallengeType", |c, at, v| c.one_of(at, v, &["http01", "dns01"]));
    c.field(spec, &at, "gvcLink", |c, at, v| link(c, at, v, "gvc"));
    c.field(spec, &at, "workloadLink", |c, at, v| link(c, at, v, "workload"));
    for key in ["acceptAllHosts", "acceptAllSubdomains"] {
        c.field(spec, &at, key, Checker::boolean);
    }
    c.each(spec, &at, "ports", "a list of `number`/`protocol`/`routes` items", |c, at, v| {
        let Some(entry) = c.mapping(at, v, &["number", "protocol", "routes", "cors", "tls"]) else {
            return;
        };
        if let Some(number) =
            c.required(entry, at, "number", "the port the domain serves, such as 443")
        {
            // A listener port: the sidecar ports a workload may not use
            // are the workload's, not the domain's.
            c.integer(&at.key("number"), number, 1, 65_535);
        }
        c.field(entry, at, "protocol", |c, at, v| c.one_of(at, v, &["http", "http2", "tcp"]));
        c.each(entry, at, "routes", "a list of routes", |c, at, v| {
            let known = [
                "replacePrefix",
                "regex",
                "prefix",
                "workloadLink",
                "port",
                "hostPrefix",
                "hostRegex",
                "headers",
                "replica",
            ];
            let Some(route) = c.mapping(at, v, &known) else { return };
            if let Some(workload) =
                c.required(route, at, "workloadLink", "the workload this route sends to")
            {
                link(c, &at.key("workloadLink"), workload, "workload");
            }
            c.field(route, at, "port", |c, at, v| c.integer(at, v, 1, 65_535));
            c.field(route, at, "replica", |c, at, v| c.integer(at, v, 0, i64::MAX));
            // Inferred (no source checks it): a warning.
            if route.contains_key("prefix") && route.contains_key("regex") {
                c.warn(
                    &at.key("regex"),
                    format!("{at} has both `prefix` and `regex`"),
                    "a route matches by prefix or by regex, not both",
                );
            }
        });
        c.field(entry, at, "tls", |c, at, v| {
            let Some(tls) = c.mapping(
                at,
                v,
                &["minProtocolVersion", "cipherSuites", "clientCertificate", "serverCertificate"],
            ) else {
                return;
            };
            c.field(tls, at, "minProtocolVersion", |c, at, v| {
                c.one_of(at, v, &["TLSV1_3", "TLSV1_2", "TLSV1_1", "TLSV1_0"])
            });
            c.field(tls, at, "cipherSuites", Checker::strings);
        });
    });
}

pub(super) fn cloud_account(c: &mut Checker, root: &Ptr, body: &Value) {
    let Some(doc) = c.mapping(root, body, &top_level(&["provider", "data"])) else { return };
    let Some(provider) = c.required(doc, root, "provider", "one of aws, gcp, azure, ngs") else {
        return;
    };
    let Some(provider) = c.one_of(&root.key("provider"), provider, &["aws", "gcp", "azure", "ngs"])
    else {
        return;
    };
    let (field, help) = match provider.as_str() {
        "aws" => ("roleArn", "the role Control Plane assumes: `arn:aws:iam::ACCOUNT:role/NAME`"),
        "gcp" => ("projectId", "the GCP project id"),
        _ => ("secretLink", "the secret holding the credentials, `//secret/NAME`"),
    };
    let Some(data) = c.required(doc, root, "data", help) else { return };
    let at = root.key("data");
    let Some(data) = c.mapping(&at, data, &[field]) else { return };
    if let Some(value) = c.required(data, &at, field, help) {
        let at = at.key(field);
        match field {
            "secretLink" => link(c, &at, value, "secret"),
            "roleArn" => {
                if let Some(text) = c.string(&at, value).filter(|t| !is_role_arn(t)) {
                    c.error(&at, format!("{at} is `{text}`, not an AWS role ARN"), help);
                }
            }
            _ => {
                let valid = |t: &str| {
                    (6..=30).contains(&t.len())
                        && t.starts_with(|c: char| c.is_ascii_lowercase())
                        && t.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                };
                if let Some(text) = c.string(&at, value).filter(|t| !valid(t)) {
                    c.error(
                        &at,
                        format!("{at} is `{text}`, not a GCP project id"),
                        "6 to 30 lowercase letters, digits and `-`, starting with a letter",
                    );
                }
            }
        }
    }
}

/// `arn:aws:iam::ACCOUNT:role/NAME` (also the `aws-us-gov` and `aws-cn`
/// partitions), as the Terraform provider's cloud account validator reads it.
fn is_role_arn(text: &str) -> bool {
    let Some(rest) = ["arn:aws:iam::", "arn:aws-us-gov:iam::", "arn:aws-cn:iam::"]
        .iter()
        .find_map(|p| text.strip_prefix(p))
    else {
        return false;
    };
    let Some((account, role)) = rest.split_once(":role/") else { return false };
    !account.is_empty() && account.chars().all(|c| c.is_ascii_digit()) && !role.is_empty()
}

/// Above 64 TiB, the largest volume the clouds offer: inferred, so a
/// warning (no source gives the API's upper bound).
fn beyond_largest_volume(c: &mut Checker, at: &Ptr, size: Option<i64>) {
    if let Some(size) = size.filter(|s| *s > 65_536) {
        c.warn(
            at,
            format!("{at} is {size} GB, more than the largest cloud volume (65536 GB)"),
            "no source gives Control Plane's upper bound; check the size",
        );
    }
}
