//! Rewriting heads on their way through: the request head sent upstream and the response head
//! sent back, APISIX-style.
//!
//! Upstream requests lose the hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and every header
//! it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`)
//! and `Expect` (the gateway answers `100-continue` itself); get `Host` per `pass_host`,
//! `X-Forwarded-For` ending with the client address, and `X-Real-IP`, `X-Forwarded-Proto`,
//! `X-Forwarded-Host`, `X-Forwarded-Port` set by the gateway (a client's own `X-Forwarded-*`
//! values, and its RFC 7239 `Forwarded`, pass only from a trusted address); and carry the body
//! framing the proxy chose. Responses lose the same hop-by-hop headers and `Server`, which the
//! gateway sets.

use std::io::Write;
use std::net::SocketAddr;

use crate::http::{HeaderSpan, RequestHead, ResponseHead};
use crate::plugins::phase::{Edits, Text};

use super::date;

/// Who the client is, for the forwarding headers.
pub struct ClientInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The port the client connected to.
    pub local_port: u16,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Whether the client's own `X-Forwarded-*` and `Forwarded` headers are trusted.
    pub trusted: bool,
}

/// How a body is framed on the way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (and no `Content-Length` of ours).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Response only: no length header, the end of the body is the end of the connection.
    Close,
    /// Response only: no body, but the upstream's `Content-Length` is passed on (HEAD, 304).
    KeepLength,
}

#[inline]
fn span(buf: &[u8], s: (u32, u32)) -> &[u8] {
    buf.get(s.0 as usize..s.1 as usize).unwrap_or_default()
}

fn named(buf: &[u8], tokens: &[(u32, u32)], name: &[u8]) -> bool {
    tokens
        .iter()
        .any(|t| span(buf, *t).eq_ignore_ascii_case(name))
}

/// Headers removed from both directions (besides those `Connection` names).
fn hop_by_hop(name: &[u8]) -> bool {
    const HOP: [&[u8]; 7] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

fn is(name: &[u8], want: &[u8]) -> bool {
    name.eq_ignore_ascii_case(want)
}

/// Writes the head of the request sent upstream.
///
/// `host` is the `Host` value to send; `path_and_query` the origin-form target.
#[allow(clippy::too_many_arguments)]
pub fn request_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    path_and_query: &[u8],
    host: &[u8],
    client: &ClientInfo,
    body: Framing,
    edits: &Edits,
) {
    out.extend_from_slice(
        edits
            .method
            .as_ref()
            .unwrap_or(&head.method)
            .as_str()
            .as_bytes(),
    );
    out.push(b' ');
    out.extend_from_slice(path_and_query);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host);
    out.extend_from_slice(b"\r\n");

    let mut forwarded: [Option<&[u8]>; 3] = [None; 3]; // proto, host, port from a trusted client
    for h in &head.headers {
        let name = span(buf, h.name);
        if hop_by_hop(name)
            || is(name, b"host")
            || is(name, b"content-length")
            || is(name, b"expect")
            || is(name, b"x-real-ip")
            || is(name, b"x-forwarded-for")
            // `Forwarded` (RFC 7239) says the same things as `X-Forwarded-*`; an untrusted client
            // could claim any `for=` or `proto=` in it, so it goes like theirs (recent APISIX
            // clears it too). The gateway does not write one of its own.
            || (is(name, b"forwarded") && !client.trusted)
            || named(buf, &head.connection_tokens, name)
            || edits.drops(name)
        {
            continue;
        }
        let slot = [
            &b"x-forwarded-proto"[..],
            b"x-forwarded-host",
            b"x-forwarded-port",
        ]
        .iter()
        .position(|f| is(name, f));
        match slot {
            Some(i) => {
                if client.trusted && forwarded[i].is_none() {
                    forwarded[i] = Some(span(buf, h.value));
                }
            }
            None => out_header(out, name, span(buf, h.value)),
        }
    }
    // From a trusted client, every X-Forwarded-For value it sent joins one list that the client
    // address ends (nginx's $proxy_add_x_forwarded_for); from any other client the list is reset
    // to its address, as APISIX does outside `trusted_addresses`.
    out.extend_from_slice(b"X-Forwarded-For: ");
    for h in head.headers.iter().filter(|_| client.trusted) {
        if is(span(buf, h.name), b"x-forwarded-for") {
            out.extend_from_slice(span(buf, h.value));
            out.extend_from_slice(b", ");
        }
    }
    let _ = write!(
        out,
        "{}\r\nX-Real-IP: {}\r\n",
        client.peer.ip(),
        client.peer.ip()
    );
    // A plugin that sets or removes one of these (proxy-rewrite) replaces the gateway's value,
    // as in APISIX, where they are request headers plugins may rewrite.
    if !edits.drops(b"x-forwarded-proto") {
        out.extend_from_slice(b"X-Forwarded-Proto: ");
        out.extend_from_slice(forwarded[0].unwrap_or(client.scheme.as_bytes()));
        out.extend_from_slice(b"\r\n");
    }
    if !edits.drops(b"x-forwarded-host") {
        out.extend_from_slice(b"X-Forwarded-Host: ");
        out.extend_from_slice(
            forwarded[1].unwrap_or_else(|| head.host_name(buf).unwrap_or_default()),
        );
        out.extend_from_slice(b"\r\n");
    }
    if !edits.drops(b"x-forwarded-port") {
        out.extend_from_slice(b"X-Forwarded-Port: ");
        match forwarded[2] {
            Some(p) => out.extend_from_slice(p),
            None => {
                let _ = write!(out, "{}", client.local_port);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &edits.set {
        out_header(out, name.as_bytes(), value.as_bytes());
    }
    framing_header(out, body);
    out.extend_from_slice(b"\r\n");
}

fn out_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn framing_header(out: &mut Vec<u8>, body: Framing) {
    match body {
        Framing::Length(n) => {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::None | Framing::Close | Framing::KeepLength => {}
    }
}

/// Writes the head of the response sent to the client.
///
/// `keep_alive_10`: the client speaks HTTP/1.0 and keeps the connection (it needs
/// `Connection: keep-alive`); `close`: the gateway closes the connection after this response.
#[allow(clippy::too_many_arguments)]
pub fn response_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    server: &str,
    body: Framing,
    close: bool,
    keep_alive_10: bool,
    extra: &[(&'static str, Text)],
) {
    let _ = write!(out, "HTTP/1.1 {} ", head.status);
    out.extend_from_slice(span(buf, head.reason));
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for h in &head.headers {
        let name = span(buf, h.name);
        if hop_by_hop(name)
            || is(name, b"server")
            || (is(name, b"content-length") && body != Framing::KeepLength)
            || named(buf, &head.connection_tokens, name)
        {
            continue;
        }
        has_date |= is(name, b"date");
        out_header(out, name, span(buf, h.value));
    }
    if !has_date {
        out.extend_from_slice(b"Date: ");
        date::append_now(out);
        out.extend_from_slice(b"\r\n");
    }
    if !server.is_empty() {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(server.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra {
        out_header(out, name.as_bytes(), value.as_bytes());
    }
    framing_header(out, body);
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if keep_alive_10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The first value of header `name` in a list of spans.
pub fn find<'a>(buf: &'a [u8], headers: &[HeaderSpan], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| span(buf, h.name).eq_ignore_ascii_case(name))
        .map(|h| span(buf, h.value))
}
