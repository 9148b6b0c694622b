//! Chunked-decoder tests: the grammar each rule with a positive and a negative case,
//! trailers, limits, sticky errors, every split point of a multi-chunk body, randomized
//! bodies and mutations, and a replay of the fuzz seed corpus.

use super::*;
use crate::http::testing::Rng;

/// What feeding a whole body produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    data: Vec<u8>,
    consumed: usize,
    done: bool,
    error: Option<ChunkError>,
}

/// Feeds `input` in pieces of the lengths `pieces` yields (the rest at the end), the way
/// a proxy loop would: drop what was consumed, present the rest, never a byte twice.
fn feed_in(input: &[u8], limits: &Limits, mut pieces: impl FnMut() -> usize) -> Outcome {
    let mut dec = ChunkedDecoder::new(limits);
    let mut out = Outcome {
        data: Vec::new(),
        consumed: 0,
        done: false,
        error: None,
    };
    let mut fed = 0;
    let mut pending: Vec<u8> = Vec::new();
    while !out.done {
        if pending.is_empty() {
            if fed == input.len() {
                break;
            }
            let n = pieces().clamp(1, input.len() - fed);
            pending.extend_from_slice(&input[fed..fed + n]);
            fed += n;
        }
        match dec.decode(&pending) {
            Err(e) => {
                out.error = Some(e);
                break;
            }
            Ok(d) => {
                assert!(d.consumed <= pending.len());
                assert!(d.data.end <= d.consumed && d.data.start <= d.data.end);
                assert_eq!(d.done, dec.is_done());
                if !d.done && d.consumed < pending.len() && d.data.is_empty() {
                    // Stopped before an invalid byte: the next call must say so.
                    let rest = &pending[d.consumed..];
                    assert!(dec.clone().decode(rest).is_err(), "stopped early: {d:?}");
                }
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

fn whole(input: &[u8]) -> Outcome {
    feed_in(input, &Limits::default(), || usize::MAX)
}

fn bytewise(input: &[u8]) -> Outcome {
    feed_in(input, &Limits::default(), || 1)
}

fn decoded(input: &[u8]) -> Vec<u8> {
    let out = whole(input);
    assert_eq!(out.error, None, "{:?}", String::from_utf8_lossy(input));
    assert!(out.done, "{:?}", String::from_utf8_lossy(input));
    assert_eq!(out.consumed, input.len());
    assert_eq!(bytewise(input), out);
    out.data
}

fn refused(input: &[u8]) -> ChunkError {
    let out = whole(input);
    assert_eq!(bytewise(input), out, "{:?}", String::from_utf8_lossy(input));
    match out.error {
        Some(e) => e,
        None => panic!("accepted {:?}", String::from_utf8_lossy(input)),
    }
}

const BODY: &[u8] = b"5\r\nhello\r\n6\r\n world\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
const BODY_DATA: &[u8] = b"hello worldabcdefghijklmnopqrstuvwxyz";

#[test]
fn decodes_a_multi_chunk_body() {
    assert_eq!(decoded(BODY), BODY_DATA);
    assert_eq!(decoded(b"0\r\n\r\n"), b"");
    assert_eq!(decoded(b"A\r\n0123456789\r\n0000\r\n\r\n"), b"0123456789");
    assert_eq!(
        decoded(
            b"00000000000000000000000000000000"[..16]
                .iter()
                .chain(b"\r\n\r\n")
                .copied()
                .collect::<Vec<u8>>()
                .as_slice()
        ),
        b""
    );
}

#[test]
fn one_call_returns_one_span_then_the_next() {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let d = dec.decode(BODY).expect("valid");
    assert_eq!(&BODY[d.data.clone()], b"hello");
    // The framing after the span is consumed up to the next chunk's data.
    assert_eq!(&BODY[d.consumed..d.consumed + 6], b" world");
    assert!(!d.done);
    let rest = &BODY[d.consumed..];
    let d = dec.decode(rest).expect("valid");
    assert_eq!(&rest[d.data.clone()], b" world");
    assert_eq!(dec.body_bytes(), 11);
}

#[test]
fn stops_at_the_end_of_the_body() {
    let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    let out = whole(input);
    assert!(out.done);
    assert_eq!(out.data, b"abc");
    assert_eq!(&input[out.consumed..], b"GET / HTTP/1.1\r\n");
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let mut rest: &[u8] = input;
    loop {
        let d = dec.decode(rest).expect("valid");
        rest = &rest[d.consumed..];
        if d.done {
            break;
        }
    }
    let again = dec.decode(rest).expect("still done");
    assert_eq!((again.consumed, again.done), (0, true));
}

#[test]
fn empty_input_consumes_nothing() {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    assert_eq!(
        dec.decode(b""),
        Ok(Decoded {
            consumed: 0,
            data: 0..0,
            done: false
        })
    );
}

#[test]
fn partial_lines_are_kept_inside() {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    for piece in [&b"1"[..], b"0;na", b"me=\"v", b"\"\r", b"\n"] {
        let d = dec.decode(piece).expect("valid");
        assert_eq!((d.consumed, d.data.is_empty()), (piece.len(), true));
    }
    let d = dec.decode(b"0123456789abcdef").expect("valid");
    assert_eq!(d.data, 0..16);
    assert_eq!(dec.body_bytes(), 16);
}

#[test]
fn every_split_point_gives_the_same_body() {
    let expected = whole(BODY);
    for i in 0..=BODY.len() {
        for j in i..=BODY.len() {
            let mut cuts = [i, j - i, usize::MAX].into_iter();
            let out = feed_in(BODY, &Limits::default(), || {
                cuts.next().unwrap_or(usize::MAX)
            });
            assert_eq!(out, expected, "split at {i} and {j}");
        }
    }
}

#[test]
fn chunk_sizes_are_strict() {
    for bad in [
        &b"+5\r\nhello\r\n0\r\n\r\n"[..],
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"g\r\n",
        b"5g\r\nhello\r\n0\r\n\r\n",
        b"5,5\r\nhello\r\n0\r\n\r\n",
    ] {
        assert_eq!(
            refused(bad),
            ChunkError::BadSize,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        decoded(
            b"fF\r\n"
                .iter()
                .chain(&[b'x'; 255])
                .chain(b"\r\n0\r\n\r\n")
                .copied()
                .collect::<Vec<u8>>()
                .as_slice()
        )
        .len(),
        255
    );
}

#[test]
fn chunk_sizes_are_bounded() {
    let sixteen = b"ffffffffffffffff\r\nabc";
    let out = whole(sixteen);
    assert_eq!((out.error, out.data.as_slice()), (None, &b"abc"[..]));
    assert_eq!(refused(b"10000000000000000\r\n"), ChunkError::SizeOverflow);
    assert_eq!(
        refused(b"00000000000000001\r\nx\r\n0\r\n\r\n"),
        ChunkError::SizeOverflow
    );
}

#[test]
fn extensions_follow_the_grammar() {
    for good in [
        &b"5;name\r\nhello\r\n0\r\n\r\n"[..],
        b"5;name=value\r\nhello\r\n0\r\n\r\n",
        b"5;a=1;b;c=\"x y\\\"z\"\r\nhello\r\n0\r\n\r\n",
        b"5 ; a = b ;c\r\nhello\r\n0;last=1\r\n\r\n",
        b"5;a=\"\"\r\nhello\r\n0\r\n\r\n",
    ] {
        assert_eq!(
            decoded(good),
            b"hello",
            "{:?}",
            String::from_utf8_lossy(good)
        );
    }
    for bad in [
        &b"5;\r\nhello\r\n0\r\n\r\n"[..],
        b"5;=v\r\nhello\r\n0\r\n\r\n",
        b"5;a=\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"x\r\nhello\r\n0\r\n\r\n",
        b"5;a=b c\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
        b"5;a\0\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n",
        b"5;a \r\nhello\r\n0\r\n\r\n",
    ] {
        assert_eq!(
            refused(bad),
            ChunkError::BadSize,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn size_lines_are_bounded() {
    let limits = Limits {
        max_chunk_line_bytes: 8,
        ..Limits::default()
    };
    let ok = feed_in(b"5;abcdef\r\nhello\r\n0\r\n\r\n", &limits, || 1);
    assert_eq!((ok.error, ok.done), (None, true));
    let long = feed_in(b"5;abcdefg\r\nhello\r\n0\r\n\r\n", &limits, || 1);
    assert_eq!(long.error, Some(ChunkError::LineTooLong));
    let endless = [&b"5;"[..], &[b'a'; 10_000]].concat();
    assert_eq!(whole(&endless).error, Some(ChunkError::LineTooLong));
}

#[test]
fn lines_end_with_crlf_only() {
    for bad in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5;a=b\nhello\r\n0\r\n\r\n",
        b"5;a=\"b\"\nhello\r\n0\r\n\r\n",
        b"5\rhello\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\r0\r\n\r\n",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"5\r\nhello0\r\n\r\n",
        b"5\r\nhello\r\n0\n\r\n",
        b"5\r\nhello\r\n0\r\n\n",
        b"5\r\nhello\r\n0\r\n\r\r",
        b"0\r\nX: y\n\r\n",
        b"0\r\nX: y\r\r\n",
    ] {
        assert_eq!(
            refused(bad),
            ChunkError::MissingCrlf,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn trailers_are_read_and_discarded() {
    assert_eq!(
        decoded(b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\n"),
        b"hello"
    );
    assert_eq!(decoded(b"0\r\nX-A: a \t b\xff\r\n\r\n"), b"");
    for bad in [
        &b"0\r\nno colon\r\n\r\n"[..],
        b"0\r\nnocolon\r\n\r\n",
        b"0\r\n: v\r\n\r\n",
        b"0\r\nX : v\r\n\r\n",
        b"0\r\nX: a\r\n folded\r\n\r\n",
        b"0\r\n\tX: a\r\n\r\n",
        b"0\r\nX: a\0b\r\n\r\n",
        b"0\r\nX: a\x7fb\r\n\r\n",
    ] {
        assert_eq!(
            refused(bad),
            ChunkError::BadTrailer,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn trailers_are_bounded() {
    let limits = Limits {
        max_trailer_bytes: 10,
        ..Limits::default()
    };
    // "X: 123\r\n" and the final CRLF are 10 bytes.
    let at = feed_in(b"0\r\nX: 123\r\n\r\n", &limits, || 3);
    assert_eq!((at.error, at.done), (None, true));
    let over = feed_in(b"0\r\nX: 1234\r\n\r\n", &limits, || 3);
    assert_eq!(over.error, Some(ChunkError::TrailerTooLarge));
    let endless = [&b"0\r\n"[..], &b"X: y\r\n".repeat(10_000)].concat();
    assert_eq!(whole(&endless).error, Some(ChunkError::TrailerTooLarge));
}

#[test]
fn data_longer_than_declared_is_refused() {
    assert_eq!(refused(b"3\r\nhello\r\n0\r\n\r\n"), ChunkError::MissingCrlf);
    // The declared data is handed out before the error, however the input is split.
    let out = whole(b"3\r\nhello\r\n0\r\n\r\n");
    assert_eq!((out.data.as_slice(), out.consumed), (&b"hel"[..], 6));
}

#[test]
fn errors_are_sticky() {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    let input = b"5\nhello";
    let before = dec.decode(input).expect("the valid prefix first");
    assert_eq!((before.consumed, before.data.is_empty()), (1, true));
    assert_eq!(dec.decode(&input[1..]), Err(ChunkError::MissingCrlf));
    assert_eq!(dec.decode(b"0\r\n\r\n"), Err(ChunkError::MissingCrlf));
    assert!(!dec.is_done());
    let mut dec = ChunkedDecoder::new(&Limits::default());
    assert_eq!(dec.decode(b"\n"), Err(ChunkError::BadSize));
}

#[test]
fn chunk_headers_round_trip() {
    let mut out = Vec::new();
    for size in [0usize, 1, 15, 16, 255, 4096, usize::MAX] {
        out.clear();
        write_chunk_header(&mut out, size);
        assert_eq!(out, format!("{size:x}\r\n").into_bytes());
    }
    let mut body = Vec::new();
    for piece in [&b"hello"[..], b" ", b"world"] {
        write_chunk_header(&mut body, piece.len());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(LAST_CHUNK);
    assert_eq!(decoded(&body), b"hello world");
}

/// A random chunked body with extensions and trailers, and its data.
fn random_body(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let mut body = Vec::new();
    let mut data = Vec::new();
    for _ in 0..rng.below(5) {
        let size = 1 + rng.below(40);
        let piece: Vec<u8> = (0..size).map(|_| rng.below(256) as u8).collect();
        let digits = format!("{size:x}");
        let digits = if rng.below(2) == 0 {
            digits.to_uppercase()
        } else {
            digits
        };
        body.extend_from_slice(format!("{:0>width$}", digits, width = 1 + rng.below(4)).as_bytes());
        if rng.below(3) == 0 {
            body.extend_from_slice(b";ext=\"a\\\"b\"; flag");
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&piece);
        body.extend_from_slice(b"\r\n");
        data.extend_from_slice(&piece);
    }
    body.extend_from_slice(b"0\r\n");
    if rng.below(2) == 0 {
        body.extend_from_slice(b"X-Trailer: t\r\n");
    }
    body.extend_from_slice(b"\r\n");
    (body, data)
}

#[test]
fn randomized_bodies_decode_in_any_split() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..500 {
        let (body, data) = random_body(&mut rng);
        assert_eq!(decoded(&body), data);
        let out = feed_in(&body, &Limits::default(), || 1 + rng.below(9));
        assert_eq!((out.data, out.done, out.consumed), (data, true, body.len()));
    }
}

#[test]
fn randomized_mutations_agree_across_splits() {
    let alphabet = b"\r\n;=\" \t0aF:\\\0x";
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..2000 {
        let (mut body, _) = random_body(&mut rng);
        for _ in 0..1 + rng.below(2) {
            let at = rng.below(body.len());
            match rng.below(3) {
                0 => body[at] = alphabet[rng.below(alphabet.len())],
                1 => body.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => {
                    body.remove(at);
                }
            }
        }
        let expected = whole(&body);
        assert_eq!(
            bytewise(&body),
            expected,
            "{:?}",
            String::from_utf8_lossy(&body)
        );
        let out = feed_in(&body, &Limits::default(), || 1 + rng.below(7));
        assert_eq!(out, expected, "{:?}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn fuzz_seed_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/fuzz_chunked");
    let entries = std::fs::read_dir(dir).expect("the seed corpus is committed");
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("a readable corpus entry").path();
        let input = std::fs::read(&path).expect("a readable corpus file");
        // The fuzz target's input: a seed byte for the split lengths, then the body.
        let Some((&seed, body)) = input.split_first() else {
            continue;
        };
        let mut rng = Rng(u64::from(seed) | 0x100);
        assert_eq!(
            feed_in(body, &Limits::default(), || 1 + rng.below(16)),
            whole(body),
            "{}",
            path.display()
        );
        replayed += 1;
    }
    assert!(replayed > 0);
}
