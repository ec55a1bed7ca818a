//! `kind: workload`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::quantity::{self, Resource};
use super::{Checker, Ptr, cron, env, port, top_level};

/// Workload types (types-go `workload.WorkloadType`; the Terraform
/// provider's `type` validator, which also lists `vm`).
const TYPES: [&str; 5] = ["serverless", "standard", "cron", "stateful", "vm"];

const SPEC_FIELDS: [&str; 15] = [
    "type",
    "identityLink",
    "containers",
    "firewallConfig",
    "defaultOptions",
    "localOptions",
    "job",
    "sidecar",
    "supportDynamicTags",
    "rolloutOptions",
    "securityOptions",
    "loadBalancer",
    "extras",
    "requestRetryPolicy",
    "vm",
];

const CONTAINER_FIELDS: [&str; 21] = [
    "name",
    "image",
    "workingDir",
    "metrics",
    "port",
    "ports",
    "memory",
    "readinessProbe",
    "livenessProbe",
    "cpu",
    "minCpu",
    "minMemory",
    "env",
    "gpu",
    "inheritEnv",
    "command",
    "args",
    "lifecycle",
    "volumes",
    "securityOptions",
    "resources",
];

pub(super) fn check(c: &mut Checker, root: &Ptr, body: &Value) {
    let Some(doc) = c.mapping(root, body, &top_level(&["spec"])) else { return };
    let Some(spec_value) = c.required(doc, root, "spec", "a workload needs `spec.containers`")
    else {
        return;
    };
    let at = root.key("spec");
    let Some(spec) = c.mapping(&at, spec_value, &SPEC_FIELDS) else { return };
    let kind = c.field(spec, &at, "type", |c, at, v| c.one_of(at, v, &TYPES)).flatten();
    // Without a valid type, the type-specific rules cannot be judged.
    let kind = match (spec.get("type"), kind) {
        (None | Some(Value::Null), _) => Some("serverless".to_owned()),
        (_, kind) => kind,
    };
    let kind = kind.as_deref();
    c.field(spec, &at, "identityLink", |c, at, v| super::link(c, at, v, "identity"));
    c.field(spec, &at, "supportDynamicTags", Checker::boolean);
    containers(c, spec, &at, kind);
    let gpu = spec
        .get("containers")
        .and_then(Value::as_array)
        .is_some_and(|items| items.iter().any(|i| i.get("gpu").is_some_and(|g| !g.is_null())));
    let facts = Facts { kind, gpu };
    c.field(spec, &at, "defaultOptions", |c, at, v| options(c, at, v, &facts, false));
    c.each(
        spec,
        &at,
        "localOptions",
        "write one `- location: …` item per location",
        |c, at, v| {
            options(c, at, v, &facts, true);
        },
    );
    job(c, spec, &at, kind);
    c.field(spec, &at, "firewallConfig", firewall);
    c.field(spec, &at, "rolloutOptions", |c, at, v| rollout(c, at, v, kind));
    c.field(spec, &at, "securityOptions", |c, at, v| {
        let Some(security) = c.mapping(at, v, &["filesystemGroupId", "runAsUser"]) else { return };
        for key in ["filesystemGroupId", "runAsUser"] {
            c.field(security, at, key, |c, at, v| c.integer(at, v, 1, 65_534));
        }
    });
    c.field(spec, &at, "loadBalancer", load_balancer);
    let replica_direct = spec.get("loadBalancer").and_then(|b| b.get("replicaDirect"));
    if replica_direct.and_then(Value::as_bool) == Some(true)
        && kind.is_some_and(|k| k != "stateful")
    {
        c.error(
            &at.key("loadBalancer").key("replicaDirect"),
            "`replicaDirect` reaches the replicas of a stateful workload only".to_owned(),
            "use `type: stateful`, or remove `replicaDirect`",
        );
    }
    c.field(spec, &at, "requestRetryPolicy", |c, at, v| {
        let Some(policy) = c.mapping(at, v, &["attempts", "retryOn"]) else { return };
        c.field(policy, at, "attempts", |c, at, v| c.integer(at, v, 0, i64::MAX));
        c.field(policy, at, "retryOn", Checker::strings);
    });
}

