//! The `registry` of an environment: a host, with an optional port, as an
//! image reference names its registry (`HOST[:PORT]/NAME:TAG`).

/// Why `registry` is not a `host[:port]`, in words for the message; `None`
/// when it is one. `{org}` stands for the environment's org.
pub(super) fn registry_problem(value: &str) -> Option<String> {
    let value = value.replace("{org}", "org");
    if let Some((scheme, _)) = value.split_once("://") {
        return Some(format!("it starts with a scheme (`{scheme}://`); write the host alone"));
    }
    if let Some(bad) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("it contains {}", describe(bad)));
    }
    if value.contains('/') {
        return Some("it has a path; write the host alone (images name their path)".to_owned());
    }
    if value.contains('@') {
        return Some("it has a user name; credentials belong in a pull secret".to_owned());
    }
    if value.contains(['{', '}']) {
        return Some("`{org}` is the only placeholder".to_owned());
    }
    let (host, port) = split_port(&value)?;
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return Some(format!("`{port}` is not a port (1 to 65535)"));
        }
    }
    if host.starts_with('[') {
        let inner = host.trim_start_matches('[').trim_end_matches(']');
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) if host.ends_with(']') => None,
            _ => Some(format!("`{host}` is not an IPv6 address in brackets")),
        };
    }
    if host.is_empty() {
        return Some("the host is empty".to_owned());
    }
    if host.len() > 253 {
        return Some("the host is longer than 253 characters".to_owned());
    }
    host.split('.').find_map(|label| {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        (!valid).then(|| {
            format!(
                "`{label}` is not a host name part (letters, digits and inner hyphens, 1 to 63 characters)"
            )
        })
    })
}

/// Host and port (`None` without one); `None` overall for a malformed
/// bracketed IPv6 host, reported by the caller's IPv6 check instead.
fn split_port(value: &str) -> Option<(&str, Option<&str>)> {
    if value.starts_with('[') {
        return Some(match value.find(']') {
            Some(end) => {
                let (host, rest) = value.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (value, None),
        });
    }
    Some(match value.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    })
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        other => format!("the character U+{:04X}", u32::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::registry_problem;

    #[test]
    fn hosts_with_ports_pass() {
        for host in [
            "{org}.registry.cpln.io",
            "registry.example.com:5000",
            "127.0.0.1:41234",
            "localhost",
            "[::1]:5000",
            "Registry-1.Docker.io",
        ] {
            assert_eq!(registry_problem(host), None, "{host}");
        }
    }

    #[test]
    fn everything_else_says_why() {
        let cases = [
            ("https://registry.example.com", "scheme"),
            ("registry.example.com/team", "path"),
            ("registry example.com", "a space"),
            ("registry.example.com:http", "not a port"),
            ("registry.example.com:70000", "not a port"),
            ("registry.example.com:", "not a port"),
            ("user@registry.example.com", "user name"),
            ("-bad.example.com", "host name part"),
            ("a..b", "host name part"),
            ("{gvc}.registry.cpln.io", "placeholder"),
            ("[::1:5000", "IPv6"),
            ("registry_one.example.com", "host name part"),
        ];
        for (host, why) in cases {
            let problem = registry_problem(host);
            assert!(problem.as_deref().is_some_and(|p| p.contains(why)), "{host}: {problem:?}");
        }
    }
}
