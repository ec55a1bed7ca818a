//! Control Plane's naming rules (reference §8).

/// Shown with every naming problem.
pub const NAME_HELP: &str = "names use lowercase letters, digits and `-`, start with a letter, end with a letter or digit, and have at most 63 characters";

/// Resource, org and GVC names: `^[a-z][-a-z0-9]([-a-z0-9])*[a-z0-9]$`,
/// at most 63 characters (the Terraform provider's validator).
pub fn check_resource_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    if bytes.len() > 63 {
        return Err(format!("{} characters, at most 63 allowed", bytes.len()));
    }
    if bytes.len() < 3 {
        return Err("at least 3 characters are required".to_owned());
    }
    if !bytes[0].is_ascii_lowercase() {
        return Err("must start with a lowercase letter".to_owned());
    }
    if let Some(bad) =
        name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("`{bad}` is not allowed"));
    }
    if name.ends_with('-') {
        return Err("must not end with `-`".to_owned());
    }
    Ok(())
}

/// Workload names: resource rules, at most 49 characters, not ending in
/// `-headless`.
pub fn check_workload_name(name: &str) -> Result<(), String> {
    check_resource_name(name)?;
    if name.len() > 49 {
        return Err(format!("{} characters, at most 49 allowed for a workload", name.len()));
    }
    if name.ends_with("-headless") {
        return Err("must not end with `-headless`".to_owned());
    }
    Ok(())
}

/// Domain names are fully qualified host names.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = name.split('.').collect();
    if name.len() > 253 || labels.len() < 2 || !labels.iter().all(|l| valid_label(l)) {
        return Err(
            "must be a lowercase fully qualified domain name, such as app.example.com".to_owned()
        );
    }
    Ok(())
}

/// Container names: `^[a-z]([-a-z0-9])*[a-z0-9]$`, at most 64 characters,
/// not `cpln-*`, `debugger-*` or a name the platform reserves.
pub fn check_container_name(name: &str) -> Result<(), String> {
    const RESERVED: [&str; 3] = ["istio-proxy", "queue-proxy", "istio-validation"];
    if name.len() > 64 {
        return Err(format!("{} characters, at most 64 allowed", name.len()));
    }
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err("lowercase letters, digits and `-`, starting with a letter".to_owned());
    }
    if name.starts_with("cpln-") || name.starts_with("debugger-") || RESERVED.contains(&name) {
        return Err("this name is reserved by the platform".to_owned());
    }
    Ok(())
}

/// Environment variable names: `^[-._a-zA-Z][-._a-zA-Z0-9]*$`, at most 120
/// characters, not starting with `CPLN_`.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let first_ok =
        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || "-._".contains(c));
    if !first_ok || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
        return Err("letters, digits, `-`, `.` and `_`, not starting with a digit".to_owned());
    }
    if name.len() > 120 {
        return Err(format!("{} characters, at most 120 allowed", name.len()));
    }
    if name.starts_with("CPLN_") {
        return Err("the `CPLN_` prefix is reserved by the platform".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        assert!(check_resource_name("api").is_ok());
        assert!(check_resource_name("api-v2").is_ok());
        for bad in ["Api", "2api", "api-", "a_b", "ab", &"a".repeat(64)] {
            assert!(check_resource_name(bad).is_err(), "{bad}");
        }
        assert!(check_workload_name("api-headless").is_err());
        assert!(check_workload_name(&"a".repeat(50)).is_err());
    }

    #[test]
    fn other_names() {
        assert!(check_domain_name("app.example.com").is_ok());
        assert!(check_domain_name("localhost").is_err());
        assert!(check_container_name("main").is_ok());
        assert!(check_container_name("cpln-x").is_err());
        assert!(check_env_name("LOG_LEVEL").is_ok());
        assert!(check_env_name("CPLN_X").is_err());
        assert!(check_env_name("9X").is_err());
    }
}
