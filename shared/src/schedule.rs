//! seek's schedule, in EventBridge Scheduler's syntax, so `/ct-trigger status` can say when the
//! next seek runs. Scheduler has no API that answers "when next", so the expression the template
//! gives the schedule is given to actions too (`SCHEDULE_EXPRESSION`, `SCHEDULE_TIMEZONE`) and
//! read here.
//!
//! Understood exactly: `cron(minutes hours day-of-month month day-of-week year)` with `*`, `?`,
//! numbers, names (`JAN`, `TUE`), lists, ranges and steps; `at(yyyy-mm-ddThh:mm:ss)`; and
//! `rate(N minutes|hours|days)`, whose runs are counted from when the schedule was created, which
//! actions cannot know, so it is reported as the rate. `L`, `W` and `#` are valid in Scheduler
//! but not modelled: such a schedule is shown as its expression. Anything else is refused at cold
//! start, naming the variable.

use crate::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// A parsed schedule and the zone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    zone_name: String,
    zone: TimeZone,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Cron(Cron),
    At(DateTime),
    Rate(String),
    /// Valid for Scheduler, beyond what this module computes (`L`, `W`, `#`).
    Unmodelled,
}

/// The allowed values of each cron field, as bit sets (bit n set: value n allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cron {
    minutes: u64,
    hours: u64,
    /// `None`: `?` (the day is chosen by day-of-week).
    days_of_month: Option<u64>,
    months: u64,
    /// `None`: `?`. Sunday is 1, as in Scheduler.
    days_of_week: Option<u64>,
    /// `None`: every year.
    years: Option<Vec<(i16, i16, i16)>>,
}

/// Why a schedule was refused: the variable's part and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Expression(String),
    #[error("{0}")]
    Zone(String),
}

/// When the next seek runs, as far as the schedule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    At(Timestamp),
    /// A one-time or year-limited schedule with no run left.
    Never,
    /// The schedule does not say (a rate, or a cron form not modelled).
    Unknown,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// How far ahead a cron schedule is searched (Scheduler's years end at 2199; a schedule whose
/// next run is further than this is reported as having none).
const SEARCH_DAYS: i32 = 366 * 8;

impl Schedule {
    /// Reads `expression` in the IANA zone `zone` (empty means UTC). The error says what is wrong.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        let zone_name = if zone.trim().is_empty() {
            "UTC".to_owned()
        } else {
            zone.trim().to_owned()
        };
        let tz = TimeZone::get(&zone_name)
            .map_err(|_| ScheduleError::Zone(format!("{zone_name:?} is not an IANA time zone")))?;
        let expr = expression.trim();
        let kind = parse_kind(expr).map_err(ScheduleError::Expression)?;
        Ok(Self {
            expression: expr.to_owned(),
            zone_name,
            zone: tz,
            kind,
        })
    }

    /// The expression, as configured (trimmed): `cron(0 0 ? * TUE *)`.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone it is read in: `UTC` when none was given.
    pub fn zone(&self) -> &str {
        &self.zone_name
    }

    /// The first run strictly after `now`.
    pub fn next_after(&self, now: Timestamp) -> Next {
        let Ok(instant) = jiff::Timestamp::from_second(now.secs()) else {
            return Next::Unknown;
        };
        match &self.kind {
            Kind::Cron(c) => c.next_after(instant, &self.zone),
            Kind::At(dt) => match dt.to_zoned_datetime(self.zone.clone()) {
                Ok(z) if z.timestamp() > instant => {
                    Next::At(Timestamp::from_secs(z.timestamp().as_second()))
                }
                Ok(_) => Next::Never,
                Err(_) => Next::Unknown,
            },
            Kind::Rate(_) | Kind::Unmodelled => Next::Unknown,
        }
    }
}

