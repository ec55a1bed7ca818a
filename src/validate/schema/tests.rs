use serde_json::{Value, json};

use super::*;

fn errors(kind: Kind, body: &Value) -> Vec<(String, String)> {
    check(kind, body)
        .into_iter()
        .filter(|v| v.severity == Severity::Error)
        .map(|v| (v.path, v.message))
        .collect()
}

fn error_paths(kind: Kind, body: &Value) -> Vec<String> {
    errors(kind, body).into_iter().map(|(path, _)| path).collect()
}

fn warning_paths(kind: Kind, body: &Value) -> Vec<String> {
    check(kind, body)
        .into_iter()
        .filter(|v| v.severity == Severity::Warning)
        .map(|v| v.path)
        .collect()
}

fn workload(spec: Value) -> Value {
    json!({"kind": "workload", "name": "api", "spec": spec})
}

#[test]
fn a_usual_workload_is_valid() {
    let body = workload(json!({
        "type": "standard",
        "containers": [{
            "name": "main", "image": "nginx:1.25", "cpu": "50m", "memory": "128Mi",
            "ports": [{"number": 8080, "protocol": "http"}],
            "env": [{"name": "A", "value": "1"}],
            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 5},
        }],
        "defaultOptions": {"autoscaling": {"metric": "cpu", "target": 80, "minScale": 1, "maxScale": 3}, "capacityAI": false},
        "firewallConfig": {"external": {"inboundAllowCIDR": ["0.0.0.0/0"]}, "internal": {"inboundAllowType": "same-gvc"}},
    }));
    assert_eq!(check(Kind::Workload, &body), []);
}

