//! A tar-split record file (header, zstd segments) read back, whatever its bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // A dir per input, removed after it (a static one would outlive the run).
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    lamina::tar::fuzzing::read_record(data, dir.path());
});
