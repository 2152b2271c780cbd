//! A tenant's analytics schedule: a cron expression (seconds optional), evaluated in UTC.

use chrono::{DateTime, Utc};
use croner::Cron;

/// Most schedule slots looked at between two ticks; a clock that jumped further ahead runs
/// the latest slot found so far rather than searching forever.
const MAX_SLOTS_PER_TICK: usize = 10_000;

/// The schedule that never comes: no scheduled runs (the operator sets it for tenants with
/// analytics switched off). Runs on demand still work.
pub const NEVER: &str = "never";

#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    /// `None` for [`NEVER`].
    cron: Option<Cron>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid schedule {expression:?}: {reason}")]
pub struct ScheduleError {
    pub expression: String,
    pub reason: String,
}

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        if expression.trim() == NEVER {
            return Ok(Self {
                expression: NEVER.to_string(),
                cron: None,
            });
        }
        let cron = expression.parse::<Cron>().map_err(|e| ScheduleError {
            expression: expression.to_string(),
            reason: e.to_string(),
        })?;
        if more_than_once_a_minute(expression) {
            return Err(ScheduleError {
                expression: expression.to_string(),
                reason: "runs more often than once a minute; give the seconds field (the first \
                         of six) a single value such as 0"
                    .to_string(),
            });
        }
        Ok(Self {
            expression: expression.to_string(),
            cron: Some(cron),
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first slot after `after`; `None` for [`NEVER`].
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.as_ref()?.find_next_occurrence(&after, false).ok()
    }

    /// The latest slot in `(after, until]`, if the schedule has one there.
    pub fn latest_slot(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.cron.as_ref()?;
        let mut latest = None;
        let mut cursor = after;
        for _ in 0..MAX_SLOTS_PER_TICK {
            match cron.find_next_occurrence(&cursor, false) {
                Ok(next) if next <= until => {
                    latest = Some(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        latest
    }
}

/// Whether a cron expression can fire more than once in a minute: only when it has a seconds
/// field (six or seven fields) that is not a single second.
fn more_than_once_a_minute(expression: &str) -> bool {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() < 6 {
        return false;
    }
    fields[0].parse::<u8>().map_or(true, |second| second > 59)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, h, m, s)
            .single()
            .expect("valid time")
    }

    #[test]
    fn finds_the_latest_slot_in_the_window_only() {
        let hourly = Schedule::parse("0 0 * * * *").expect("parse");
        assert_eq!(hourly.latest_slot(at(5, 10, 0), at(5, 59, 59)), None);
        assert_eq!(
            hourly.latest_slot(at(5, 10, 0), at(6, 0, 0)),
            Some(at(6, 0, 0))
        );
        assert_eq!(
            hourly.latest_slot(at(5, 10, 0), at(8, 30, 0)),
            Some(at(8, 0, 0))
        );
        // The window is open at its start: a slot equal to `after` already ran.
        assert_eq!(hourly.latest_slot(at(6, 0, 0), at(6, 30, 0)), None);
        let five_fields = Schedule::parse("*/15 * * * *").expect("parse");
        assert_eq!(
            five_fields.latest_slot(at(5, 0, 0), at(5, 20, 0)),
            Some(at(5, 15, 0))
        );
    }

    #[test]
    fn never_has_no_slot() {
        let never = Schedule::parse("never").expect("parse");
        assert_eq!(never.expression(), NEVER);
        assert_eq!(never.latest_slot(at(0, 0, 0), at(23, 59, 59)), None);
    }

    #[test]
    fn refuses_nonsense() {
        assert!(Schedule::parse("every hour").is_err());
        assert!(Schedule::parse("").is_err());
    }

    #[test]
    fn refuses_schedules_more_often_than_once_a_minute() {
        for often in [
            "* * * * * *",
            "*/5 * * * * *",
            "0,30 * * * * *",
            "10-20 0 * * * *",
        ] {
            assert!(Schedule::parse(often).is_err(), "{often}");
        }
        for fine in ["0 * * * * *", "15 30 2 * * *", "* * * * *", "*/5 * * * *"] {
            assert!(Schedule::parse(fine).is_ok(), "{fine}");
        }
    }
}
