//! Recurring orders: a schedule (days of the week, a local time, a time zone) and the
//! occurrences it yields. Pure: the engine asks for the next occurrence, places it as a normal
//! order an hour before its time, and records what became of each date (once per date).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, OrderId, RecurringId, RestaurantId};
use super::menu::OrderLine;
use super::order::Delivery;
use super::payment::PaymentMethod;

/// An occurrence is placed this long before its delivery time: far enough ahead that it is a
/// scheduled order, asked of its restaurant when the kitchen must start.
pub const PLACE_AHEAD: Duration = Duration::minutes(60);
/// How far ahead a search for the next day goes (a schedule with a day and few skips finds
/// one within weeks; the bound only stops a pathological skip list).
const SEARCH_DAYS: i64 = 400;
/// A day of the week, as clients write it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    /// Monday first.
    const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule.days must name at least one day")]
    NoDays,
    #[error("schedule.time must be HH:MM (24-hour, two digits each), not {0:?}")]
    BadTime(String),
    #[error("schedule.timezone: unknown time zone {0:?} (an IANA name like Asia/Kolkata)")]
    UnknownTimeZone(String),
}

/// The schedule as clients write it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleSpec {
    /// Days of the week (a day named twice counts once).
    #[schema(min_items = 1, max_items = 7)]
    pub days: Vec<Day>,
    /// Local delivery time, `HH:MM` (24-hour).
    #[schema(example = "13:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
    /// IANA time zone, e.g. `Asia/Kolkata`.
    #[schema(example = "Asia/Kolkata", min_length = 1, max_length = 64)]
    pub timezone: String,
}

/// A validated schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleSpec", into = "ScheduleSpec")]
pub struct Schedule {
    /// Monday first.
    days: [bool; 7],
    time: NaiveTime,
    zone: Tz,
}

impl TryFrom<ScheduleSpec> for Schedule {
    type Error = ScheduleError;

    fn try_from(spec: ScheduleSpec) -> Result<Self, Self::Error> {
        let mut days = [false; 7];
        for d in &spec.days {
            days[*d as usize] = true;
        }
        if !days.contains(&true) {
            return Err(ScheduleError::NoDays);
        }
        let bad_time = || ScheduleError::BadTime(spec.time.clone());
        // Exactly `HH:MM`: chrono alone would also take `1:00`.
        let two_digits = spec.time.len() == 5
            && spec
                .time
                .char_indices()
                .all(|(i, c)| if i == 2 { c == ':' } else { c.is_ascii_digit() });
        if !two_digits {
            return Err(bad_time());
        }
        let time = NaiveTime::parse_from_str(&spec.time, "%H:%M").map_err(|_| bad_time())?;
        let zone: Tz = spec
            .timezone
            .parse()
            .map_err(|_| ScheduleError::UnknownTimeZone(spec.timezone.clone()))?;
        Ok(Self { days, time, zone })
    }
}

impl From<Schedule> for ScheduleSpec {
    fn from(s: Schedule) -> Self {
        ScheduleSpec {
            days: Day::ALL
                .into_iter()
                .zip(s.days)
                .filter(|(_, on)| *on)
                .map(|(d, _)| d)
                .collect(),
            time: s.time.format("%H:%M").to_string(),
            timezone: s.zone.name().to_owned(),
        }
    }
}

/// One date of a schedule and the instant its delivery is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    pub date: NaiveDate,
    pub deliver_at: DateTime<Utc>,
}

impl Occurrence {
    /// When the occurrence is placed as an order.
    pub fn place_at(&self) -> DateTime<Utc> {
        self.deliver_at - PLACE_AHEAD
    }
}