fn parse_kind(expr: &str) -> Result<Kind, String> {
    let inner = |prefix: &str| {
        expr.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
    };
    let kind = if let Some(body) = inner("cron(") {
        parse_cron(body)?
    } else if let Some(body) = inner("at(") {
        Kind::At(
            body.parse::<DateTime>()
                .map_err(|_| format!("at({body}) is not yyyy-mm-ddThh:mm:ss"))?,
        )
    } else if let Some(body) = inner("rate(") {
        parse_rate(body)?
    } else {
        return Err(format!(
            "{expr:?} is not cron(...), rate(...) or at(...) (EventBridge Scheduler syntax)"
        ));
    };
    Ok(kind)
}

fn parse_rate(body: &str) -> Result<Kind, String> {
    let bad = || format!("rate({body}) is not rate(N minutes|hours|days)");
    let (n, unit) = body.split_once(' ').ok_or_else(bad)?;
    let n: u32 = n.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let singular = matches!(unit, "minute" | "hour" | "day");
    let plural = matches!(unit, "minutes" | "hours" | "days");
    if n == 0 || !(singular && n == 1 || plural && n > 1) {
        return Err(bad());
    }
    Ok(Kind::Rate(format!("every {n} {unit}")))
}

fn parse_cron(body: &str) -> Result<Kind, String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else {
        return Err(format!(
            "cron({body}) needs 6 fields: minutes hours day-of-month month day-of-week year"
        ));
    };
    if [dom, dow].iter().any(|f| f.contains(['L', 'W', '#'])) {
        // Validate the rest, so a typo still fails at cold start.
        field(minutes, "minutes", 0, 59, &[])?;
        field(hours, "hours", 0, 23, &[])?;
        field(month, "month", 1, 12, &MONTHS)?;
        return Ok(Kind::Unmodelled);
    }
    let days_of_month = optional(dom, "day-of-month", 1, 31, &[])?;
    let days_of_week = optional(dow, "day-of-week", 1, 7, &WEEKDAYS)?;
    if days_of_month.is_some() == days_of_week.is_some() {
        return Err(format!(
            "cron({body}): exactly one of day-of-month and day-of-week must be ?"
        ));
    }
    let years = if year == "*" {
        None
    } else {
        Some(
            year.split(',')
                .map(|part| range(part, "year", 1970, 2199, &[]))
                .map(|r| r.map(|(a, b, s)| (a as i16, b as i16, s as i16)))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    Ok(Kind::Cron(Cron {
        minutes: field(minutes, "minutes", 0, 59, &[])?,
        hours: field(hours, "hours", 0, 23, &[])?,
        days_of_month,
        months: field(month, "month", 1, 12, &MONTHS)?,
        days_of_week,
        years,
    }))
}

fn optional(
    text: &str,
    name: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
) -> Result<Option<u64>, String> {
    if text == "?" {
        Ok(None)
    } else {
        field(text, name, lo, hi, names).map(Some)
    }
}

/// One cron field as a bit set of its allowed values.
fn field(text: &str, name: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (from, to, step) = range(part, name, lo, hi, names)?;
        let mut v = from;
        while v <= to {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

/// `*`, `n`, `a-b`, with an optional `/step`: (from, to, step).
fn range(
    part: &str,
    name: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
) -> Result<(u32, u32, u32), String> {
    let bad = || format!("{name} field {part:?} is not valid ({lo}-{hi})");
    let value = |s: &str| -> Result<u32, String> {
        let n = match names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            Some(i) => i as u32 + lo,
            None => s.parse().map_err(|_| bad())?,
        };
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    let (span, step) = match part.split_once('/') {
        Some((span, step)) => {
            let step: u32 = step.parse().map_err(|_| bad())?;
            if step == 0 {
                return Err(bad());
            }
            (span, step)
        }
        None => (part, 1),
    };
    let (from, to) = match span {
        "*" => (lo, hi),
        _ => match span.split_once('-') {
            Some((a, b)) => (value(a)?, value(b)?),
            // `5/15` runs from 5 to the end of the field.
            None if part.contains('/') => (value(span)?, hi),
            None => {
                let v = value(span)?;
                (v, v)
            }
        },
    };
    if from > to {
        return Err(bad());
    }
    Ok((from, to, step))
}

fn has(set: u64, v: i64) -> bool {
    (0..64).contains(&v) && set & (1 << v) != 0
}

impl Cron {
    fn year_allowed(&self, year: i16) -> bool {
        self.years.as_ref().is_none_or(|ranges| {
            ranges
                .iter()
                .any(|&(a, b, s)| (a..=b).contains(&year) && (year - a) % s == 0)
        })
    }

    fn day_allowed(&self, date: Date) -> bool {
        if !has(self.months, i64::from(date.month())) || !self.year_allowed(date.year()) {
            return false;
        }
        match (self.days_of_month, self.days_of_week) {
            (Some(days), _) => has(days, i64::from(date.day())),
            (None, Some(days)) => has(days, i64::from(date.weekday().to_sunday_one_offset())),
            (None, None) => false,
        }
    }

    /// Walks the zone's calendar day by day from `now`'s local date, trying each allowed time.
    /// A local time that a daylight-saving change skips is taken as the instant after the gap.
    fn next_after(&self, now: jiff::Timestamp, zone: &TimeZone) -> Next {
        let mut date = now.to_zoned_datetime(zone.clone()).date();
        for _ in 0..SEARCH_DAYS {
            if self.day_allowed(date) {
                for hour in (0..24).filter(|h| has(self.hours, *h)) {
                    for minute in (0..60).filter(|m| has(self.minutes, *m)) {
                        let local = date.at(hour as i8, minute as i8, 0, 0);
                        if let Ok(z) = local.to_zoned_datetime(zone.clone())
                            && z.timestamp() > now
                        {
                            return Next::At(Timestamp::from_secs(z.timestamp().as_second()));
                        }
                    }
                }
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => return Next::Never,
            }
        }
        Next::Never
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn next(expr: &str, zone: &str, now: &str) -> Next {
        Schedule::parse(expr, zone).unwrap().next_after(at(now))
    }

    #[test]
    fn the_default_weekly_schedule_runs_next_tuesday_at_midnight() {
        // 2026-11-29 is a Sunday.
        assert_eq!(
            next("cron(0 0 ? * TUE *)", "UTC", "2026-11-29T10:00:00Z"),
            Next::At(at("2026-12-01T00:00:00Z"))
        );
        // Exactly at a run: the next one is a week later.
        assert_eq!(
            next("cron(0 0 ? * TUE *)", "", "2026-12-01T00:00:00Z"),
            Next::At(at("2026-12-08T00:00:00Z"))
        );
        // Numeric day-of-week: 3 is Tuesday (Sunday is 1).
        assert_eq!(
            next("cron(0 0 ? * 3 *)", "UTC", "2026-11-29T10:00:00Z"),
            Next::At(at("2026-12-01T00:00:00Z"))
        );
    }

    #[test]
    fn a_zone_moves_the_instant_and_follows_daylight_saving() {
        // Berlin is UTC+1 in winter, UTC+2 in summer.
        assert_eq!(
            next(
                "cron(30 9 ? * MON-FRI *)",
                "Europe/Berlin",
                "2026-11-28T12:00:00Z"
            ),
            Next::At(at("2026-11-30T08:30:00Z"))
        );
        assert_eq!(
            next(
                "cron(30 9 ? * MON-FRI *)",
                "Europe/Berlin",
                "2026-06-06T12:00:00Z"
            ),
            Next::At(at("2026-06-08T07:30:00Z"))
        );
        // 02:30 does not exist on 2026-03-29 in Berlin: the instant after the gap.
        assert_eq!(
            next(
                "cron(30 2 29 3 ? 2026)",
                "Europe/Berlin",
                "2026-03-01T00:00:00Z"
            ),
            Next::At(at("2026-03-29T01:30:00Z"))
        );
        assert_eq!(
            next("cron(0 9 * * ? *)", "Asia/Tokyo", "2026-11-29T01:00:00Z"),
            Next::At(at("2026-11-30T00:00:00Z"))
        );
    }

    #[test]
    fn lists_ranges_steps_months_and_years() {
        assert_eq!(
            next("cron(0/20 8-10 1,15 * ? *)", "UTC", "2026-11-15T10:45:00Z"),
            Next::At(at("2026-12-01T08:00:00Z"))
        );
        assert_eq!(
            next("cron(0/20 8-10 1,15 * ? *)", "UTC", "2026-11-15T10:05:00Z"),
            Next::At(at("2026-11-15T10:20:00Z"))
        );
        assert_eq!(
            next("cron(0 12 1 JAN,jul ? *)", "UTC", "2026-07-01T12:00:00Z"),
            Next::At(at("2027-01-01T12:00:00Z"))
        );
        assert_eq!(
            next("cron(0 0 29 2 ? *)", "UTC", "2026-03-01T00:00:00Z"),
            Next::At(at("2028-02-29T00:00:00Z"))
        );
        assert_eq!(
            next("cron(0 0 1 1 ? 2025-2026)", "UTC", "2026-06-01T00:00:00Z"),
            Next::Never
        );
    }

    #[test]
    fn at_rate_and_unmodelled_forms() {
        assert_eq!(
            next(
                "at(2026-12-24T18:00:00)",
                "America/New_York",
                "2026-11-29T00:00:00Z"
            ),
            Next::At(at("2026-12-24T23:00:00Z"))
        );
        assert_eq!(
            next("at(2026-01-01T00:00:00)", "UTC", "2026-11-29T00:00:00Z"),
            Next::Never
        );
        assert_eq!(
            next("rate(7 days)", "UTC", "2026-11-29T00:00:00Z"),
            Next::Unknown
        );
        assert_eq!(
            next("rate(1 hour)", "UTC", "2026-11-29T00:00:00Z"),
            Next::Unknown
        );
        assert_eq!(
            next("cron(0 0 ? * 2#1 *)", "UTC", "2026-11-29T00:00:00Z"),
            Next::Unknown
        );
        assert_eq!(
            next("cron(0 0 L * ? *)", "UTC", "2026-11-29T00:00:00Z"),
            Next::Unknown
        );
        let s = Schedule::parse(" cron(0 0 ? * TUE *) ", "").unwrap();
        assert_eq!((s.expression(), s.zone()), ("cron(0 0 ? * TUE *)", "UTC"));
    }

    #[test]
    fn refuses_what_scheduler_would_refuse_or_this_cannot_read() {
        for (expr, zone, says) in [
            ("cron(0 0 * * *)", "UTC", "6 fields"),
            ("cron(60 0 ? * TUE *)", "UTC", "minutes field \"60\""),
            ("cron(0 24 ? * TUE *)", "UTC", "hours field"),
            ("cron(0 0 * * TUE *)", "UTC", "exactly one"),
            ("cron(0 0 ? * ? *)", "UTC", "exactly one"),
            ("cron(0 0 ? * FUNDAY *)", "UTC", "day-of-week"),
            ("cron(0 0 ? * */0 *)", "UTC", "day-of-week"),
            ("cron(0 0 ? * 5-2 *)", "UTC", "day-of-week"),
            ("cron(0 0 1 1 ? 1900)", "UTC", "year"),
            ("cron(70 0 L * ? *)", "UTC", "minutes"),
            ("rate(0 days)", "UTC", "rate(0 days)"),
            ("rate(2 day)", "UTC", "rate(2 day)"),
            ("rate(1 week)", "UTC", "rate(1 week)"),
            ("at(tomorrow)", "UTC", "at(tomorrow)"),
            ("weekly", "UTC", "EventBridge Scheduler syntax"),
            ("cron(0 0 ? * TUE *)", "Mars/Olympus", "IANA"),
        ] {
            let e = Schedule::parse(expr, zone).unwrap_err().to_string();
            assert!(e.contains(says), "{expr} in {zone}: {e}");
        }
    }
}
