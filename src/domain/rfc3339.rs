//! RFC 3339 timestamps written straight into a stack buffer, byte for byte what chrono's own
//! `Serialize` writes (`SecondsFormat::AutoSi`, `Z`), for the fields every order version
//! serialises several times (its row, its event, its HTTP answer).
//!
//! Why not chrono's: it formats through `collect_str`, so serde_json escapes the text one
//! `fmt::Write` fragment at a time; under `dabba load` that was ~3 % of the server's CPU
//! (`perf`, issue 9 seventh pass). Years outside 0000–9999 and leap seconds, which no clock
//! here produces, still go through chrono.
//!
//! Use as `#[serde(serialize_with = "rfc3339::utc")]` (or `rfc3339::utc_opt`); reading stays
//! chrono's.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// The longest text written here: `YYYY-MM-DDTHH:MM:SS.fffffffffZ`.
const MAX_LEN: usize = 30;

/// Serialises `t` as chrono does.
pub fn utc<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match write(t, &mut buf) {
        // Only ASCII digits and separators were written.
        Some(len) => s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default()),
        None => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// [`utc`] for an optional time (`null` when absent).
pub fn utc_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => utc(t, s),
        None => s.serialize_none(),
    }
}

/// Writes `t` into `buf`, answering its length; `None` where chrono's longer forms apply.
fn write(t: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let nanos = t.timestamp_subsec_nanos();
    if nanos >= 1_000_000_000 {
        return None; // a leap second: chrono writes `:60`
    }
    let secs = t.timestamp();
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let year = year as u32; // within 0..=9999
    digits(&mut buf[0..4], year);
    buf[4] = b'-';
    digits(&mut buf[5..7], month);
    buf[7] = b'-';
    digits(&mut buf[8..10], day);
    buf[10] = b'T';
    let of_day = of_day as u32; // within 0..86_400
    digits(&mut buf[11..13], of_day / 3600);
    buf[13] = b':';
    digits(&mut buf[14..16], of_day / 60 % 60);
    buf[16] = b':';
    digits(&mut buf[17..19], of_day % 60);
    let mut len = 19;
    // AutoSi: no fraction, or milli-, micro- or nanoseconds, whichever is exact.
    let fraction = if nanos == 0 {
        None
    } else if nanos.is_multiple_of(1_000_000) {
        Some((nanos / 1_000_000, 3))
    } else if nanos.is_multiple_of(1_000) {
        Some((nanos / 1_000, 6))
    } else {
        Some((nanos, 9))
    };
    if let Some((value, width)) = fraction {
        buf[len] = b'.';
        digits(&mut buf[len + 1..len + 1 + width], value);
        len += 1 + width;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// Writes `value` in decimal, zero-padded to fill `out`.
fn digits(out: &mut [u8], mut value: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Year, month and day of the `days`-th day after 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    /// What chrono's own `Serialize` writes.
    fn chrono_json(t: &DateTime<Utc>) -> String {
        serde_json::to_string(t).unwrap()
    }

    fn ours_json(t: &DateTime<Utc>) -> String {
        let mut out = Vec::new();
        utc(t, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_fraction_width_and_the_edges_read_as_chrono_writes_them() {
        for (secs, nanos) in [
            (0, 0),
            (1_764_979_200, 0),
            (1_764_979_200, 7_000_000),
            (1_764_979_200, 7_000),
            (1_764_979_200, 7),
            (951_782_400, 999_999_999), // 2000-02-29
            (-62_167_219_200, 0),       // 0000-01-01
            (253_402_300_799, 0),       // 9999-12-31T23:59:59
            (-1, 500_000_000),
        ] {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            assert_eq!(ours_json(&t), chrono_json(&t), "{secs}.{nanos}");
        }
    }

    #[test]
    fn years_outside_four_digits_and_leap_seconds_fall_back_to_chrono() {
        let far = Utc.timestamp_opt(253_402_300_800, 0).unwrap(); // 10000-01-01
        assert_eq!(ours_json(&far), chrono_json(&far));
        let before = Utc.timestamp_opt(-62_167_219_201, 0).unwrap(); // -0001-12-31
        assert_eq!(ours_json(&before), chrono_json(&before));
        let leap = Utc.timestamp_opt(1_483_228_799, 1_500_000_000).unwrap();
        assert_eq!(ours_json(&leap), chrono_json(&leap));
    }

    #[test]
    fn absent_times_are_null() {
        let mut out = Vec::new();
        utc_opt(&None, &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(out, b"null");
    }

    proptest! {
        #[test]
        fn any_time_reads_as_chrono_writes_it(
            secs in -62_167_219_200i64..253_402_300_800,
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000, (0u32..1_000).prop_map(|m| m * 1_000_000), (0u32..1_000_000).prop_map(|u| u * 1_000)],
        ) {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            prop_assert_eq!(ours_json(&t), chrono_json(&t));
        }
    }
}