fn containers(c: &mut Checker, spec: &Map<String, Value>, at: &Ptr, kind: Option<&str>) {
    const HELP: &str = "write containers as a list: `- name: main` with `image: …` under it";
    let Some(value) = c.required(spec, at, "containers", HELP) else { return };
    c.at_most(spec, at, "containers", 8, "split the workload");
    let at = at.key("containers");
    let Some(items) = c.list(&at, value, HELP) else { return };
    if items.is_empty() {
        c.error(&at, format!("{at} is empty"), "a workload runs at least one container");
    }

    let mut ports: HashMap<i64, Ptr> = HashMap::new();
    let mut exposed = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let at = at.index(index);
        let Some(container) = c.mapping(&at, item, &CONTAINER_FIELDS) else { continue };
        if let Some(name) = c.required(container, &at, "name", "every container needs a `name`") {
            c.string(&at.key("name"), name);
        }
        // A `vm` workload boots from `spec.vm`, not from an image.
        if kind == Some("vm") {
            c.field(container, &at, "image", Checker::string);
        } else if let Some(image) =
            c.required(container, &at, "image", "every container needs an `image`")
        {
            c.string(&at.key("image"), image);
        }
        for (number, where_) in container_ports(c, container, &at) {
            if let Some(first) = ports.insert(number, where_.clone()) {
                c.error(
                    &where_,
                    format!("port {number} is exposed twice ({first} and {where_})"),
                    "port numbers must be unique across the workload's containers",
                );
            }
            exposed.push(where_);
        }
        let (cpu, memory) = resources(c, container, &at, kind);
        if container.get("gpu").is_some_and(|g| !g.is_null())
            && (cpu.is_some_and(|m| m < 2000.0) || memory.is_some_and(|m| m < 7000.0))
        {
            c.error(
                &at.key("gpu"),
                format!("{at} asks for a GPU with less than 2 CPU cores or 7Gi of memory"),
                "a GPU container reserves at least `cpu: \"2\"` and `memory: 7Gi`",
            );
        }
        c.field(container, &at, "env", env);
        c.field(container, &at, "inheritEnv", Checker::boolean);
        c.field(container, &at, "command", Checker::string);
        c.field(container, &at, "args", Checker::strings);
        c.field(container, &at, "workingDir", |c, at, v| {
            if let Some(dir) = c.string(at, v).filter(|d| !d.starts_with('/')) {
                c.error(
                    at,
                    format!("{at} is `{dir}`, not an absolute path"),
                    "start the path with `/`",
                );
            }
        });
        for probe_key in ["readinessProbe", "livenessProbe"] {
            c.field(container, &at, probe_key, |c, at, v| {
                if kind == Some("cron") {
                    c.error(
                        at,
                        format!("{at}: a cron workload has no probes"),
                        "remove the probe; cron jobs run to completion",
                    );
                } else {
                    probe(c, at, v);
                }
            });
        }
        c.each(
            container,
            &at,
            "volumes",
            "write volumes as a list of `uri`/`path` items",
            |c, at, v| {
                volume(c, at, v, kind);
            },
        );
        c.at_most(container, &at, "volumes", 15, "mount fewer volumes, or split the container");
        c.field(container, &at, "metrics", |c, at, v| {
            let Some(metrics) = c.mapping(at, v, &["port", "path", "dropMetrics"]) else { return };
            if let Some(p) = c.required(metrics, at, "port", "the port the metrics are served on") {
                c.integer(&at.key("port"), p, 1, 65_535);
            }
            if let Some(p) = c.required(metrics, at, "path", "the path the metrics are served on") {
                c.string(&at.key("path"), p);
            }
        });
        c.field(container, &at, "gpu", |c, at, v| {
            let Some(gpu) = c.mapping(at, v, &["nvidia", "custom"]) else { return };
            c.field(gpu, at, "nvidia", |c, at, v| {
                let Some(nvidia) = c.mapping(at, v, &["model", "quantity"]) else { return };
                c.field(nvidia, at, "model", |c, at, v| c.one_of(at, v, &["t4", "a10g"]));
                c.field(nvidia, at, "quantity", |c, at, v| c.integer(at, v, 0, 4));
            });
        });
    }
    if kind == Some("serverless") && exposed.len() > 1 {
        c.error(
            &exposed[1],
            format!("a serverless workload exposes exactly one port, found {}", exposed.len()),
            "keep one port, or use `type: standard` for several",
        );
    }
}

