//! CPU and memory quantities as Kubernetes writes them (`50m`, `0.5`,
//! `128Mi`, `1Gi`), which is what Control Plane accepts.

use serde_json::Value;

/// A quantity's number and suffix, or why it is not one.
fn split(text: &str) -> Option<(f64, &str)> {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    Some((number.parse().ok()?, suffix))
}

/// Millicores of a CPU quantity: a number of cores (`0.5`, `2`) or
/// millicores (`250m`). YAML numbers count as cores.
pub fn cpu_millicores(value: &Value) -> Result<f64, String> {
    if let Some(cores) = value.as_f64() {
        return Ok(cores * 1000.0);
    }
    let text = value.as_str().ok_or("a CPU quantity is a string such as `250m` or `0.5`")?;
    match split(text) {
        Some((n, "m")) => Ok(n),
        Some((n, "")) => Ok(n * 1000.0),
        _ => Err(format!("`{text}` is not a CPU quantity")),
    }
}

/// Mebibytes of a memory quantity: `128Mi`, `1Gi`, `500M`, or bytes.
pub fn memory_mebibytes(value: &Value) -> Result<f64, String> {
    const MIB: f64 = 1024.0 * 1024.0;
    if let Some(bytes) = value.as_f64() {
        return Ok(bytes / MIB);
    }
    let text = value.as_str().ok_or("a memory quantity is a string such as `128Mi` or `1Gi`")?;
    let factor = |suffix: &str| -> Option<f64> {
        Some(match suffix {
            "" => 1.0,
            "k" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            "T" => 1e12,
            "P" => 1e15,
            "Ki" => 1024.0,
            "Mi" => MIB,
            "Gi" => MIB * 1024.0,
            "Ti" => MIB * MIB,
            "Pi" => MIB * MIB * 1024.0,
            _ => return None,
        })
    };
    split(text)
        .and_then(|(n, suffix)| factor(suffix).map(|f| n * f / MIB))
        .ok_or_else(|| format!("`{text}` is not a memory quantity"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_cpu_the_kubernetes_way() {
        assert_eq!(cpu_millicores(&json!("50m")), Ok(50.0));
        assert_eq!(cpu_millicores(&json!("0.5")), Ok(500.0));
        assert_eq!(cpu_millicores(&json!(2)), Ok(2000.0));
        assert!(cpu_millicores(&json!("five")).is_err());
        assert!(cpu_millicores(&json!("1Gi")).is_err());
        assert!(cpu_millicores(&json!("1..5")).is_err());
    }

    #[test]
    fn reads_memory_the_kubernetes_way() {
        assert_eq!(memory_mebibytes(&json!("128Mi")), Ok(128.0));
        assert_eq!(memory_mebibytes(&json!("1Gi")), Ok(1024.0));
        assert!(memory_mebibytes(&json!("1G")).is_ok_and(|m| (m - 953.67).abs() < 0.01));
        assert!(memory_mebibytes(&json!("lots")).is_err());
        assert!(memory_mebibytes(&json!("12MB")).is_err());
    }
}
