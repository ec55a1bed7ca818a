//! CPU and memory quantities as Kubernetes writes them (`50m`, `0.5`,
//! `128Mi`, `1Gi`), which is what Control Plane accepts.

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

/// What a container's `cpu`, `memory`, `minCpu` or `minMemory` holds, as
/// Control Plane takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
}

impl Resource {
    /// The amount `text` stands for, in the unit Ferry compares:
    /// millicores for CPU (cores such as `0.5` or `2`, millicores such as
    /// `250m`, or any other Kubernetes quantity), mebibytes for memory
    /// (`128Mi`, `1Gi`, `500M`, bytes, …).
    pub fn amount(self, text: &str) -> Result<f64, String> {
        const MIB: f64 = 1024.0 * 1024.0;
        let (value, what) = match self {
            Resource::Cpu => (parse(text).map(|cores| cores * 1000.0), "CPU"),
            Resource::Memory => (parse(text).map(|bytes| bytes / MIB), "memory"),
        };
        value.ok_or_else(|| format!("`{text}` is not a {what} quantity"))
    }

    /// What the field holds when it is not a string, in words.
    pub fn not_text(self) -> &'static str {
        match self {
            Resource::Cpu => "a CPU quantity is a string such as `250m` or `0.5`",
            Resource::Memory => "a memory quantity is a string such as `128Mi` or `1Gi`",
        }
    }

    /// The most one replica can be given (millicores, mebibytes), and in
    /// words: more than any machine it could run on has. Assumed: no source
    /// states a maximum; the largest machines of the clouds Control Plane
    /// runs on have under 2,048 vCPUs and at most 32 TiB of memory.
    pub fn most(self) -> (f64, &'static str) {
        match self {
            Resource::Cpu => (2048.0 * 1000.0, "2048 cores"),
            Resource::Memory => (32.0 * 1024.0 * 1024.0, "32Ti"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_the_kubernetes_way() {
        let cpu = |text| Resource::Cpu.amount(text);
        assert_eq!(cpu("50m"), Ok(50.0));
        assert_eq!(cpu("0.5"), Ok(500.0));
        assert_eq!(cpu("2"), Ok(2000.0));
        assert!(cpu("five").is_err());
        assert!(cpu("1..5").is_err());
        // Every Kubernetes form: micro- and nanocores, exponents, a sign.
        assert!(cpu("250000u").is_ok_and(|m| (m - 250.0).abs() < 1e-9));
        assert!(cpu("2.5e-1").is_ok_and(|m| (m - 250.0).abs() < 1e-9));
        assert!(cpu("5e2m").is_err());
        assert!(cpu("+1").is_ok_and(|m| (m - 1000.0).abs() < 1e-9));
        assert!(cpu("1e").is_err());
    }

    #[test]
    fn reads_memory_the_kubernetes_way() {
        let memory = |text| Resource::Memory.amount(text);
        assert_eq!(memory("128Mi"), Ok(128.0));
        assert_eq!(memory("1Gi"), Ok(1024.0));
        assert!(memory("1G").is_ok_and(|m| (m - 953.67).abs() < 0.01));
        assert!(memory("lots").is_err());
        assert!(memory("12MB").is_err());
        assert!(memory("1.5e9").is_ok_and(|m| (m - 1430.51).abs() < 0.01));
    }

    #[test]
    fn the_most_a_replica_can_have_is_in_the_fields_units() {
        let (cpu, _) = Resource::Cpu.most();
        assert_eq!(Resource::Cpu.amount("2048"), Ok(cpu));
        assert!(Resource::Cpu.amount("1e29").is_ok_and(|m| m > cpu));
        let (memory, _) = Resource::Memory.most();
        assert_eq!(Resource::Memory.amount("32Ti"), Ok(memory));
        assert!(Resource::Memory.amount("33Ti").is_ok_and(|m| m > memory));
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