/// The port numbers a container exposes, with where each is written.
fn container_ports(c: &mut Checker, container: &Map<String, Value>, at: &Ptr) -> Vec<(i64, Ptr)> {
    let mut found = Vec::new();
    if container.contains_key("port") && container.contains_key("ports") {
        c.error(
            &at.key("port"),
            format!("{at} has both `port` and `ports`"),
            "`port` is the old form; list the port under `ports` only",
        );
    }
    if let Some(number) = c.field(container, at, "port", port).flatten() {
        found.push((number, at.key("port")));
    }
    c.each(
        container,
        at,
        "ports",
        "write ports as a list: `- number: 8080` with `protocol: http`",
        |c, at, item| {
            let Some(entry) = c.mapping(at, item, &["number", "protocol"]) else { return };
            if let Some(number) = c.required(entry, at, "number", "every port needs a `number`") {
                let where_ = at.key("number");
                if let Some(number) = port(c, &where_, number) {
                    found.push((number, where_));
                }
            }
            c.field(entry, at, "protocol", |c, at, v| {
                c.one_of(at, v, &["http", "http2", "grpc", "tcp"])
            });
        },
    );
    found
}

/// cpu, memory, minCpu, minMemory: quoted quantities Control Plane takes,
/// platform minimums, minimums not above the maximums, the memory-to-CPU
/// ratio, and no more than a machine has. Returns the CPU (millicores) and
/// memory (MiB) reserved, when readable.
fn resources(
    c: &mut Checker,
    container: &Map<String, Value>,
    at: &Ptr,
    kind: Option<&str>,
) -> (Option<f64>, Option<f64>) {
    let quantity_at = |c: &mut Checker, key: &str, resource: Resource, example: &str| {
        c.field(container, at, key, |c, at, v| quantity(c, at, key, v, resource, example)).flatten()
    };
    let cpu = quantity_at(c, "cpu", Resource::Cpu, "250m");
    let memory = quantity_at(c, "memory", Resource::Memory, "256Mi");
    let min_cpu = quantity_at(c, "minCpu", Resource::Cpu, "100m");
    let min_memory = quantity_at(c, "minMemory", Resource::Memory, "128Mi");
    if kind == Some("cron") {
        for key in ["minCpu", "minMemory"].into_iter().filter(|k| container.contains_key(*k)) {
            c.error(
                &at.key(key),
                format!(
                    "{}: a cron workload has no minimum (Capacity AI does not run jobs)",
                    at.key(key)
                ),
                "remove it; a job reserves `cpu` and `memory`",
            );
        }
    }
    if let Some(cpu) = cpu.filter(|m| *m < 25.0) {
        c.error(
            &at.key("cpu"),
            format!("{} is {cpu}m, below the minimum of 25m", at.key("cpu")),
            "reserve at least `25m`",
        );
    }
    if let Some(memory) = memory.filter(|m| *m < 32.0) {
        c.error(
            &at.key("memory"),
            format!("{} is {memory:.1}Mi, below the minimum of 32Mi", at.key("memory")),
            "reserve at least `32Mi`",
        );
    }
    if let (Some(min), Some(max)) = (min_cpu, cpu)
        && min > max
    {
        c.error(
            &at.key("minCpu"),
            format!("{} is above {}", at.key("minCpu"), at.key("cpu")),
            "the minimum CPU cannot exceed `cpu`",
        );
    }
    // The reference states `minCpu ≤ cpu` only; this one is inferred.
    if let (Some(min), Some(max)) = (min_memory, memory)
        && min > max
    {
        c.warn(
            &at.key("minMemory"),
            format!("{} is above {}", at.key("minMemory"), at.key("memory")),
            "the minimum memory cannot exceed `memory`",
        );
    }
    if let (Some(cpu), Some(memory)) = (cpu, memory)
        && memory / cpu > 8.0
    {
        c.warn(
            &at.key("memory"),
            format!("{} is more than 8 MiB per millicore of {}", at.key("memory"), at.key("cpu")),
            "Control Plane refuses a memory-to-CPU ratio above 8 (Mi per m) unless the workload is tagged `cpln/relaxMemoryToCpuRatio`",
        );
    }
    (cpu, memory)
}

