//! RFC 3339 timestamps for server messages, without a date library.

/// `9999-12-31T23:59:59.999Z`: the last instant with a four-digit year.
const MAX_MILLIS: u64 = 253_402_300_799_999;

/// Length of every timestamp written by [`write_timestamp`].
pub(crate) const TIMESTAMP_LEN: usize = 24;

/// Appends RFC 3339 UTC with exactly three fractional digits and `Z`, e.g.
/// `2026-11-23T10:00:00.123Z`, for milliseconds since the Unix epoch (no chrono:
/// civil-from-days arithmetic). Valid for years 1970..=9999; clamp beyond.
///
/// Always appends exactly 24 bytes and never quotes.
pub fn write_timestamp(out: &mut Vec<u8>, unix_millis: u64) {
    out.extend_from_slice(&timestamp_bytes(unix_millis));
}

/// The RFC 3339 timestamp of `unix_millis` as ASCII bytes, on the stack.
pub(crate) fn timestamp_bytes(unix_millis: u64) -> [u8; TIMESTAMP_LEN] {
    let millis = unix_millis.min(MAX_MILLIS);
    let secs = millis / 1000;
    let ms = millis % 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);

    let mut buf = [0u8; TIMESTAMP_LEN];
    put_digits(&mut buf[0..4], year);
    buf[4] = b'-';
    put_digits(&mut buf[5..7], month);
    buf[7] = b'-';
    put_digits(&mut buf[8..10], day);
    buf[10] = b'T';
    put_digits(&mut buf[11..13], sod / 3600);
    buf[13] = b':';
    put_digits(&mut buf[14..16], sod % 3600 / 60);
    buf[16] = b':';
    put_digits(&mut buf[17..19], sod % 60);
    buf[19] = b'.';
    put_digits(&mut buf[20..23], ms);
    buf[23] = b'Z';
    buf
}

/// Fills `dst` with the low decimal digits of `n`, zero-padded.
fn put_digits(dst: &mut [u8], mut n: u64) {
    for slot in dst.iter_mut().rev() {
        // `n % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Howard Hinnant's `civil_from_days`, specialised to non-negative day counts
/// (the input is clamped to 1970..=9999, so no signed arithmetic is needed).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, March-based
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(millis: u64) -> String {
        let mut out = Vec::new();
        write_timestamp(&mut out, millis);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn epoch_is_formatted_with_three_fractional_digits() {
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn example_from_the_protocol_document_round_trips() {
        // 1_795_428_000 s = 20_780 days + 36_000 s; day 20_780 is 2026-11-23
        // (20_454 days to 2026-01-01, then day-of-year 327 = Nov 23), 36_000 s = 10:00.
        assert_eq!(ts(1_795_428_000_123), "2026-11-23T10:00:00.123Z");
    }

    #[test]
    fn leap_days_are_formatted() {
        // 1_709_164_800 = 2024-02-29T00:00:00Z (1_709_251_200 - 86_400 = 2024-03-01 minus a day).
        assert_eq!(ts(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        // 951_782_400 = 2000-02-29 (century year divisible by 400 is a leap year).
        assert_eq!(ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ts(951_868_800_000), "2000-03-01T00:00:00.000Z");
    }

    #[test]
    fn last_millisecond_of_a_year_rolls_correctly() {
        assert_eq!(ts(1_704_067_199_999), "2023-12-31T23:59:59.999Z");
        assert_eq!(ts(1_704_067_200_000), "2024-01-01T00:00:00.000Z");
    }

    #[test]
    fn instants_beyond_year_9999_are_clamped() {
        assert_eq!(ts(MAX_MILLIS), "9999-12-31T23:59:59.999Z");
        assert_eq!(ts(MAX_MILLIS + 1), "9999-12-31T23:59:59.999Z");
        assert_eq!(ts(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn output_is_appended_not_overwritten() {
        let mut out = b"x".to_vec();
        write_timestamp(&mut out, 0);
        assert_eq!(out, b"x1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_day_across_four_centuries_advances_the_date_by_one() {
        // Independent check: walk the calendar day by day with the Gregorian rules.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..(146_097u64 + 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > month_len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
