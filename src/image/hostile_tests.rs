//! Hostile input never panics: mutated and random documents and strings only ever give errors.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":2},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","size":3,
 "platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#;
const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=b"],"Cmd":["sh"],"Labels":{"a":"b"}},
 "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
 "history":[{"created_by":"x","empty_layer":false}]}"#;

/// Flips, inserts, deletes and truncates bytes of `seed_doc`.
fn mutate(rng: &mut StdRng, seed_doc: &[u8]) -> Vec<u8> {
    let mut b = seed_doc.to_vec();
    for _ in 0..rng.gen_range(1..6) {
        if b.is_empty() {
            break;
        }
        let i = rng.gen_range(0..b.len());
        match rng.gen_range(0..4) {
            0 => b[i] = rng.gen(),
            1 => b.insert(
                i,
                *b"{}[]\",:0-\\\xff\xc3"
                    .get(rng.gen_range(0..13))
                    .unwrap_or(&b'x'),
            ),
            2 => {
                b.remove(i);
            }
            _ => b.truncate(i),
        }
    }
    b
}

#[test]
fn mutated_manifests_and_configs_never_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    let hints = [
        None,
        Some(media_types::OCI_MANIFEST),
        Some(media_types::OCI_INDEX),
        Some(""),
    ];
    for _ in 0..4000 {
        let m = mutate(&mut rng, MANIFEST.as_bytes());
        let _ = parse_manifest(&m, hints[rng.gen_range(0..hints.len())]);
        let c = mutate(&mut rng, CONFIG.as_bytes());
        if let Ok(cfg) = ImageConfig::parse(c) {
            let _ = cfg.platform().to_string();
            let _ = cfg.with_layer(&crate::digest::Digest::of_bytes(b"x"), &History::default());
        }
    }
}

#[test]
fn random_references_and_platforms_never_panic() {
    let mut rng = StdRng::seed_from_u64(11);
    let alphabet: Vec<char> = "aZ09:/@._-[]()é\u{1F600}sha256:Ab \0".chars().collect();
    for _ in 0..20000 {
        let len = rng.gen_range(0..40);
        let s: String = (0..len)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect();
        if let Ok(r) = Reference::parse(&s) {
            // Whatever parses, prints, and reparses to itself.
            assert_eq!(Reference::parse(&r.full()).unwrap(), r, "{s:?}");
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{s:?}");
        }
        if let Ok(p) = Platform::parse(&s) {
            let _ = p.compatible();
            assert!(p.matches(&p), "{s:?} -> {p}");
        }
    }
}