/// One of `cpu`, `memory`, `minCpu`, `minMemory` (`key`), holding `value`:
/// its amount (millicores or MiB) when it is one Control Plane takes.
fn quantity(
    c: &mut Checker,
    at: &Ptr,
    key: &str,
    value: &Value,
    resource: Resource,
    example: &str,
) -> Option<f64> {
    let help = format!("write a quantity such as `{example}`");
    let text = match value {
        Value::String(text) => text.clone(),
        // The API's field is a string; `cpln apply` sends a YAML number
        // as a JSON number, unconverted. Whether the API then reads it as
        // its text is not known [assumed]: a number whose text is a
        // quantity (`cpu: 2`) is a warning, any other (`cpu: 1e29`) an
        // error.
        Value::Number(n) => {
            let text = n.to_string();
            let quote = format!(
                "quote it (`{key}: \"{n}\"`): Control Plane reads `{key}` as text, and a YAML number reaches it as a number"
            );
            if !quantity::provider_takes(&text) || resource.amount(&text).is_err() {
                c.wrong_type(
                    at,
                    value,
                    &format!("a quantity in quotes, such as `\"{example}\"`"),
                    &quote,
                );
                return None;
            }
            c.warn(at, format!("{at} is the number {n}, not text"), quote);
            text
        }
        _ => {
            c.error(at, format!("{at}: {}", resource.not_text()), help);
            return None;
        }
    };
    let text = text.as_str();
    let amount = resource.amount(text);
    if !quantity::provider_takes(text) {
        let reason = match &amount {
            Err(reason) => reason.clone(),
            Ok(_) => format!("`{text}` is longer than 20 characters"),
        };
        c.error(at, format!("{at}: {reason}"), help);
        return None;
    }
    let (most, most_text) = resource.most();
    match amount {
        Ok(amount) if amount <= 0.0 => {
            c.error(at, format!("{at} must be more than zero"), help);
            None
        }
        // Assumed (no source states a maximum), so a warning: whether the
        // API refuses it or not, no replica could ever be placed.
        Ok(amount) if amount > most => {
            c.warn(
                at,
                format!("{at} is `{text}`, more than {most_text}: no machine a replica runs on has that much"),
                format!("{help}; check the unit (`m` for millicores, `Mi` or `Gi` for memory)"),
            );
            None
        }
        Ok(amount) => Some(amount),
        // What the Terraform provider's validator takes is only a warning
        // when Kubernetes would not read it.
        Err(reason) => {
            c.warn(at, format!("{at}: {reason}"), help);
            None
        }
    }
}

fn probe(c: &mut Checker, at: &Ptr, value: &Value) {
    const KINDS: [&str; 4] = ["exec", "httpGet", "tcpSocket", "grpc"];
    let known = [
        &KINDS[..],
        &[
            "initialDelaySeconds",
            "periodSeconds",
            "timeoutSeconds",
            "successThreshold",
            "failureThreshold",
        ],
    ]
    .concat();
    let Some(probe) = c.mapping(at, value, &known) else { return };
    let given: Vec<&str> = KINDS.iter().copied().filter(|k| probe.contains_key(*k)).collect();
    // Inferred from Kubernetes' probe rule (one handler): the Terraform
    // provider's check is commented out, so a warning.
    match given.as_slice() {
        [] => c.warn(
            at,
            format!("{at} says neither how to probe"),
            "add one of `exec`, `httpGet`, `tcpSocket` or `grpc`",
        ),
        [_] => {}
        [_, second, ..] => c.warn(
            &at.key(second),
            format!("{at} has several probe kinds ({})", given.join(", ")),
            "keep exactly one of `exec`, `httpGet`, `tcpSocket`, `grpc`",
        ),
    }
    for (key, min, max) in [
        ("initialDelaySeconds", 0, 600),
        ("periodSeconds", 1, 600),
        ("timeoutSeconds", 1, 600),
        ("successThreshold", 1, 20),
        ("failureThreshold", 1, 20),
    ] {
        c.field(probe, at, key, |c, at, v| c.integer(at, v, min, max));
    }
    c.field(probe, at, "exec", |c, at, v| {
        let Some(exec) = c.mapping(at, v, &["command"]) else { return };
        if let Some(command) = c.required(exec, at, "command", "the command to run, as a list") {
            c.strings(&at.key("command"), command);
        }
    });
    for key in ["tcpSocket", "grpc"] {
        c.field(probe, at, key, |c, at, v| {
            let Some(target) = c.mapping(at, v, &["port"]) else { return };
            c.field(target, at, "port", |c, at, v| c.integer(at, v, 1, 65_535));
        });
    }
    c.field(probe, at, "httpGet", |c, at, v| {
        let Some(get) = c.mapping(at, v, &["path", "port", "httpHeaders", "scheme"]) else {
            return;
        };
        c.field(get, at, "path", Checker::string);
        c.field(get, at, "port", |c, at, v| c.integer(at, v, 1, 65_535));
        c.field(get, at, "scheme", |c, at, v| c.one_of(at, v, &["HTTP", "HTTPS"]));
        c.each(get, at, "httpHeaders", "a list of `name`/`value` items", |c, at, v| {
            let Some(header) = c.mapping(at, v, &["name", "value"]) else { return };
            for key in ["name", "value"] {
                if let Some(text) =
                    c.required(header, at, key, "a header has a `name` and a `value`")
                {
                    c.string(&at.key(key), text);
                }
            }
        });
    });
}

