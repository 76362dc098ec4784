//! ISA-L's stateful inflate (`isal_inflate`, libisal's igzip), behind a safe type: the gzip
//! decoder of layer unpacking (`unpack::decode`) when lamina is built with the `isal` feature.
//!
//! One gzip member per run of the state: `isal_inflate` with `crc_flag = ISAL_GZIP` parses the
//! member's header, inflates, and checks its trailer (CRC-32 and length); the caller resets it for
//! the next member. ISA-L keeps the last 32 KiB of output (the match window) in its own state, so
//! the input and output slices only need to live for one call.
//!
//! # References
//! - [isa-l `igzip_lib.h`](https://github.com/intel/isa-l/blob/master/include/igzip_lib.h)

use isal_sys::igzip_lib as ffi;

/// An inflate state set up for gzip members. Large (~50 KiB), so boxed.
pub struct GzipInflater {
    state: Box<ffi::inflate_state>,
}

// SAFETY: the state owns no thread-bound resource; its raw pointers are set and cleared around
// each call (see `inflate`), so between calls they point nowhere.
unsafe impl Send for GzipInflater {}

/// What one [`GzipInflater::inflate`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input used (the rest belongs to what follows: more of this member, the next
    /// member, or trailing data).
    pub consumed: usize,
    /// Bytes written to the front of the output.
    pub produced: usize,
    /// The member's trailer was read and matched: reset before the next member.
    pub member_done: bool,
}

impl GzipInflater {
    pub fn new() -> Self {
        let mut state = Box::<ffi::inflate_state>::new_uninit();
        // SAFETY: isal_inflate_init writes every field that isal_inflate reads before writing
        // (the buffers are written before they are read), and takes only the pointer.
        unsafe { ffi::isal_inflate_init(state.as_mut_ptr()) };
        // SAFETY: initialised just above; inflate_state is plain data (integers, arrays and
        // pointers), for which any bit pattern of the untouched buffers is valid.
        let mut state = unsafe { state.assume_init() };
        state.crc_flag = ffi::ISAL_GZIP;
        GzipInflater { state }
    }

    /// Forgets the finished member (keeping the gzip setting) so the next one can start.
    pub fn reset(&mut self) {
        // SAFETY: the state was initialised in `new`; reset takes only the pointer.
        unsafe { ffi::isal_inflate_reset(&mut *self.state) };
    }

    /// Inflates from `input` into `output` until one of them runs out or the member ends.
    /// An error is ISA-L's (negative) return code: see [`describe`].
    pub fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, i32> {
        let s = &mut *self.state;
        s.next_in = input.as_ptr().cast_mut();
        s.avail_in = u32::try_from(input.len()).unwrap_or(u32::MAX);
        s.next_out = output.as_mut_ptr();
        s.avail_out = u32::try_from(output.len()).unwrap_or(u32::MAX);
        let (in_len, out_len) = (s.avail_in as usize, s.avail_out as usize);
        // SAFETY: next_in/avail_in and next_out/avail_out describe the two borrowed slices,
        // valid for the call; ISA-L reads only the input, writes only the output and its own
        // state, and keeps no pointer into either after returning (its window is copied into
        // the state).
        let rc = unsafe { ffi::isal_inflate(s) };
        let step = Step {
            consumed: in_len - s.avail_in as usize,
            produced: out_len - s.avail_out as usize,
            member_done: s.block_state == ffi::isal_block_state_ISAL_BLOCK_FINISH,
        };
        s.next_in = std::ptr::null_mut();
        s.avail_in = 0;
        s.next_out = std::ptr::null_mut();
        s.avail_out = 0;
        if rc < 0 {
            Err(rc)
        } else {
            Ok(step)
        }
    }
}

impl Default for GzipInflater {
    fn default() -> Self {
        Self::new()
    }
}

/// What an `isal_inflate` error code means, in the words of zlib's messages where they match.
pub fn describe(rc: i32) -> &'static str {
    match rc {
        ffi::ISAL_INVALID_BLOCK => "invalid deflate block",
        ffi::ISAL_INVALID_SYMBOL => "invalid deflate symbol",
        ffi::ISAL_INVALID_LOOKBACK => "invalid distance too far back",
        ffi::ISAL_INVALID_WRAPPER => "invalid gzip header",
        ffi::ISAL_UNSUPPORTED_METHOD => "unsupported compression method",
        ffi::ISAL_INCORRECT_CHECKSUM => "gzip trailer: CRC or length mismatch",
        _ => "unknown inflate error",
    }
}

/// The file name of the libisal this process has mapped (`libisal.so.2.0.30`), read from
/// `/proc/self/maps`: ISA-L has no version call, and the name carries it.
pub fn loaded_library() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let path = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("libisal.so"))
        })?;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.into());
    Some(real.file_name()?.to_string_lossy().into_owned())
}
