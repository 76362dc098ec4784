//! Calendar time in UTC from Unix seconds: what image configs write (`created`, RFC 3339) and what
//! docker's tables print. The proleptic Gregorian calendar is all it takes; no time zone database.

/// A UTC date and time of day, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// The civil date of `secs` since the epoch (Howard Hinnant's days-to-civil algorithm).
    pub fn from_unix(secs: i64) -> UtcTime {
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400) as u32;
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }

    /// "2024-01-02T03:04:05Z", as image configs write `created`.
    pub fn rfc3339(&self) -> String {
        let UtcTime {
            year: y,
            month: m,
            day: d,
            hour: hh,
            minute: mm,
            second: ss,
        } = *self;
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

#[cfg(test)]
#[path = "time_tests.rs"]
mod tests;
