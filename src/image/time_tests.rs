use super::*;

#[test]
fn civil_dates_across_leap_days_and_the_epoch() {
    assert_eq!(UtcTime::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
    assert_eq!(
        UtcTime::from_unix(951782400).rfc3339(),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        UtcTime::from_unix(951868800 + 3661).rfc3339(),
        "2000-03-01T01:01:01Z"
    );
    assert_eq!(UtcTime::from_unix(-1).rfc3339(), "1969-12-31T23:59:59Z");
}
