//! Docker's human-readable renderings (go-units) and time parsing for `--since`/`--until`.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// go-units `HumanDuration`: "Less than a second", "About a minute", "3 hours", ...
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units, `%.3g`.
pub(crate) fn human_size(size: f64) -> String {
    human_size_prec(size, 3)
}

/// go-units `HumanSizeWithPrecision(size, prec)`; `HumanSize` is precision 4.
pub(crate) fn human_size_prec(size: f64, prec: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = size;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", fmt_g(v, prec), UNITS[i])
}

/// go-units `BytesSize`: binary units (KiB, MiB, ...), `%.4g`.
pub(crate) fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = size;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", fmt_g(v, 4), UNITS[i])
}

/// Go's `%.<prec>g` for the non-negative values below 1000 that `human_size` produces.
fn fmt_g(v: f64, prec: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (prec - 1 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's civil_from_days.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2006-01-02 15:04:05 +0000 UTC` (docker's `CreatedAt` column).
pub(crate) fn format_created_at(unix: i64) -> String {
    let (y, mo, d) = civil_from_days(unix.div_euclid(86_400));
    let t = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// RFC 3339 in seconds, in UTC (Go's `time.RFC3339`, as docker's `history` prints `CreatedAt`).
pub(crate) fn format_rfc3339(unix: i64) -> String {
    format_rfc3339_nano(i128::from(unix) * 1_000_000_000).replace(".000000000Z", "Z")
}

/// RFC 3339 with all nine nanosecond digits (docker's `RFC3339NanoFixed`), in UTC.
pub(crate) fn format_rfc3339_nano(unix_nanos: i128) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000) as i64;
    let nanos = unix_nanos.rem_euclid(1_000_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let frac = format!(".{nanos:09}");
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Go's `time.ANSIC` (`Thu May  7 21:09:36 2026`) for an RFC 3339 string; other text unchanged.
pub(crate) fn rfc3339_to_ansic(s: &str) -> String {
    let Some(secs) = parse_rfc3339(s) else {
        return s.to_string();
    };
    let secs = secs.floor() as i64;
    let days = secs.div_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let t = secs.rem_euclid(86_400);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {d:>2} {:02}:{:02}:{:02} {y}",
        WD[days.rem_euclid(7) as usize],
        MON[(mo - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Parses an RFC 3339 timestamp (or a date) to Unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<f64> {
    let (date, rest) = s.split_at(s.find('T').unwrap_or(s.len()));
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let mo: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if dp.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) as f64 * 86_400.0;
    let Some(time) = rest.strip_prefix('T') else {
        return Some(secs);
    };
    // split off the zone: Z, +hh:mm, -hh:mm, or none (UTC)
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0.0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1.0 } else { 1.0 };
        let (hh, mm) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
        (
            c,
            sign * (hh.parse::<f64>().ok()? * 3600.0 + mm.parse::<f64>().ok()? * 60.0),
        )
    } else {
        (time, 0.0)
    };
    let mut cp = clock.split(':');
    let h: f64 = cp.next()?.parse().ok()?;
    let m: f64 = cp.next().unwrap_or("0").parse().ok()?;
    let sec: f64 = cp.next().unwrap_or("0").parse().ok()?;
    secs += h * 3600.0 + m * 60.0 + sec - offset;
    Some(secs)
}

/// A Go duration (`1h30m`, `10s`, `1.5h`, `300ms`) in seconds.
pub(crate) fn parse_go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total)
}

/// docker's `timetypes.GetTimestamp`: a Unix timestamp passes through, a duration is relative to
/// now, an RFC 3339 date is converted; the result is what `/events` and `/logs` take.
pub(crate) fn api_timestamp(value: &str) -> Option<String> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Some(value.to_string());
    }
    let secs = match parse_go_duration(value) {
        Some(d) => now_unix() - d,
        None => parse_rfc3339(value)?,
    };
    Some(format!("{:.9}", secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1234.0), "1.23kB");
        assert_eq!(human_size(4_258_000.0), "4.26MB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(12_500_000.0), "12.5MB");
    }

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(format_created_at(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            format_rfc3339_nano(1_795_838_933_120_000_000),
            "2026-11-28T04:08:53.120000000Z"
        );
        assert_eq!(parse_rfc3339("2026-11-28T04:08:53Z"), Some(1_795_838_933.0));
        assert_eq!(
            parse_rfc3339("2026-11-28T05:08:53+01:00"),
            Some(1_795_838_933.0)
        );
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(
            rfc3339_to_ansic("2026-05-07T21:09:36.000000000+00:00"),
            "Thu May  7 21:09:36 2026"
        );
        assert_eq!(api_timestamp("1795838933"), Some("1795838933".into()));
        assert!(api_timestamp("yesterday-ish").is_none());
    }
}
