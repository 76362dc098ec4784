//! Image references (`host:port/path:tag@digest`) and platform specifiers (`os/arch/variant`).
#![no_main]
use lamina::image::{Platform, Reference};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(s) {
        let shown = r.to_string();
        // What a reference prints, it parses back as itself.
        assert_eq!(
            Reference::parse(&shown).ok().as_ref(),
            Some(&r),
            "{s:?} -> {shown:?}"
        );
    }
    if let Ok(p) = Platform::parse(s) {
        let _ = Platform::parse(&p.to_string());
        let _ = Platform::host().rank(&p);
    }
});
