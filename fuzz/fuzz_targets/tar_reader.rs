//! The tar framing (headers, PAX, GNU long names and sparse maps) over any bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lamina::tar::fuzzing::read_tar(data));
