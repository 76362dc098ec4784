use super::held_bytes;

#[test]
fn the_range_an_upload_answers_gives_the_bytes_held() {
    assert_eq!(held_bytes("0-1023"), 1024);
    assert_eq!(held_bytes("bytes=0-9"), 10);
    // distribution's answer for an empty upload (a cut before any byte arrived): nothing held
    assert_eq!(held_bytes("0-0"), 0);
    assert_eq!(held_bytes("0--1"), 0);
    assert_eq!(held_bytes(""), 0);
}
