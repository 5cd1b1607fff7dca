//! Durations in configuration: `REQUEST_TTL`, `REMIND_AFTER`.

use super::{ConfigError, Env};

/// A duration such as `7d`, `36h`, `90m` or `30s` (whole numbers); `0` means never (`None`).
/// Unset, `default`.
pub fn parse_duration(
    env: &Env,
    name: &'static str,
    default: &str,
) -> Result<Option<i64>, ConfigError> {
    let raw = env.get(name).unwrap_or(default);
    duration_secs(raw).map_err(|why| ConfigError::new(name, format!("{raw:?} {why}")))
}

/// `7d`, `36h`, `90m`, `30s` or `0` (never) in seconds.
pub fn duration_secs(raw: &str) -> Result<Option<i64>, String> {
    let expected = "is not a duration: a whole number with a unit, s, m, h or d (e.g. 7d, 36h), \
                    or 0 for never";
    if raw == "0" {
        return Ok(None);
    }
    // The unit is the last byte, when that is a whole character (`Ł` is not split).
    let Some(unit_at) = raw
        .len()
        .checked_sub(1)
        .filter(|&i| raw.is_char_boundary(i))
    else {
        return Err(expected.into());
    };
    let (number, unit) = raw.split_at(unit_at);
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(expected.into()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected.into());
    }
    let n: i64 = number.parse().map_err(|_| "is too long".to_string())?;
    match n.checked_mul(scale) {
        Some(0) => Ok(None),
        Some(secs) if secs <= 366 * 86_400 => Ok(Some(secs)),
        _ => Err("is longer than a year".into()),
    }
}

/// `REQUEST_TTL` when unset: a question nobody answers expires after a week, as
/// CodePipeline's manual approvals do.
pub const DEFAULT_REQUEST_TTL: &str = "7d";
/// `REMIND_AFTER` when unset: one reminder after a day.
pub const DEFAULT_REMIND_AFTER: &str = "1d";