fn volume(c: &mut Checker, at: &Ptr, value: &Value, kind: Option<&str>) {
    const RESERVED: [&str; 5] = ["/dev", "/dev/log", "/tmp", "/var", "/var/log"];
    let Some(volume) = c.mapping(at, value, &["uri", "path", "recoveryPolicy"]) else { return };
    if let Some(uri) = c.required(
        volume,
        at,
        "uri",
        "what to mount: `cpln://volumeset/NAME`, `cpln://secret/NAME`, `s3://…`",
    ) {
        const SCHEMES: [&str; 7] = ["s3", "gs", "azureblob", "azurefs", "cpln", "scratch", "k8s"];
        let at = at.key("uri");
        if let Some(uri) = c.string(&at, uri) {
            let scheme_ok = uri
                .split_once("://")
                .is_some_and(|(scheme, rest)| SCHEMES.contains(&scheme) && !rest.is_empty());
            if !scheme_ok {
                c.error(
                    &at,
                    format!("{at} is `{uri}`, not a volume URI"),
                    "write `cpln://volumeset/NAME`, `cpln://secret/NAME`, `scratch://NAME`, or an `s3://`, `gs://`, `azureblob://`, `azurefs://` bucket",
                );
            }
        }
    }
    // A `vm` workload attaches the volume as a disk: no `path` (the
    // Terraform provider's `volume.path`, "rejected for `vm` workloads").
    let path = if kind == Some("vm") {
        volume.get("path").filter(|p| !p.is_null())
    } else {
        c.required(volume, at, "path", "where to mount it, an absolute path")
    };
    if let Some(path) = path {
        let at = at.key("path");
        if let Some(path) = c.string(&at, path) {
            if !path.starts_with('/') {
                c.error(
                    &at,
                    format!("{at} is `{path}`, not an absolute path"),
                    "start the path with `/`",
                );
            } else if RESERVED.contains(&path.trim_end_matches('/')) {
                c.error(
                    &at,
                    format!("{at} is `{path}`, a path the platform reserves"),
                    "reserved mount paths: /dev, /dev/log, /tmp, /var, /var/log",
                );
            }
        }
    }
    c.field(volume, at, "recoveryPolicy", |c, at, v| c.one_of(at, v, &["retain", "recycle"]));
}

const OPTION_FIELDS: [&str; 9] = [
    "autoscaling",
    "timeoutSeconds",
    "capacityAI",
    "capacityAIUpdateMinutes",
    "spot",
    "debug",
    "suspend",
    "multiZone",
    "location",
];

/// What the options of a workload are judged against.
struct Facts<'a> {
    kind: Option<&'a str>,
    /// A container asks for a GPU.
    gpu: bool,
}

