//! Times and durations as people type them on the command line: RFC 3339
//! (`2026-11-25T03:12:00Z`), a date and time in UTC (`2026-11-25 03:12`), `now`, or relative
//! (`2h ago`, `90m ago`, `1d ago`); durations as `2h`, `30m`, `1h30m`, `45s`, `7d`.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

/// Parses a point in time relative to `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(ago) = t.strip_suffix("ago") {
        return parse_duration(ago).map(|d| now - d);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(t) {
        return Ok(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc());
    }
    Err(format!(
        "`{text}` is not a time: use RFC 3339 (2026-11-25T03:12:00Z), `2026-11-25 03:12` (UTC), `now` or `2h ago`"
    ))
}

/// Parses a duration such as `2h`, `1h30m`, `45s`, `7d`, `2 hours`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "`{}` is not a duration: use e.g. 2h, 30m, 1h30m, 45s, 7d",
            text.trim()
        )
    };
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::zero();
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let amount: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            _ => return Err(bad()),
        };
        let part = amount
            .checked_mul(seconds)
            .and_then(Duration::try_seconds)
            .ok_or_else(bad)?;
        total = total.checked_add(&part).ok_or_else(bad)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn absolute_and_relative_times() {
        let at = |s| parse_time(s, now()).unwrap().to_rfc3339();
        assert_eq!(at("2h ago"), "2026-11-25T10:00:00+00:00");
        assert_eq!(at("90m ago"), "2026-11-25T10:30:00+00:00");
        assert_eq!(at("1d ago"), "2026-11-24T12:00:00+00:00");
        assert_eq!(at("2026-11-25T03:12:00+01:00"), "2026-11-25T02:12:00+00:00");
        assert_eq!(at("2026-11-25 03:12"), "2026-11-25T03:12:00+00:00");
        assert_eq!(at("now"), now().to_rfc3339());
        assert!(parse_time("yesterday-ish", now()).is_err());
        assert!(parse_time("h ago", now()).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("2 hours").unwrap(), Duration::hours(2));
        assert_eq!(parse_duration("45s").unwrap(), Duration::seconds(45));
        for bad in ["", "h", "2x", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
