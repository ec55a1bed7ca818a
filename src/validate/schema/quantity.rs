//! CPU and memory quantities as Kubernetes writes them (`50m`, `0.5`,
//! `128Mi`, `1Gi`), which is what Control Plane accepts.

use serde_json::Value;

/// A Kubernetes quantity in its base unit (cores, bytes): a signed decimal
/// number and a suffix, binary (`Ki`…`Ei`), decimal (`n`, `u`, `m`, ``,
/// `k`, `M`, `G`, `T`, `P`, `E`) or an exponent (`e3`, `E-2`).
fn parse(text: &str) -> Option<f64> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let binary = |power: i32| 2f64.powi(power);
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exponent.parse().ok()?)
        }
    };
    Some(sign * number.parse::<f64>().ok()? * factor)
}

/// What the Terraform provider's quantity validator takes
/// (`resource_workload.go:2237-2243`): `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`,
/// at most 20 characters. Text it takes that is no Kubernetes quantity is
/// only a warning; text it refuses is an error.
pub fn provider_takes(text: &str) -> bool {
    let rest = text.strip_prefix(['+', '-']).unwrap_or(text);
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    let letters = suffix.trim_start_matches(|c: char| "eEinumkKMGTP".contains(c));
    let digits = letters.strip_prefix(['+', '-']).unwrap_or(letters);
    text.len() <= 20 && !number.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// Millicores of a CPU quantity: cores (`0.5`, `2`), millicores (`250m`),
/// or any other Kubernetes quantity. YAML numbers count as cores.
pub fn cpu_millicores(value: &Value) -> Result<f64, String> {
    if let Some(cores) = value.as_f64() {
        return Ok(cores * 1000.0);
    }
    let text = value.as_str().ok_or("a CPU quantity is a string such as `250m` or `0.5`")?;
    parse(text).map(|cores| cores * 1000.0).ok_or_else(|| format!("`{text}` is not a CPU quantity"))
}

/// Mebibytes of a memory quantity: `128Mi`, `1Gi`, `500M`, bytes, or any
/// other Kubernetes quantity.
pub fn memory_mebibytes(value: &Value) -> Result<f64, String> {
    const MIB: f64 = 1024.0 * 1024.0;
    if let Some(bytes) = value.as_f64() {
        return Ok(bytes / MIB);
    }
    let text = value.as_str().ok_or("a memory quantity is a string such as `128Mi` or `1Gi`")?;
    parse(text).map(|bytes| bytes / MIB).ok_or_else(|| format!("`{text}` is not a memory quantity"))
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
        assert!(cpu_millicores(&json!("1..5")).is_err());
        // Every Kubernetes form: micro- and nanocores, exponents, a sign.
        assert!(cpu_millicores(&json!("250000u")).is_ok_and(|m| (m - 250.0).abs() < 1e-9));
        assert!(cpu_millicores(&json!("2.5e-1")).is_ok_and(|m| (m - 250.0).abs() < 1e-9));
        assert!(cpu_millicores(&json!("5e2m")).is_err());
        assert!(cpu_millicores(&json!("+1")).is_ok_and(|m| (m - 1000.0).abs() < 1e-9));
        assert!(cpu_millicores(&json!("1e")).is_err());
    }

    #[test]
    fn reads_memory_the_kubernetes_way() {
        assert_eq!(memory_mebibytes(&json!("128Mi")), Ok(128.0));
        assert_eq!(memory_mebibytes(&json!("1Gi")), Ok(1024.0));
        assert!(memory_mebibytes(&json!("1G")).is_ok_and(|m| (m - 953.67).abs() < 0.01));
        assert!(memory_mebibytes(&json!("lots")).is_err());
        assert!(memory_mebibytes(&json!("12MB")).is_err());
        assert!(memory_mebibytes(&json!("1.5e9")).is_ok_and(|m| (m - 1430.51).abs() < 0.01));
    }

    #[test]
    fn the_providers_validator_takes_more_than_kubernetes() {
        for taken in ["250m", "1Gi", "1e3", "+0.5", "1..5", "1Mn"] {
            assert!(provider_takes(taken), "{taken}");
        }
        for refused in ["five", "12MB", "1 Gi", "", "m", &"1".repeat(21)] {
            assert!(!provider_takes(refused), "{refused}");
        }
    }
}
