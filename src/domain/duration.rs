//! Durations as people write them, in the config (`approval_reminder = "30m"`) and on the
//! command line (`--window 2h`, `--at "90m ago"`): one grammar for both, so what works in one
//! place works in the other.
//!
//! A duration is one or more parts, each a whole number and a unit: `s`, `m`, `h`, `d`, `w`, or
//! their longer names (`sec`, `min`, `hr`, `hours`, `days`, ...). Whitespace anywhere is
//! ignored, so `1h30m`, `1h 30m` and `2 hours` all parse. Units are required (`30` could mean
//! seconds or minutes), there are no fractions or signs, and a total that does not fit is an
//! error rather than a wrap. Zero parses: whether it makes sense is the caller's rule (a
//! reminder setting refuses it, `0m ago` is now).

use chrono::TimeDelta;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a duration: use e.g. 2h, 30m, 1h30m, 90s, 2d or 2 hours")]
pub struct DurationError(pub String);

/// Parses a duration such as `30m`, `1h30m`, `90s`, `2d`, `1w` or `2 hours`.
pub fn parse_duration(text: &str) -> Result<TimeDelta, DurationError> {
    let bad = || DurationError(text.trim().to_string());
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(bad());
    }
    let mut total = TimeDelta::zero();
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
        let seconds = unit_seconds(unit).ok_or_else(bad)?;
        let part = amount
            .checked_mul(seconds)
            .and_then(TimeDelta::try_seconds)
            .ok_or_else(bad)?;
        total = total.checked_add(&part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// The length of a unit in seconds, `None` for an unknown unit (or none).
fn unit_seconds(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    #[test]
    fn durations_parse() {
        let cases = [
            ("30m", minutes(30)),
            ("1h", minutes(60)),
            ("4h", minutes(240)),
            ("1h30m", minutes(90)),
            ("1h 30m", minutes(90)),
            ("90s", TimeDelta::seconds(90)),
            ("45s", TimeDelta::seconds(45)),
            ("2d", TimeDelta::days(2)),
            ("1w", TimeDelta::days(7)),
            ("2 hours", TimeDelta::hours(2)),
            ("3 Mins", minutes(3)),
            (" 45m ", minutes(45)),
            ("0m", TimeDelta::zero()),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_duration() {
        for text in [
            "",
            "  ",
            "30",
            "m",
            "h",
            "2x",
            "30x",
            "-5m",
            "1.5h",
            "h1",
            "forever",
            "99999999999999999999d",
            "9999999999999999w",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError(text.trim().to_string())),
                "{text}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,20}") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn compound_durations_add_up(h in 0i64..10_000, m in 0i64..10_000, s in 0i64..10_000) {
            proptest::prop_assert_eq!(
                parse_duration(&format!("{h}h{m}m{s}s")),
                Ok(TimeDelta::seconds(h * 3600 + m * 60 + s))
            );
        }
    }
}