#[test]
fn the_issues_examples_are_errors_at_their_field() {
    assert_eq!(
        error_paths(Kind::Workload, &workload(json!({"containers": "main"}))),
        ["/spec/containers"]
    );
    let container = |extra: Value| {
        let mut c = json!({"name": "main", "image": "x:1", "ports": [{"number": 8080}]});
        if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
            c.extend(extra);
        }
        workload(json!({"type": "standard", "containers": [c]}))
    };
    assert_eq!(
        error_paths(Kind::Workload, &container(json!({"cpu": "five"}))),
        ["/spec/containers/0/cpu"]
    );
    assert_eq!(
        error_paths(Kind::Workload, &container(json!({"ports": [{"number": 70000}]}))),
        ["/spec/containers/0/ports/0/number"]
    );
    assert_eq!(
        error_paths(Kind::Workload, &container(json!({"env": {"A": "1"}}))),
        ["/spec/containers/0/env"]
    );
    let scaling = workload(json!({
        "type": "standard", "containers": [{"name": "m", "image": "x:1"}],
        "defaultOptions": {"autoscaling": {"minScale": 5, "maxScale": 2}},
    }));
    assert_eq!(
        error_paths(Kind::Workload, &scaling),
        ["/spec/defaultOptions/autoscaling/minScale"]
    );
    let cron = workload(json!({"type": "cron", "containers": [{"name": "m", "image": "x:1"}]}));
    assert_eq!(error_paths(Kind::Workload, &cron), ["/spec/job/schedule"]);
    let bad_schedule = workload(
        json!({"type": "cron", "containers": [{"name": "m", "image": "x:1"}], "job": {"schedule": "every day"}}),
    );
    // No source checks the syntax: a warning at the field.
    assert_eq!(warning_paths(Kind::Workload, &bad_schedule), ["/spec/job/schedule"]);
    let secret = json!({"kind": "secret", "name": "s", "type": "dictionary", "data": ["a"]});
    assert_eq!(error_paths(Kind::Secret, &secret), ["/data"]);
    let policy = json!({"kind": "policy", "name": "p", "targetKind": "spaceship"});
    assert_eq!(error_paths(Kind::Policy, &policy), ["/targetKind"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let body = workload(json!({
        "type": "rocket",
        "containers": [{"name": "m", "image": 3, "cpu": "lots", "ports": [{"number": 0, "protocol": "udp"}]}],
    }));
    assert_eq!(
        error_paths(Kind::Workload, &body),
        [
            "/spec/type",
            "/spec/containers/0/image",
            "/spec/containers/0/ports/0/number",
            "/spec/containers/0/ports/0/protocol",
            "/spec/containers/0/cpu"
        ]
    );
}

#[test]
fn workload_types_require_and_forbid_what_control_plane_does() {
    let two_ports = workload(json!({"type": "serverless", "containers": [
        {"name": "a", "image": "x:1", "ports": [{"number": 8080}]},
        {"name": "b", "image": "x:1", "ports": [{"number": 8081}]},
    ]}));
    assert_eq!(error_paths(Kind::Workload, &two_ports), ["/spec/containers/1/ports/0/number"]);
    let job_on_standard = workload(
        json!({"type": "standard", "containers": [{"name": "a", "image": "x:1"}], "job": {"schedule": "* * * * *"}}),
    );
    assert_eq!(error_paths(Kind::Workload, &job_on_standard), ["/spec/job"]);
    let probe_on_cron =
        workload(json!({"type": "cron", "job": {"schedule": "@daily"}, "containers": [
            {"name": "a", "image": "x:1", "livenessProbe": {"tcpSocket": {"port": 80}}},
        ]}));
    assert_eq!(error_paths(Kind::Workload, &probe_on_cron), ["/spec/containers/0/livenessProbe"]);
    let stateful = workload(
        json!({"type": "stateful", "containers": [{"name": "a", "image": "x:1"}], "rolloutOptions": {"maxUnavailableReplicas": "1"}}),
    );
    // Accepted and dropped by the API (reference §3.3): a warning only.
    assert_eq!(error_paths(Kind::Workload, &stateful), Vec::<String>::new());
    assert_eq!(
        warning_paths(Kind::Workload, &stateful),
        ["/spec/rolloutOptions/maxUnavailableReplicas"]
    );
}

/// Rules no source says the API refuses are warnings, and bounds are the
/// widest a source gives (docs/validation.md, "What refuses and what warns").
#[test]
fn what_no_source_refuses_only_warns() {
    let containers =
        |c: Value| json!([{"name": "a", "image": "x:1", "ports": [{"number": 80}]}, c]);
    let inferred = workload(json!({
        "type": "stateful",
        "containers": containers(json!({"name": "b", "image": "x:1",
            "readinessProbe": {"tcpSocket": {"port": 80}, "exec": {"command": ["true"]}},
            "livenessProbe": {"periodSeconds": 5}})),
        "defaultOptions": {"capacityAI": true},
    }));
    assert_eq!(error_paths(Kind::Workload, &inferred), Vec::<String>::new());
    assert_eq!(
        warning_paths(Kind::Workload, &inferred),
        [
            "/spec/containers/1/readinessProbe/tcpSocket",
            "/spec/containers/1/livenessProbe",
            "/spec/defaultOptions/capacityAI"
        ]
    );
    // The Terraform provider's bounds: grace period up to 3600, attempts
    // without an upper bound; a vm's volume is a disk, with no path.
    let wide = workload(json!({
        "type": "vm",
        "containers": [{"name": "a", "volumes": [{"uri": "cpln://volumeset/disk"}]}],
        "rolloutOptions": {"terminationGracePeriodSeconds": 3600},
        "requestRetryPolicy": {"attempts": 100_000},
    }));
    assert_eq!(check(Kind::Workload, &wide), []);
    let grace = workload(json!({"type": "standard", "containers": [{"name": "a", "image": "x:1"}],
        "rolloutOptions": {"terminationGracePeriodSeconds": 3601}}));
    assert_eq!(
        error_paths(Kind::Workload, &grace),
        ["/spec/rolloutOptions/terminationGracePeriodSeconds"]
    );
    let memory = workload(json!({"type": "standard",
        "containers": [{"name": "a", "image": "x:1", "memory": "128Mi", "minMemory": "256Mi"}],
        "firewallConfig": {"external": {"inboundAllowCIDR": ["10.0.0.0/33"]}}}));
    assert_eq!(error_paths(Kind::Workload, &memory), Vec::<String>::new());
    assert_eq!(
        warning_paths(Kind::Workload, &memory),
        ["/spec/containers/0/minMemory", "/spec/firewallConfig/external/inboundAllowCIDR/0"]
    );
    let secret = |kind: &str, data: Value| json!({"kind": "secret", "name": "s", "type": kind, "data": data});
    for (inferred, at) in [
        (secret("opaque", json!({"payload": "%%%", "encoding": "base64"})), "/data/payload"),
        (secret("tls", json!({"cert": "not pem"})), "/data/cert"),
        (secret("docker", json!(r#"{"credsStore": "x"}"#)), "/data"),
        (secret("azure-connector", json!({"url": "http://f", "code": "c"})), "/data/url"),
    ] {
        assert_eq!(error_paths(Kind::Secret, &inferred), Vec::<String>::new(), "{inferred}");
        assert_eq!(warning_paths(Kind::Secret, &inferred), [at], "{inferred}");
    }
    let policy = json!({"kind": "policy", "name": "p", "targetKind": "secret", "target": "all",
        "bindings": [{"permissions": [], "principalLinks": []}]});
    assert_eq!(error_paths(Kind::Policy, &policy), ["/bindings/0/principalLinks"]);
    assert_eq!(warning_paths(Kind::Policy, &policy), ["/bindings/0/permissions"]);
    let domain = json!({"kind": "domain", "name": "app.example.com", "spec": {"ports": [{"number": 443,
        "routes": [{"prefix": "/", "regex": "/.*", "workloadLink": "//gvc/g/workload/w"}]}]}});
    assert_eq!(error_paths(Kind::Domain, &domain), Vec::<String>::new());
    assert_eq!(warning_paths(Kind::Domain, &domain), ["/spec/ports/0/routes/0/regex"]);
    // Any ARN, as the Terraform provider's prefix check takes it.
    let gov = secret(
        "aws",
        json!({"accessKey": "AKIA", "secretKey": "s", "roleArn": "arn:aws-us-gov:iam::1:role/x"}),
    );
    assert_eq!(check(Kind::Secret, &gov), []);
    let huge = json!({"kind": "volumeset", "name": "v", "spec": {"initialCapacity": 70_000,
        "performanceClass": "general-purpose-ssd", "autoscaling": {"maxCapacity": 80_000}}});
    assert_eq!(error_paths(Kind::VolumeSet, &huge), Vec::<String>::new());
    assert_eq!(
        warning_paths(Kind::VolumeSet, &huge),
        ["/spec/initialCapacity", "/spec/autoscaling/maxCapacity"]
    );
}

#[test]
fn unknown_fields_warn_only_when_a_known_one_is_close() {
    let body = workload(json!({
        "containers": [{"name": "a", "image": "x:1", "ports": [{"number": 8080}]}],
        "defaultOptions": {"autoscaling": {"minScal": 1, "somethingNew": true}},
    }));
    let found = check(Kind::Workload, &body);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].severity, Severity::Warning);
    assert!(found[0].on_key);
    assert_eq!(found[0].path, "/spec/defaultOptions/autoscaling/minScal");
    assert!(found[0].help.contains("`minScale`"), "{}", found[0].help);
}

#[test]
fn secret_data_has_the_shape_of_its_type_and_is_never_quoted() {
    let secret = |kind: &str, data: Value| json!({"kind": "secret", "name": "s", "type": kind, "data": data});
    let docker = r#"{"auths": {"ghcr.io": {"auth": "eDp5"}}}"#;
    for valid in [
        secret("opaque", json!({"payload": "aGk=", "encoding": "base64"})),
        secret("dictionary", json!({"A": "1"})),
        secret("docker", json!(docker)),
        secret("gcp", json!(r#"{"type": "service_account"}"#)),
        secret("azure-sdk", json!(r#"{"subscriptionId": "x"}"#)),
        secret("aws", json!({"accessKey": "AKIA", "secretKey": "s"})),
        secret(
            "ecr",
            json!({"accessKey": "AKIA", "secretKey": "s", "repos": ["1.dkr.ecr.us-east-1.amazonaws.com/x"]}),
        ),
        secret("azure-connector", json!({"url": "https://f.azurewebsites.net", "code": "c"})),
        secret("keypair", json!({"secretKey": "k"})),
        secret(
            "tls",
            json!({"cert": "-----BEGIN CERTIFICATE-----", "key": "-----BEGIN PRIVATE KEY-----"}),
        ),
        secret("userpass", json!({"username": "u", "password": "p"})),
        secret(
            "nats-account",
            json!({"accountId": format!("A{}", "B".repeat(55)), "privateKey": format!("SA{}", "C".repeat(56))}),
        ),
    ] {
        assert_eq!(check(Kind::Secret, &valid), [], "{valid}");
    }
    let wrong = errors(Kind::Secret, &secret("dictionary", json!({"A": 12_345_678})));
    assert_eq!(wrong.len(), 1);
    assert!(!wrong[0].1.contains("12345678"), "{wrong:?}");
    let opaque_text = errors(Kind::Secret, &secret("opaque", json!("hunter2")));
    assert!(!opaque_text[0].1.contains("hunter2"), "{opaque_text:?}");
    assert_eq!(error_paths(Kind::Secret, &secret("docker", json!({"auths": {}}))), ["/data"]);
    assert_eq!(
        error_paths(Kind::Secret, &secret("userpass", json!({"username": "u"}))),
        ["/data/password"]
    );
    assert_eq!(error_paths(Kind::Secret, &secret("vault", json!({}))), ["/type"]);
}

#[test]
fn location_links_take_every_form_control_plane_writes() {
    let gvc = |links: Value| json!({"kind": "gvc", "name": "g", "spec": {"staticPlacement": {"locationLinks": links}}});
    let valid = gvc(json!([
        "//location/aws-us-east-2",
        "/org/acme/location/gcp-us-west1",
        "//location/azure-eastus2"
    ]));
    assert_eq!(check(Kind::Gvc, &valid), []);
    let wrong = gvc(json!(["aws-us-east-2", "//location/", "//gvc/x"]));
    assert_eq!(
        error_paths(Kind::Gvc, &wrong),
        ["/spec/staticPlacement/locationLinks/1", "/spec/staticPlacement/locationLinks/2"]
    );
    // A bare name: no source says the API refuses one.
    assert_eq!(warning_paths(Kind::Gvc, &wrong), ["/spec/staticPlacement/locationLinks/0"]);
}

#[test]
fn volume_sets_policies_domains_and_cloud_accounts() {
    let volume = |spec: Value| json!({"kind": "volumeset", "name": "v", "spec": spec});
    assert_eq!(
        check(
            Kind::VolumeSet,
            &volume(
                json!({"initialCapacity": 10, "performanceClass": "general-purpose-ssd", "fileSystemType": "ext4"})
            )
        ),
        []
    );
    assert_eq!(
        error_paths(
            Kind::VolumeSet,
            &volume(json!({"initialCapacity": 100, "performanceClass": "high-throughput-ssd"}))
        ),
        ["/spec/initialCapacity"]
    );
    assert_eq!(
        error_paths(
            Kind::VolumeSet,
            &volume(json!({"initialCapacity": "ten", "performanceClass": "fast"}))
        ),
        ["/spec/performanceClass", "/spec/initialCapacity"]
    );
    let policy = json!({"kind": "policy", "name": "p", "targetKind": "secret", "targetLinks": ["//secret/s"],
        "bindings": [{"permissions": ["reveal"], "principalLinks": ["//gvc/g/identity/i"]}, {"permissions": "reveal"}]});
    assert_eq!(
        error_paths(Kind::Policy, &policy),
        ["/bindings/1/permissions", "/bindings/1/principalLinks"]
    );
    let domain = json!({"kind": "domain", "name": "app.example.com", "spec": {"dnsMode": "cname", "ports": [{"number": 443, "protocol": "http2", "routes": [{"prefix": "/", "workloadLink": "//gvc/g/workload/w"}]}]}});
    assert_eq!(check(Kind::Domain, &domain), []);
    let account = json!({"kind": "cloudaccount", "name": "a", "provider": "aws", "data": {"roleArn": "arn:aws:iam::1:role/x"}});
    assert_eq!(check(Kind::CloudAccount, &account), []);
    let account = json!({"kind": "cloudaccount", "name": "a", "provider": "oracle"});
    assert_eq!(error_paths(Kind::CloudAccount, &account), ["/provider"]);
}

#[test]
fn server_fields_of_an_export_are_known() {
    let exported = json!({
        "kind": "identity", "name": "i", "id": "x", "version": 3, "created": "t", "lastModified": "t",
        "links": [], "status": {}, "gvc": "g", "description": "d", "tags": {},
    });
    assert_eq!(check(Kind::Identity, &exported), []);
}

#[test]
fn the_terraform_providers_validators_hold() {
    let gpu = workload(json!({
        "type": "standard",
        "containers": [{"name": "a", "image": "x:1", "cpu": "1", "memory": "8Gi", "gpu": {"nvidia": {"model": "t4", "quantity": 1}}}],
        "defaultOptions": {"capacityAI": true},
    }));
    assert_eq!(
        error_paths(Kind::Workload, &gpu),
        ["/spec/containers/0/gpu", "/spec/defaultOptions/capacityAI"]
    );
    let cron = workload(json!({
        "type": "cron", "job": {"schedule": "@daily"},
        "containers": [{"name": "a", "image": "x:1", "cpu": "100m", "minCpu": "50m",
            "volumes": [{"uri": "ftp://x", "path": "/data"}]}],
    }));
    assert_eq!(
        error_paths(Kind::Workload, &cron),
        ["/spec/containers/0/minCpu", "/spec/containers/0/volumes/0/uri"]
    );
    let serverless = workload(json!({
        "containers": [{"name": "a", "image": "x:1", "ports": [{"number": 8080}]}],
        "defaultOptions": {"timeoutSeconds": 900},
        "loadBalancer": {"replicaDirect": true},
    }));
    assert_eq!(
        error_paths(Kind::Workload, &serverless),
        ["/spec/defaultOptions/timeoutSeconds", "/spec/loadBalancer/replicaDirect"]
    );
    let vm = workload(json!({"type": "vm", "containers": [{"name": "a"}]}));
    assert_eq!(check(Kind::Workload, &vm), []);
    let ecr = json!({"kind": "secret", "name": "s", "type": "ecr",
        "data": {"accessKey": "a", "secretKey": "b", "repos": ["docker.io/x"]}});
    assert_eq!(error_paths(Kind::Secret, &ecr), ["/data/repos/0"]);
    let nats = json!({"kind": "secret", "name": "s", "type": "nats-account",
        "data": {"accountId": "A", "privateKey": "P"}});
    assert_eq!(error_paths(Kind::Secret, &nats), ["/data/accountId", "/data/privateKey"]);
    let account = json!({"kind": "cloudaccount", "name": "c", "provider": "aws",
        "data": {"roleArn": "arn:aws:iam::role/x"}});
    assert_eq!(error_paths(Kind::CloudAccount, &account), ["/data/roleArn"]);
    let identity = json!({"kind": "identity", "name": "i",
        "networkResources": [{"name": "db", "IPs": ["10.0.0.1"], "FQDN": "db.local", "ports": []}]});
    assert_eq!(
        error_paths(Kind::Identity, &identity),
        ["/networkResources/0/FQDN", "/networkResources/0/ports"]
    );
    let gvc = json!({"kind": "gvc", "name": "g", "spec": {"staticPlacement": {
        "locationLinks": ["//location/aws-us-east-2"],
        "locationOptions": [{"locationLink": "aws-us-east-2", "routingTier": -1}]}}});
    assert_eq!(
        error_paths(Kind::Gvc, &gvc),
        ["/spec/staticPlacement/locationOptions/0/routingTier"]
    );
}

#[test]
fn values_kept_out_of_git_are_not_judged_by_shape() {
    use crate::manifest::kept_secret::KEEP_LIVE;
    let secret = |kind: &str, data: Value| json!({"kind": "secret", "name": "s", "type": kind, "data": data});
    for kept in [
        secret("docker", json!(KEEP_LIVE)),
        secret("tls", json!({"cert": KEEP_LIVE, "key": KEEP_LIVE})),
        secret("opaque", json!({"payload": KEEP_LIVE, "encoding": "base64"})),
    ] {
        assert_eq!(check(Kind::Secret, &kept), [], "{kept}");
    }
    assert_eq!(error_paths(Kind::Secret, &secret("docker", json!("not json"))), ["/data"]);
}

/// Issue 20: `cpu: 1e29` was accepted. Quantities are read as the API
/// reads them: text only, within the Terraform provider's pattern and
/// length; an amount no machine has is a warning (no source states a
/// maximum).
#[test]
fn quantities_are_quoted_text_the_api_takes() {
    let container = |key: &str, value: Value| {
        let mut c = json!({"name": "main", "image": "x:1", "cpu": "250m", "memory": "256Mi"});
        c[key] = value;
        workload(json!({"type": "standard", "containers": [c]}))
    };
    let messages = |body: &Value, severity: Severity| -> Vec<(String, String, String)> {
        check(Kind::Workload, body)
            .into_iter()
            .filter(|v| v.severity == severity)
            .map(|v| (v.path, v.message, v.help))
            .collect()
    };
    // A YAML number: the API's field is a string. One whose text is a
    // quantity is a warning (quote it); any other, an error.
    for (key, number) in [
        ("cpu", json!(1e29)),
        ("cpu", json!(2)),
        ("memory", json!(1_073_741_824)),
        ("minCpu", json!(0.1)),
    ] {
        let body = container(key, number.clone());
        let errors = messages(&body, Severity::Error);
        assert!(errors.iter().all(|(path, ..)| !path.ends_with(key)), "{key}: {errors:?}");
        let found = messages(&body, Severity::Warning);
        let said = found.iter().find(|(_, message, _)| message.contains("not text"));
        let Some((path, message, help)) = said else { panic!("{key}: {found:?}") };
        assert_eq!(path, &format!("/spec/containers/0/{key}"));
        assert!(message.ends_with(&format!("is the number {number}, not text")), "{message}");
        assert!(help.contains(&format!("`{key}: \"{number}\"`")), "{help}");
    }
    // 1e29 cores: a number, and more than any machine has.
    let found = messages(&container("cpu", json!(1e29)), Severity::Warning);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        messages(&container("cpu", json!(123_456_789_012_345_678_901_234.0)), Severity::Error)[0].1,
        "spec.containers[0].cpu must be a quantity in quotes, such as `\"250m\"`, found the number 1.2345678901234569e+23"
    );
    // What the provider's pattern or length refuses, Kubernetes form or not.
    for text in ["1 Gi", "12MB", "0.0000000000000000001", "0x10"] {
        let found = messages(&container("memory", json!(text)), Severity::Error);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
        assert_eq!(found[0].0, "/spec/containers/0/memory", "{text}");
    }
    assert!(
        messages(&container("cpu", json!("0.0000000000000000001")), Severity::Error)[0]
            .1
            .ends_with("is longer than 20 characters")
    );
    // Quoted, within the pattern, but more than any machine has: a warning.
    for (key, text) in [("cpu", "1e29"), ("cpu", "4096"), ("memory", "64Ti"), ("memory", "1e400")] {
        let body = container(key, json!(text));
        assert_eq!(messages(&body, Severity::Error), [], "{key}: {text}");
        let found = messages(&body, Severity::Warning);
        let [(path, message, _)] = found.as_slice() else { panic!("{text}: {found:?}") };
        assert_eq!(path, &format!("/spec/containers/0/{key}"));
        assert!(message.contains(&format!("`{text}`, more than")), "{message}");
    }
    // The largest a machine has, and everyday quantities, are fine (32Ti
    // on 2048 cores only breaks the memory-to-CPU ratio, another rule).
    for (key, text) in [("cpu", "2048"), ("cpu", "2"), ("memory", "32Ti"), ("memory", "1.5e9")] {
        let found = check(Kind::Workload, &container(key, json!(text)));
        assert!(found.iter().all(|v| !v.message.contains("`, more than")), "{text}: {found:?}");
        assert_eq!(messages(&container(key, json!(text)), Severity::Error), [], "{text}");
    }
}
