//! The decompressors of layer blobs, chosen here and only here: every gzip or zstd stream lamina
//! reads (unpack, verify, `import`, `build`) goes through [`decoder`].
//!
//! gzip has two backends. ISA-L (`isal` feature, on by default: Debian's libisal, see
//! `crate::sys::isal`) inflates ~1.9x faster than zlib-rs here (x86-64); zlib-rs (flate2's pure-Rust
//! backend) is the portable default and what a build without the feature uses. The environment
//! variable `LAMINA_GZIP=zlib-rs|isal` overrides the choice at run time, so both paths can be
//! compared and tested in one binary; it is read once per process.
//!
//! zstd goes through libzstd, frame-parallel when a layer is several small frames
//! (`zstd_frames`).
//!
//! Both backends read a blob as a sequence of gzip members (a layer may be several concatenated
//! members) and fail alike on a bad header, a bad CRC or length, data after the last member that
//! is not a member, and a stream that ends inside a member.

use std::io::{self, BufRead, Read};
use std::sync::OnceLock;

use super::BlobCompression;

/// The environment variable that picks the gzip backend (`zlib-rs` or `isal`).
pub const GZIP_BACKEND_ENV: &str = "LAMINA_GZIP";

/// Who inflates gzip layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipBackend {
    /// flate2 over zlib-rs: pure Rust, always built.
    ZlibRs,
    /// ISA-L's igzip (libisal), when built with the `isal` feature.
    #[cfg(feature = "isal")]
    Isal,
}

impl GzipBackend {
    /// The fastest backend built in.
    pub const fn best() -> Self {
        #[cfg(feature = "isal")]
        return GzipBackend::Isal;
        #[cfg(not(feature = "isal"))]
        return GzipBackend::ZlibRs;
    }

    /// Every backend built in, fastest first.
    pub fn all() -> &'static [GzipBackend] {
        &[
            #[cfg(feature = "isal")]
            GzipBackend::Isal,
            GzipBackend::ZlibRs,
        ]
    }

    /// The backend this process uses: [`GZIP_BACKEND_ENV`] if set to a backend built in, else
    /// [`GzipBackend::best`] (with a warning if it names another).
    pub fn selected() -> Self {
        static SELECTED: OnceLock<GzipBackend> = OnceLock::new();
        *SELECTED.get_or_init(|| match std::env::var(GZIP_BACKEND_ENV) {
            Ok(name) if !name.is_empty() => Self::parse(&name).unwrap_or_else(|| {
                tracing::warn!(
                    "{GZIP_BACKEND_ENV}={name:?} names no gzip backend built in (built: {}); using {}",
                    Self::all().iter().map(|b| b.name()).collect::<Vec<_>>().join(", "),
                    Self::best().name()
                );
                Self::best()
            }),
            _ => Self::best(),
        })
    }

    /// The backend `name` (as [`GzipBackend::name`] spells it, or `zlib`/`isa-l`) means, if
    /// built in.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "zlib-rs" | "zlib" => Some(GzipBackend::ZlibRs),
            #[cfg(feature = "isal")]
            "isal" | "isa-l" => Some(GzipBackend::Isal),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GzipBackend::ZlibRs => "zlib-rs",
            #[cfg(feature = "isal")]
            GzipBackend::Isal => "isal",
        }
    }

    /// For `lamina info`: the backend and, for ISA-L, the library file loaded.
    pub fn describe(self) -> String {
        match self {
            GzipBackend::ZlibRs => "zlib-rs (flate2)".to_string(),
            #[cfg(feature = "isal")]
            GzipBackend::Isal => match crate::sys::isal::loaded_library() {
                Some(lib) => format!("isa-l ({lib})"),
                None => "isa-l".to_string(),
            },
        }
    }
}

/// For `lamina info`: the zstd decoder.
pub fn zstd_decoder_name() -> String {
    format!("libzstd {}", zstd::zstd_safe::version_string())
}

