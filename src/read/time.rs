//! Times as people type them on the command line: RFC 3339
//! (`2026-11-25T03:12:00Z`), a date and time in UTC (`2026-11-25 03:12`), `now`, or relative
//! (`2h ago`, `90m ago`, `1d ago`, or just `30d`). Durations (`2h`, `1h30m`, `2 hours`) are the domain's
//! grammar (`domain::duration`), shared with the config.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::domain::parse_duration;

/// Parses a point in time relative to `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(ago) = t.strip_suffix("ago") {
        return parse_duration(ago)
            .map(|d| now - d)
            .map_err(|e| e.to_string());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(t) {
        return Ok(time.with_timezone(&Utc));
    }
    // A `Z` without seconds (`2026-11-25T03:12Z`, as in a permalink) is UTC too.
    let utc = t.strip_suffix(['Z', 'z']).unwrap_or(t);
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(utc, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc());
    }
    // A bare duration is that long ago (`--since 30d`).
    if t.chars().any(|c| c.is_ascii_alphabetic())
        && let Ok(ago) = parse_duration(t)
    {
        return Ok(now - ago);
    }
    Err(format!(
        "`{text}` is not a time: use RFC 3339 (2026-11-25T03:12:00Z), `2026-11-25 03:12` (UTC), `now`, `2h ago` or `30d` (as long ago)"
    ))
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
        assert_eq!(at("2026-11-25T03:12Z"), "2026-11-25T03:12:00+00:00");
        assert_eq!(at("now"), now().to_rfc3339());
        assert_eq!(
            at("30d"),
            "2026-10-26T12:00:00+00:00",
            "a bare duration is that long ago"
        );
        assert!(parse_time("yesterday-ish", now()).is_err());
        assert!(parse_time("h ago", now()).is_err());
    }
}