fn options(c: &mut Checker, at: &Ptr, value: &Value, facts: &Facts<'_>, local: bool) {
    let kind = facts.kind;
    let known = if local { &OPTION_FIELDS[..] } else { &OPTION_FIELDS[..8] };
    let Some(options) = c.mapping(at, value, known) else { return };
    if local
        && let Some(location) = c.required(
            options,
            at,
            "location",
            "the location these options apply to, `//location/NAME`",
        )
    {
        // The API reference writes a bare name here, the CLI a link.
        let at = at.key("location");
        if let Some(text) = c.string(&at, location) {
            super::location(c, &at, text, true);
        }
    }
    let most = if kind == Some("serverless") { 600 } else { 3600 };
    c.field(options, at, "timeoutSeconds", |c, at, v| c.integer(at, v, 1, most));
    c.field(options, at, "capacityAIUpdateMinutes", |c, at, v| c.integer(at, v, 2, i64::MAX));
    for key in ["capacityAI", "spot", "debug", "suspend"] {
        c.field(options, at, key, Checker::boolean);
    }
    c.field(options, at, "multiZone", |c, at, v| {
        let Some(zone) = c.mapping(at, v, &["enabled"]) else { return };
        c.field(zone, at, "enabled", Checker::boolean);
    });
    let capacity_ai = options.get("capacityAI").and_then(Value::as_bool) == Some(true);
    // Inferred (Capacity AI is off by default on stateful workloads, and
    // Control Plane's own examples set it there): a warning.
    if capacity_ai && kind == Some("stateful") {
        c.warn(
            &at.key("capacityAI"),
            format!("{} is true for a stateful workload", at.key("capacityAI")),
            "Capacity AI may not resize a stateful workload's replicas; set it to false unless you mean it",
        );
    }
    if capacity_ai && facts.gpu {
        c.error(
            &at.key("capacityAI"),
            format!("{} is true for a workload with a GPU", at.key("capacityAI")),
            "Capacity AI cannot be enabled for workloads with a GPU; set it to false",
        );
    }
    c.field(options, at, "autoscaling", |c, at, v| autoscaling(c, at, v, kind, capacity_ai));
}

fn autoscaling(c: &mut Checker, at: &Ptr, value: &Value, kind: Option<&str>, capacity_ai: bool) {
    const METRICS: [&str; 7] =
        ["concurrency", "cpu", "memory", "rps", "latency", "keda", "disabled"];
    let known = [
        "metric",
        "multi",
        "metricPercentile",
        "target",
        "maxScale",
        "minScale",
        "scaleToZeroDelay",
        "maxConcurrency",
        "keda",
    ];
    let Some(scaling) = c.mapping(at, value, &known) else { return };
    let metric = c.field(scaling, at, "metric", |c, at, v| c.one_of(at, v, &METRICS)).flatten();
    c.field(scaling, at, "metricPercentile", |c, at, v| c.one_of(at, v, &["p50", "p75", "p99"]));
    let target_max = if matches!(metric.as_deref(), Some("cpu" | "memory")) { 100 } else { 20_000 };
    c.field(scaling, at, "target", |c, at, v| c.integer(at, v, 1, target_max));
    let min = c.field(scaling, at, "minScale", |c, at, v| c.integer(at, v, 0, i64::MAX)).flatten();
    let max = c.field(scaling, at, "maxScale", |c, at, v| c.integer(at, v, 0, i64::MAX)).flatten();
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        c.error(
            &at.key("minScale"),
            format!("{} is {min}, above maxScale {max}", at.key("minScale")),
            "minScale must not exceed maxScale",
        );
    }
    c.field(scaling, at, "scaleToZeroDelay", |c, at, v| c.integer(at, v, 30, 3600));
    c.field(scaling, at, "maxConcurrency", |c, at, v| c.integer(at, v, 0, 30_000));
    let multi = scaling.contains_key("multi");
    c.each(scaling, at, "multi", "a list of `metric`/`target` items", |c, at, v| {
        let Some(entry) = c.mapping(at, v, &["metric", "target"]) else { return };
        c.field(entry, at, "metric", |c, at, v| c.one_of(at, v, &["cpu", "memory", "rps"]));
        c.field(entry, at, "target", |c, at, v| c.integer(at, v, 1, 20_000));
    });
    if multi {
        for key in ["metric", "target"].into_iter().filter(|k| scaling.contains_key(*k)) {
            c.error(
                &at.key(key),
                format!("{} cannot be used with `multi`", at.key(key)),
                "list each metric and its target under `multi`, or drop `multi`",
            );
        }
    }
    if metric.as_deref() == Some("latency") && !scaling.contains_key("metricPercentile") {
        c.warn(
            &at.key("metric"),
            format!("{} is latency without a metricPercentile", at.key("metric")),
            "add `metricPercentile: p50`, `p75` or `p99` (Control Plane uses p50)",
        );
    }
    let keda = metric.as_deref() == Some("keda") || scaling.contains_key("keda");
    if metric.as_deref() == Some("keda") && scaling.contains_key("target") {
        c.error(
            &at.key("target"),
            format!("{} is not used with the keda metric", at.key("target")),
            "KEDA's triggers say when to scale; remove `target`",
        );
    }
    if keda && !matches!(kind, Some("standard" | "stateful")) {
        c.error(
            &at.key("metric"),
            "KEDA autoscaling needs a standard or stateful workload".to_owned(),
            "use `type: standard` or another metric",
        );
    }
    if capacity_ai && (metric.as_deref() == Some("cpu") || multi) {
        c.error(
            &at.key("metric"),
            "Capacity AI cannot be combined with the cpu metric or `multi`".to_owned(),
            "set `capacityAI: false`, or scale on another metric",
        );
    }
    if metric.as_deref() == Some("concurrency") && matches!(kind, Some("standard" | "stateful")) {
        c.warn(
            &at.key("metric"),
            format!(
                "{} is concurrency, which only serverless workloads scale on",
                at.key("metric")
            ),
            "use cpu, memory, rps or latency",
        );
    }
}

