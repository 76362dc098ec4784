use super::parse_range_end;

#[test]
fn the_range_an_upload_answers_gives_the_last_byte_held() {
    assert_eq!(parse_range_end("0-1023"), Some(1023));
    assert_eq!(parse_range_end("bytes=0-9"), Some(9));
    // distribution's answer for an empty upload: nothing held
    assert_eq!(parse_range_end("0--1"), None);
    assert_eq!(parse_range_end(""), None);
}