/// A decompressing reader over a blob's bytes. A concrete type rather than a boxed one so that it
/// is `Send` exactly when its input is (a pipeline may run it on its own thread).
pub(crate) enum Decoder<R: BufRead> {
    Plain(R),
    ZlibRs(Box<flate2::bufread::MultiGzDecoder<R>>),
    #[cfg(feature = "isal")]
    Isal(IsalGzDecoder<R>),
    Zstd(Box<super::zstd_frames::ZstdFrames<R>>),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::ZlibRs(r) => r.read(buf),
            #[cfg(feature = "isal")]
            Decoder::Isal(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// The decompressor for a blob of `kind`, gzip by the process's [`GzipBackend::selected`].
pub(crate) fn decoder<R: BufRead>(kind: BlobCompression, input: R) -> io::Result<Decoder<R>> {
    decoder_with(GzipBackend::selected(), kind, input)
}

/// [`decoder`] with the gzip backend given (tests and benches compare them).
pub(crate) fn decoder_with<R: BufRead>(
    gzip: GzipBackend,
    kind: BlobCompression,
    input: R,
) -> io::Result<Decoder<R>> {
    Ok(match (kind, gzip) {
        (BlobCompression::Gzip, GzipBackend::ZlibRs) => {
            Decoder::ZlibRs(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
        }
        #[cfg(feature = "isal")]
        (BlobCompression::Gzip, GzipBackend::Isal) => Decoder::Isal(IsalGzDecoder::new(input)),
        (BlobCompression::Zstd, _) => {
            Decoder::Zstd(Box::new(super::zstd_frames::ZstdFrames::new(input)))
        }
        (BlobCompression::Plain, _) => Decoder::Plain(input),
    })
}

/// The plain stream of `input` (gzip, zstd or plain, told by its first bytes) with the gzip
/// backend given: for benches and tools that compare backends; lamina itself uses
/// [`super::decompress`].
pub fn decompress_with<'a, R: BufRead + 'a>(
    gzip: GzipBackend,
    mut input: R,
) -> io::Result<Box<dyn Read + 'a>> {
    let kind = super::detect(input.fill_buf()?)
        .map_err(|m| io::Error::new(io::ErrorKind::Unsupported, m))?;
    Ok(Box::new(decoder_with(gzip, kind, input)?))
}

/// Concatenated gzip members through ISA-L, reading the input's own buffer (no copy in front of
/// the inflater).
#[cfg(feature = "isal")]
pub(crate) struct IsalGzDecoder<R> {
    input: R,
    inflater: crate::sys::isal::GzipInflater,
    /// The last member's trailer was read: the next input byte, if any, starts a new member.
    between_members: bool,
}

#[cfg(feature = "isal")]
impl<R: BufRead> IsalGzDecoder<R> {
    pub(crate) fn new(input: R) -> Self {
        IsalGzDecoder {
            input,
            inflater: crate::sys::isal::GzipInflater::new(),
            between_members: false,
        }
    }
}

#[cfg(feature = "isal")]
impl<R: BufRead> Read for IsalGzDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.input.fill_buf()?;
            if self.between_members {
                if input.is_empty() {
                    return Ok(0);
                }
                self.inflater.reset();
                self.between_members = false;
            }
            let at_eof = input.is_empty();
            let step = self.inflater.inflate(input, buf).map_err(|rc| {
                io::Error::new(io::ErrorKind::InvalidData, crate::sys::isal::describe(rc))
            })?;
            self.input.consume(step.consumed);
            self.between_members = step.member_done;
            if step.produced > 0 {
                return Ok(step.produced);
            }
            if step.member_done {
                continue;
            }
            if at_eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "gzip stream ends inside a member",
                ));
            }
            if step.consumed == 0 {
                // Input and room for output, yet nothing moved: never loop on it.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "gzip inflate made no progress",
                ));
            }
        }
    }
}