fn job(c: &mut Checker, spec: &Map<String, Value>, at: &Ptr, kind: Option<&str>) {
    let job = spec.get("job").filter(|v| !v.is_null());
    match (kind, job) {
        (Some("cron"), None) => {
            c.error(
                &at.key("job").key("schedule"),
                "a cron workload needs `spec.job.schedule`".to_owned(),
                "add `job:` with `schedule: \"0 * * * *\"` (a cron expression)",
            );
            return;
        }
        (Some(other), Some(_)) if other != "cron" => {
            c.error(
                &at.key("job"),
                format!("a {other} workload has no `job`"),
                "remove `job`, or use `type: cron`",
            );
            return;
        }
        _ => {}
    }
    let Some(job) = job else { return };
    let at = at.key("job");
    let known =
        ["schedule", "concurrencyPolicy", "historyLimit", "restartPolicy", "activeDeadlineSeconds"];
    let Some(job) = c.mapping(&at, job, &known) else { return };
    if let Some(schedule) =
        c.required(job, &at, "schedule", "a cron expression such as `*/5 * * * *`")
    {
        let at = at.key("schedule");
        if let Some(text) = c.string(&at, schedule)
            && let Err(reason) = cron::check(text)
        {
            // The Terraform provider describes the syntax but checks none:
            // a warning.
            c.warn(&at, format!("{at} `{text}`: {reason}"), "write five fields (minute hour day-of-month month day-of-week), such as `0 3 * * *`");
        }
    }
    c.field(job, &at, "concurrencyPolicy", |c, at, v| {
        c.one_of(at, v, &["Forbid", "Replace", "Allow"])
    });
    c.field(job, &at, "restartPolicy", |c, at, v| c.one_of(at, v, &["OnFailure", "Never"]));
    c.field(job, &at, "historyLimit", |c, at, v| c.integer(at, v, 1, 10));
    c.field(job, &at, "activeDeadlineSeconds", |c, at, v| c.integer(at, v, 1, 86_400));
}

fn firewall(c: &mut Checker, at: &Ptr, value: &Value) {
    let Some(firewall) = c.mapping(at, value, &["external", "internal"]) else { return };
    c.field(firewall, at, "external", |c, at, v| {
        let cidrs =
            ["inboundAllowCIDR", "inboundBlockedCIDR", "outboundAllowCIDR", "outboundBlockedCIDR"];
        let known = [&cidrs[..], &["outboundAllowHostname", "outboundAllowPort", "http"]].concat();
        let Some(external) = c.mapping(at, v, &known) else { return };
        for key in cidrs {
            c.field(external, at, key, |c, at, v| {
                for (at, text) in c.strings(at, v) {
                    // The Terraform provider checks no address syntax: a
                    // warning.
                    if !is_cidr(text) {
                        c.warn(
                            &at,
                            format!("{at} is `{text}`, not an IP address or CIDR range"),
                            "write an address such as `203.0.113.7` or a range such as `0.0.0.0/0`",
                        );
                    }
                }
            });
        }
        c.field(external, at, "outboundAllowHostname", Checker::strings);
        c.each(
            external,
            at,
            "outboundAllowPort",
            "a list of `number`/`protocol` items",
            |c, at, v| {
                let Some(entry) = c.mapping(at, v, &["number", "protocol"]) else { return };
                if let Some(number) = c.required(entry, at, "number", "the port number") {
                    c.integer(&at.key("number"), number, 1, 65_000);
                }
                c.field(entry, at, "protocol", |c, at, v| {
                    c.one_of(at, v, &["http", "https", "tcp"])
                });
            },
        );
    });
    c.field(firewall, at, "internal", |c, at, v| {
        let Some(internal) = c.mapping(at, v, &["inboundAllowType", "inboundAllowWorkload"]) else {
            return;
        };
        let kind = c
            .field(internal, at, "inboundAllowType", |c, at, v| {
                c.one_of(at, v, &["none", "same-gvc", "same-org", "workload-list"])
            })
            .flatten();
        c.field(internal, at, "inboundAllowWorkload", Checker::strings);
        if kind.as_deref() == Some("workload-list")
            && !internal.contains_key("inboundAllowWorkload")
        {
            c.warn(
                &at.key("inboundAllowWorkload"),
                "`workload-list` without `inboundAllowWorkload` lets no workload in".to_owned(),
                "list the workloads allowed, as `//gvc/GVC/workload/NAME` links",
            );
        }
    });
}

