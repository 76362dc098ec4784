//! PAX records (`<len> <key>=<value>\n`) over any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lamina::tar::fuzzing::parse_pax_records(data));
