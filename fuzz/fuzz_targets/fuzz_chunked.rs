//! `fuzz_chunked`: arbitrary bytes as a chunked body. The first byte seeds the lengths
//! (1 to 16) of the reads the body is split into; the rest is the body, decoded by
//! `ChunkedDecoder` with the default limits and with tiny ones.
//!
//! Guards against panics and against a decoder whose answer depends on how the body
//! arrived: the data handed out, the bytes consumed, `done` and the error must be the same
//! for the whole body in one read, for the random reads and for one byte at a time. A
//! decoder that frames a split body differently lets a request hide inside another.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::http::{ChunkError, ChunkedDecoder, Limits};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    data: Vec<u8>,
    consumed: usize,
    done: bool,
    error: Option<ChunkError>,
}

/// Feeds `body` in reads of the lengths `next_read` gives, dropping what each call
/// consumed, as the proxy loop does.
fn feed(body: &[u8], limits: &Limits, mut next_read: impl FnMut() -> usize) -> Outcome {
    let mut dec = ChunkedDecoder::new(limits);
    let mut out = Outcome {
        data: Vec::new(),
        consumed: 0,
        done: false,
        error: None,
    };
    let mut read = 0;
    let mut pending: Vec<u8> = Vec::new();
    while !out.done {
        if pending.is_empty() {
            if read == body.len() {
                break;
            }
            let n = next_read().clamp(1, body.len() - read);
            pending.extend_from_slice(&body[read..read + n]);
            read += n;
        }
        match dec.decode(&pending) {
            Err(e) => {
                out.error = Some(e);
                break;
            }
            Ok(d) => {
                assert!(d.data.start <= d.data.end && d.data.end <= d.consumed);
                assert!(d.consumed <= pending.len());
                assert_eq!(d.done, dec.is_done());
                out.data.extend_from_slice(&pending[d.data]);
                out.consumed += d.consumed;
                out.done = d.done;
                pending.drain(..d.consumed);
            }
        }
    }
    assert_eq!(dec.body_bytes(), out.data.len() as u64);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let tiny = Limits {
        max_chunk_line_bytes: 8,
        max_trailer_bytes: 16,
        ..Limits::default()
    };
    for limits in [Limits::default(), tiny] {
        let whole = feed(body, &limits, || usize::MAX);
        let mut state = u64::from(seed) | 0x100;
        let random = feed(body, &limits, || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            1 + (state % 16) as usize
        });
        assert_eq!(random, whole);
        assert_eq!(feed(body, &limits, || 1), whole);
        assert!(whole.consumed <= body.len());
    }
});