/// An IPv4 or IPv6 address, optionally with a prefix length.
fn is_cidr(text: &str) -> bool {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let Ok(address) = address.parse::<std::net::IpAddr>() else { return false };
    let bits = if address.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= bits))
}

fn rollout(c: &mut Checker, at: &Ptr, value: &Value, kind: Option<&str>) {
    let known = [
        "minReadySeconds",
        "maxUnavailableReplicas",
        "maxSurgeReplicas",
        "scalingPolicy",
        "terminationGracePeriodSeconds",
    ];
    let Some(rollout) = c.mapping(at, value, &known) else { return };
    c.field(rollout, at, "minReadySeconds", |c, at, v| {
        // A whole number (types-go); no source gives a lower bound.
        if c.integer(at, v, i64::MIN, i64::MAX).is_some_and(|n| n < 0) {
            c.warn(at, format!("{at} is negative"), "use 0 or more seconds");
        }
    });
    c.field(rollout, at, "terminationGracePeriodSeconds", |c, at, v| c.integer(at, v, 0, 3600));
    c.field(rollout, at, "scalingPolicy", |c, at, v| {
        c.one_of(at, v, &["OrderedReady", "Parallel"])
    });
    for key in ["maxUnavailableReplicas", "maxSurgeReplicas"] {
        c.field(rollout, at, key, |c, at, v| {
            if !(v.is_string() || v.is_u64()) {
                c.wrong_type(
                    at,
                    v,
                    "a number or a percentage",
                    "write a count such as `1` or a percentage such as `\"25%\"`",
                );
            }
        });
    }
    // The API accepts the field on a stateful workload and drops it
    // (reference §3.3); the Terraform provider refuses it client side.
    if kind == Some("stateful") && rollout.contains_key("maxUnavailableReplicas") {
        c.warn(
            &at.key("maxUnavailableReplicas"),
            format!(
                "{}: Control Plane accepts it on a stateful workload and drops it",
                at.key("maxUnavailableReplicas")
            ),
            "stateful replicas roll one by one (`scalingPolicy`); remove the field, which the live workload will not have",
        );
    }
}

fn load_balancer(c: &mut Checker, at: &Ptr, value: &Value) {
    let Some(balancer) = c.mapping(at, value, &["direct", "geoLocation", "replicaDirect"]) else {
        return;
    };
    c.field(balancer, at, "replicaDirect", Checker::boolean);
    c.field(balancer, at, "direct", |c, at, v| {
        let Some(direct) = c.mapping(at, v, &["enabled", "ports", "ipSet"]) else { return };
        c.field(direct, at, "enabled", Checker::boolean);
        c.field(direct, at, "ipSet", Checker::string);
        c.each(
            direct,
            at,
            "ports",
            "a list of `externalPort`/`containerPort` items",
            |c, at, v| {
                let Some(entry) =
                    c.mapping(at, v, &["externalPort", "protocol", "scheme", "containerPort"])
                else {
                    return;
                };
                if let Some(external) =
                    c.required(entry, at, "externalPort", "the port the load balancer listens on")
                {
                    c.integer(&at.key("externalPort"), external, 22, 32_768);
                }
                c.field(entry, at, "containerPort", |c, at, v| c.integer(at, v, 1, 65_535));
                c.field(entry, at, "protocol", |c, at, v| c.one_of(at, v, &["TCP", "UDP"]));
                c.field(entry, at, "scheme", |c, at, v| {
                    c.one_of(at, v, &["http", "tcp", "https", "ws", "wss"])
                });
            },
        );
    });
    c.field(balancer, at, "geoLocation", |c, at, v| {
        let Some(geo) = c.mapping(at, v, &["enabled", "headers"]) else { return };
        c.field(geo, at, "enabled", Checker::boolean);
    });
}
