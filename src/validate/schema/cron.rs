//! Cron schedules as Kubernetes CronJobs read them (which is what a
//! Control Plane `cron` workload runs): five fields, or a macro.

const MACROS: [&str; 7] =
    ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Why `schedule` is not a cron expression, if it is not.
pub fn check(schedule: &str) -> Result<(), String> {
    let schedule = schedule.trim();
    if MACROS.contains(&schedule) {
        return Ok(());
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "a cron schedule has 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    }
    let specs: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day of month", 1, 31, &[]),
        ("month", 1, 12, &MONTHS),
        ("day of week", 0, 7, &DAYS),
    ];
    for (field, (what, min, max, names)) in fields.iter().zip(specs) {
        field_ok(field, min, max, names)
            .map_err(|()| format!("`{field}` is not a valid {what} field ({min}–{max})"))?;
    }
    Ok(())
}

fn field_ok(field: &str, min: u32, max: u32, names: &[&str]) -> Result<(), ()> {
    let value = |text: &str| -> Result<u32, ()> {
        let upper = text.to_ascii_uppercase();
        if let Some(index) = names.iter().position(|n| *n == upper) {
            // Months are 1-based, days 0-based.
            return u32::try_from(index).map(|i| i + min).map_err(|_| ());
        }
        let n: u32 = text.parse().map_err(|_| ())?;
        if (min..=max).contains(&n) { Ok(n) } else { Err(()) }
    };
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        if let Some(step) = step {
            let step: u32 = step.parse().map_err(|_| ())?;
            if step == 0 {
                return Err(());
            }
        }
        if range == "*" || range == "?" {
            continue;
        }
        match range.split_once('-') {
            Some((from, to)) => {
                if value(from)? > value(to)? {
                    return Err(());
                }
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_what_kubernetes_accepts() {
        for good in
            ["*/5 * * * *", "0 3 * * 1-5", "15,45 */2 1 JAN-MAR mon", "@daily", "0 0 1 */3 7"]
        {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "every day",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "*/0 * * * *",
            "5-1 * * * *",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
