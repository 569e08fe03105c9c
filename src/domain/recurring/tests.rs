//! Schedules across days, skips, pauses and clock changes.

use super::*;
use proptest::prelude::*;

fn day(name: &str) -> Day {
    serde_json::from_value(serde_json::json!(name)).expect("a day name")
}

fn spec(days: &[&str], time: &str, zone: &str) -> ScheduleSpec {
    ScheduleSpec {
        days: days.iter().map(|d| day(d)).collect(),
        time: time.into(),
        timezone: zone.into(),
    }
}

fn schedule(days: &[&str], time: &str, zone: &str) -> Schedule {
    Schedule::try_from(spec(days, time, zone)).expect("valid schedule")
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("a time")
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("a date")
}

fn recurring(s: Schedule, now: DateTime<Utc>) -> Recurring {
    let next = s.first_placeable(now, &BTreeSet::new());
    Recurring {
        id: RecurringId::new(),
        customer_id: CustomerId::new(),
        restaurant_id: RestaurantId::new(),
        lines: vec![],
        delivery: Delivery {
            location: crate::domain::LatLng::parse(12.97, 77.59).expect("valid"),
            address: "here".into(),
        },
        payment: PaymentMethod::Cash,
        payment_token: None,
        schedule: s,
        paused: false,
        skips: BTreeSet::new(),
        next,
        deleted: false,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

#[test]
fn bad_schedules_say_what_is_wrong() {
    let bad = |s: ScheduleSpec| Schedule::try_from(s).unwrap_err();
    assert_eq!(
        bad(spec(&[], "13:00", "Asia/Kolkata")),
        ScheduleError::NoDays
    );
    // Day names are exact: the schema's enum.
    assert!(serde_json::from_value::<Day>(serde_json::json!("funday")).is_err());
    assert!(serde_json::from_value::<Day>(serde_json::json!("MON")).is_err());
    for time in ["25:00", "1pm", "1:00", "13:0", "13-00", "13:00:00"] {
        assert!(
            matches!(
                bad(spec(&["mon"], time, "Asia/Kolkata")),
                ScheduleError::BadTime(_)
            ),
            "{time}"
        );
    }
    assert!(matches!(
        bad(spec(&["mon"], "13:00", "Mars/Olympus")),
        ScheduleError::UnknownTimeZone(_)
    ));
    // Written back the way clients write it, Monday first, once each.
    let s = schedule(&["fri", "mon", "mon"], "07:05", "Asia/Kolkata");
    assert_eq!(
        ScheduleSpec::from(s),
        spec(&["mon", "fri"], "07:05", "Asia/Kolkata")
    );
}

#[test]
fn a_local_time_is_its_instant_in_the_zone() {
    let s = schedule(&["thu"], "13:00", "Asia/Kolkata");
    // 2026-11-26 is a Thursday; Kolkata is UTC+05:30.
    assert_eq!(s.at(date("2026-11-26")), Some(utc("2026-11-26T07:30:00Z")));
    assert_eq!(s.at(date("2026-11-27")), None);
}

#[test]
fn clock_changes_neither_lose_nor_repeat_a_date() {
    // New York springs forward at 02:00 on 2027-03-14 (a Sunday): 02:30 does not exist.
    let s = schedule(&["sun"], "02:30", "America/New_York");
    assert_eq!(s.at(date("2027-03-14")), Some(utc("2027-03-14T07:00:00Z")));
    // It falls back on 2027-11-07: 01:30 happens twice; the first one counts.
    let s = schedule(&["sun"], "01:30", "America/New_York");
    assert_eq!(s.at(date("2027-11-07")), Some(utc("2027-11-07T05:30:00Z")));
}

#[test]
fn an_occurrence_less_than_an_hour_away_starts_next_time() {
    let s = schedule(&["thu", "fri"], "13:00", "Asia/Kolkata");
    // 06:45 UTC is 45 minutes before Thursday's 13:00 IST: too late to place it an hour ahead.
    let next = s.first_placeable(utc("2026-11-26T06:45:00Z"), &BTreeSet::new());
    assert_eq!(next.map(|o| o.date), Some(date("2026-11-27")));
    let next = s.first_placeable(utc("2026-11-26T06:30:00Z"), &BTreeSet::new());
    assert_eq!(next.map(|o| o.date), Some(date("2026-11-26")));
}

#[test]
fn skipping_and_pausing_move_the_next_date() {
    let now = utc("2026-11-23T00:00:00Z"); // a Monday
    let r = recurring(schedule(&["mon", "wed"], "12:00", "Asia/Kolkata"), now);
    assert_eq!(r.next.map(|o| o.date), Some(date("2026-11-23")));
    let r = r.skip(date("2026-11-23"), now);
    assert_eq!(r.next.map(|o| o.date), Some(date("2026-11-25")));
    let r = r.set_paused(true, now);
    assert_eq!((r.next, r.version), (None, 3));
    // Resumed on Thursday: next Monday.
    let r = r.set_paused(false, utc("2026-11-26T00:00:00Z"));
    assert_eq!(r.next.map(|o| o.date), Some(date("2026-11-30")));
    let r = r.delete(now);
    assert!(r.deleted && r.next.is_none());
}

proptest! {
    /// Walking a schedule occurrence by occurrence: dates strictly increase, each is one of
    /// the schedule's days and not skipped, its instant is its local time, and a week holds
    /// exactly as many as the schedule has days (minus the skipped ones).
    #[test]
    fn a_week_holds_each_day_once(
        days in prop::collection::btree_set(0usize..7, 1..=7),
        hour in 0u32..24, minute in 0u32..60,
        zone in prop::sample::select(vec!["Asia/Kolkata", "Europe/London", "America/New_York", "UTC"]),
        skip in prop::option::of(0i64..7),
        start in 0i64..(365 * 24),
    ) {
        let names: Vec<&str> = days.iter().map(|d| ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][*d]).collect();
        let s = schedule(&names, &format!("{hour:02}:{minute:02}"), zone);
        let now = utc("2026-01-01T00:00:00Z") + Duration::hours(start);
        let mut r = recurring(s.clone(), now);
        let first = r.next.expect("a schedule with a day has a next date");
        let week_end = first.date + Duration::days(7);
        if let Some(k) = skip {
            r = r.skip(first.date + Duration::days(k), now);
        }
        let mut seen = Vec::new();
        while let Some(o) = r.next.filter(|o| o.date < week_end) {
            prop_assert!(seen.last().is_none_or(|d| *d < o.date), "dates go forward");
            prop_assert!(days.contains(&(o.date.weekday().num_days_from_monday() as usize)));
            prop_assert!(!r.skips.contains(&o.date));
            prop_assert_eq!(s.at(o.date), Some(o.deliver_at));
            seen.push(o.date);
            r = r.advance(now);
        }
        let skipped = skip
            .map(|k| first.date + Duration::days(k))
            .filter(|d| days.contains(&(d.weekday().num_days_from_monday() as usize)));
        prop_assert_eq!(seen.len(), days.len() - usize::from(skipped.is_some()));
    }
}
