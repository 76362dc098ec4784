//! A whole layer blob (plain, gzip or zstd tar) unpacked into a scratch dir: every traversal,
//! link and whiteout rule on hostile bytes. Run as root, as loads are.
#![no_main]
use lamina::digest::Digest;
use lamina::unpack::{unpack_layer, ExpectedBlob, UnpackOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(scratch) = tempfile::tempdir() else {
        return;
    };
    let dest = scratch.path().join("diff");
    if std::fs::create_dir(&dest).is_err() {
        return;
    }
    let digest = Digest::of_bytes(data);
    let expected = ExpectedBlob {
        digest: &digest,
        size: Some(data.len() as u64),
        // Right for a plain tar; a compressed one is refused after it is applied, which is
        // exactly the path a lying config takes.
        diff_id: &digest,
    };
    let _ = unpack_layer(data, &expected, &dest, &UnpackOptions::default());
    // Nothing may have been written outside the scratch dir's own tree.
    for e in std::fs::read_dir(scratch.path()).expect("scratch") {
        let name = e.expect("entry").file_name();
        assert_eq!(name, "diff", "unpack wrote {name:?} beside its dest");
    }
});