impl Schedule {
    /// The local date at `t` in the schedule's zone.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.zone).date_naive()
    }

    /// The delivery instant on local `date`, if the schedule runs that day. A time the clocks
    /// skip (spring forward) moves on by the gap; a time they repeat (fall back) is the first.
    pub fn at(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let day = date.weekday().num_days_from_monday() as usize;
        if !self.days[day] {
            return None;
        }
        let mut local = date.and_time(self.time);
        for _ in 0..4 {
            match self.zone.from_local_datetime(&local) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    return Some(t.with_timezone(&Utc));
                }
                LocalResult::None => local += Duration::minutes(30),
            }
        }
        None
    }

    /// The first occurrence on or after local `from`, not on a skipped date.
    pub fn first_from(&self, from: NaiveDate, skips: &BTreeSet<NaiveDate>) -> Option<Occurrence> {
        (0..SEARCH_DAYS)
            .filter_map(|i| from.checked_add_signed(Duration::days(i)))
            .filter(|d| !skips.contains(d))
            .find_map(|date| {
                self.at(date)
                    .map(|deliver_at| Occurrence { date, deliver_at })
            })
    }

    /// The first occurrence that can still be placed an hour ahead of `now`.
    pub fn first_placeable(
        &self,
        now: DateTime<Utc>,
        skips: &BTreeSet<NaiveDate>,
    ) -> Option<Occurrence> {
        let mut from = self.local_date(now);
        loop {
            let next = self.first_from(from, skips)?;
            if next.place_at() >= now {
                return Some(next);
            }
            from = next.date.succ_opt()?;
        }
    }
}

/// A customer's recurring order: what to order, where, how to pay, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recurring {
    pub id: RecurringId,
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub lines: Vec<OrderLine>,
    pub delivery: Delivery,
    pub payment: PaymentMethod,
    /// The gateway token (a saved card or mandate) each occurrence pays with.
    pub payment_token: Option<String>,
    pub schedule: Schedule,
    pub paused: bool,
    /// Dates the customer asked to skip (local dates of the schedule's zone).
    pub skips: BTreeSet<NaiveDate>,
    /// The next occurrence to place; `None` while paused or once deleted.
    pub next: Option<Occurrence>,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Grows with every change; the store keeps the newest.
    pub version: u64,
}

/// What became of one date of a schedule; recorded once per (schedule, date).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OccurrenceStatus {
    /// Placed as an order.
    Placed,
    /// Could not be placed (restaurant closed, item gone, payment declined…).
    Failed,
    /// The customer skipped the date.
    Skipped,
    /// Its time passed while the service could not place it.
    Missed,
}

impl OccurrenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Missed => "missed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Placed, Self::Failed, Self::Skipped, Self::Missed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// The record of one date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OccurrenceRecord {
    #[schema(value_type = String, format = Uuid)]
    pub recurring_id: RecurringId,
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub status: OccurrenceStatus,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub order_id: Option<OrderId>,
    /// Why it failed: the error code placement answered.
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

impl Recurring {
    /// Changes one thing at `now`: bumps the version and the time.
    fn touched(mut self, now: DateTime<Utc>) -> Self {
        self.version += 1;
        self.updated_at = now.max(self.updated_at);
        self
    }

    /// Paused or resumed; resuming starts from the next date that can still be placed.
    pub fn set_paused(self, paused: bool, now: DateTime<Utc>) -> Self {
        let mut next = self;
        next.paused = paused;
        next.next = if paused {
            None
        } else {
            next.schedule.first_placeable(now, &next.skips)
        };
        next.touched(now)
    }

    /// A new schedule takes effect from the next date that can still be placed.
    pub fn reschedule(self, schedule: Schedule, now: DateTime<Utc>) -> Self {
        let mut next = self;
        next.schedule = schedule;
        if !next.paused {
            next.next = next.schedule.first_placeable(now, &next.skips);
        }
        next.touched(now)
    }

    /// `date` is skipped; if it was the next one, the one after it is.
    pub fn skip(self, date: NaiveDate, now: DateTime<Utc>) -> Self {
        let mut next = self;
        next.skips.insert(date);
        if next.next.is_some_and(|o| o.date == date) {
            next.next = date
                .succ_opt()
                .and_then(|d| next.schedule.first_from(d, &next.skips));
        }
        next.touched(now)
    }

    /// The next occurrence was dealt with (placed, failed, missed): move past its date.
    pub fn advance(self, now: DateTime<Utc>) -> Self {
        let mut next = self;
        next.next = next
            .next
            .and_then(|o| o.date.succ_opt())
            .and_then(|d| next.schedule.first_from(d, &next.skips));
        next.touched(now)
    }

    pub fn delete(self, now: DateTime<Utc>) -> Self {
        let mut next = self;
        next.deleted = true;
        next.next = None;
        next.touched(now)
    }
}

#[cfg(test)]
mod tests;
