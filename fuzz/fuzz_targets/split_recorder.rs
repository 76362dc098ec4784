//! The tar-split recorder tapping the reader (seeds: GNU, oldgnu, ustar, PAX, v7 headers); a tar
//! that frames whole must be recorded to the byte.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // A dir per input, removed after it (a static one would outlive the run).
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    lamina::tar::fuzzing::record_tar(data, dir.path());
});
