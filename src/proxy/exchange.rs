//! One request/response exchange with an upstream, in phase order:
//! route → pick and connect (pool first, retries on connect failures) → send the head (and a
//! small body in the same write) → relay the rest of the request body → read the response head
//! (skipping interim `1xx`) → send the response head → relay the response body → park the
//! upstream connection for reuse when both sides left it clean.
//!
//! Failures map to statuses in one place ([`Fail`]): connect refused, a failed TLS handshake
//! (certificate included) or an upstream that breaks before answering → 502, a connect (TCP and
//! TLS handshake together) or read timeout → 504, a body over the limit → 413. Once a response
//! has started, a failure can only close the client connection.
//!
//! For an `https` upstream the `Host` value is settled before connecting: its host is the TLS
//! server name (see [`super::tls`]), part of the pool key.

use std::borrow::Cow;
use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use rustls::pki_types::ServerName;

use crate::http::{
    parse_response, write_chunk_header, BodyFraming, ChunkedDecoder, RequestHead, ResponseHead,
};
use crate::model::PassHost;
use crate::plugins::phase::{Ctx, Edits, Request};
use crate::plugins::vars::Facts;
use crate::plugins::Env;
use crate::snapshot::{RouteEntry, UpstreamTarget};

use super::conn::{Bufs, ConnInfo, READ_BUF};
use super::forward::{self, ClientInfo, Framing};
use super::io::{read_some, write_all, write_range, IoFail};
use super::pool::{PoolKey, UpConn};
use super::reply;
use super::stream::UpStream;
use super::tls::Connector;
use super::worker::Worker;

/// Bodies up to this size that already sit in the read buffer go out in the same write as the
/// head.
const COALESCE_BODY: usize = 16 * 1024;
/// Relay buffer size for bodies.
const RELAY_BUF: usize = 16 * 1024;

/// What the connection loop does after an exchange.
pub enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close the client connection.
    Close,
}

/// A failure before the response started, with the status the client gets.
#[derive(Debug, Clone, Copy)]
enum Fail {
    Status(u16, &'static str),
    /// The client went away or stalled: nothing to answer.
    Client,
}

const BAD_GATEWAY: Fail = Fail::Status(502, "502 Bad Gateway");
const GATEWAY_TIMEOUT: Fail = Fail::Status(504, "504 Gateway Timeout");

fn upstream_fail(e: &IoFail) -> Fail {
    match e {
        IoFail::Timeout => GATEWAY_TIMEOUT,
        _ => BAD_GATEWAY,
    }
}

/// Runs one exchange for `head` (whose bytes start `bufs.rbuf`).
/// The worker's [`Edits`] lent to one exchange, given back (cleared) however it ends.
struct LentEdits<'w> {
    w: &'w Worker,
    edits: Edits,
}

impl Drop for LentEdits<'_> {
    fn drop(&mut self) {
        self.w.give_edits(std::mem::take(&mut self.edits));
    }
}

pub async fn exchange<S: AsyncReadRent + AsyncWriteRent>(
    w: &Rc<Worker>,
    client: &mut S,
    bufs: &mut Bufs,
    head: &RequestHead,
    info: &ConnInfo,
) -> Next {
    let cfg = &w.shared.config;
    let snap = w.snapshot();
    // Route on the normalised path (nginx's `$uri`), never the raw one: `/pub/../admin` is
    // `/admin` to any backend that resolves dot segments.
    let found = snap.router.find(
        head.host_name(&bufs.rbuf),
        head.uri(&bufs.rbuf),
        &head.method,
    );
    let Some(route) = found.and_then(|i| snap.routes.get(i)) else {
        return answer(w, client, bufs, head, 404, "404 Route Not Found").await;
    };
    if let BodyFraming::Length(n) = head.body {
        let max = cfg.limits.max_body_bytes;
        if max != 0 && n > max {
            return answer(w, client, bufs, head, 413, "413 Request Entity Too Large").await;
        }
    }
    let mut lent = LentEdits {
        w,
        edits: w.take_edits(),
    };
    let edits = &mut lent.edits;
    if !route.chain.is_empty() {
        let req = Request {
            head,
            buf: &bufs.rbuf,
            peer: info.peer,
        };
        let now_ms = unix_now_ms();
        let mut ctx = Ctx {
            now: (now_ms / 1000) as i64,
            now_ms,
            ..Ctx::default()
        };
        let env = Env {
            index: &snap.consumers,
            counters: &w.shared.counters,
            redis: &w.redis,
            cache: &w.tokens,
            facts: Facts {
                route_id: &route.id,
                service_id: route.service_id.as_deref(),
                server_port: info.local_port,
                scheme: info.scheme,
            },
        };
        if let Err(r) = route.chain.access(&req, &env, &mut ctx, edits).await {
            return answer_with(w, client, bufs, head, r.status, &r.headers, &r.body).await;
        }
    }
    match proxy(w, client, bufs, head, info, route, edits).await {
        Ok(next) => next,
        Err(Fail::Status(status, msg)) => {
            // The failure may have left upstream-bound bytes (re-encoded request chunks) in
            // wbuf; they must never reach the client ahead of the error.
            bufs.wbuf.clear();
            reply::json_error(&mut bufs.wbuf, status, msg, &cfg.server_header, true);
            let _ = write_all(client, &mut bufs.wbuf, cfg.timeouts.send).await;
            Next::Close
        }
        Err(Fail::Client) => Next::Close,
    }
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Answers `head` with a gateway error without contacting an upstream. The connection stays
/// open only when the request has no body to skip.
async fn answer<S: AsyncWriteRent>(
    w: &Worker,
    client: &mut S,
    bufs: &mut Bufs,
    head: &RequestHead,
    status: u16,
    msg: &'static str,
) -> Next {
    let body = serde_json::json!({ "error_msg": msg }).to_string();
    answer_with(w, client, bufs, head, status, &[], &body).await
}

/// Answers `head` with a JSON `body` and extra `headers` (a plugin's reply).
async fn answer_with<S: AsyncWriteRent>(
    w: &Worker,
    client: &mut S,
    bufs: &mut Bufs,
    head: &RequestHead,
    status: u16,
    headers: &[(&'static str, String)],
    body: &str,
) -> Next {
    let cfg = &w.shared.config;
    let close = !head.keep_alive || !matches!(head.body, BodyFraming::None) || w.closing();
    bufs.wbuf.clear();
    reply::json_response_with(
        &mut bufs.wbuf,
        status,
        headers,
        body,
        &cfg.server_header,
        close,
    );
    if head.method == http::Method::HEAD {
        // The answer to HEAD has the headers of the GET answer (Content-Length included) and
        // no body (RFC 9110 §9.3.2); a body here would be read as the next response.
        if let Some(end) = bufs.wbuf.windows(4).position(|w| w == b"\r\n\r\n") {
            bufs.wbuf.truncate(end + 4);
        }
    }
    if write_all(client, &mut bufs.wbuf, cfg.timeouts.send)
        .await
        .is_err()
        || close
    {
        return Next::Close;
    }
    bufs.rbuf.drain(..head.head_len);
    Next::KeepAlive
}

/// The request-body plan: what is already buffered and whether it can be sent again.
struct BodyPlan {
    framing: Framing,
    /// Bytes of the body already in `rbuf` after the head (Length bodies only).
    buffered: usize,
    /// The whole body went out with the head: a retry can resend it.
    coalesced: bool,
}

async fn proxy<S: AsyncReadRent + AsyncWriteRent>(
    w: &Rc<Worker>,
    client: &mut S,
    bufs: &mut Bufs,
    head: &RequestHead,
    info: &ConnInfo,
    route: &RouteEntry,
    edits: &Edits,
) -> Result<Next, Fail> {
    let cfg = &w.shared.config;
    let up = &route.upstream;
    let avail = bufs.rbuf.len() - head.head_len;
    let plan = match head.body {
        BodyFraming::Length(n) => {
            let buffered = avail.min(usize::try_from(n).unwrap_or(usize::MAX));
            BodyPlan {
                framing: Framing::Length(n),
                buffered,
                coalesced: buffered as u64 == n && buffered <= COALESCE_BODY,
            }
        }
        BodyFraming::Chunked => BodyPlan {
            framing: Framing::Chunked,
            buffered: 0,
            coalesced: false,
        },
        _ => BodyPlan {
            framing: Framing::None,
            buffered: 0,
            coalesced: true,
        },
    };
    let replayable = plan.coalesced;
    // The method the upstream gets (proxy-rewrite may change it) decides retries and whether
    // its answer has a body.
    let method = edits.method.as_ref().unwrap_or(&head.method);
    let idempotent = matches!(
        method.as_str(),
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    );
    let trusted = cfg
        .trusted_addresses
        .iter()
        .any(|c| c.contains(info.peer.ip()));
    let client_info = ClientInfo {
        peer: info.peer,
        local_port: info.local_port,
        scheme: info.scheme,
        trusted,
    };

    // Connect and send the head; a pooled connection that turns out dead before answering is
    // replaced by a fresh one when resending is safe.
    let mut tried = Tried::default();
    let host_of = |node: usize| upstream_host(head, &bufs.rbuf, up, node, edits);
    let (node, dest, mut conn) = connect(w, up, host_of, &mut tried, Instant::now()).await?;
    let resp = loop {
        build_head(bufs, head, up, node, &client_info, &plan, edits);
        let result = match send_request(w, client, &mut conn, bufs, head, &plan, up).await {
            Ok(()) => read_response_head(&mut conn, &mut bufs.ubuf, method, w, up).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(resp) => break resp,
            Err(RespFail::Io(e)) => {
                // A proxy must not retry a non-idempotent request on its own (RFC 9112
                // §9.3.1): the upstream may have acted on it before closing, body or not.
                let stale = conn.reused && matches!(e, IoFail::Eof | IoFail::Err(_));
                if stale && replayable && idempotent {
                    tracing::debug!(upstream = %up.name, "pooled connection was closed; retrying on a fresh one");
                    conn = connect_node(up, &dest).await?;
                    continue;
                }
                tracing::warn!(upstream = %up.name, addr = %dest.key.addr, error = ?e, "upstream failed before answering");
                return Err(upstream_fail(&e));
            }
            Err(RespFail::Client) => return Err(Fail::Client),
            Err(RespFail::Status(f)) => return Err(f),
        }
    };
    conn.served += 1;
    relay_response(w, client, conn, bufs, head, resp, dest.key, up, edits).await
}

/// Where a connection goes: the pool key, and for TLS the configuration and server name.
struct Dest {
    key: PoolKey,
    tls: Option<(Arc<Connector>, ServerName<'static>)>,
}

/// The `Host` value sent to node `node`: per `pass_host`, the client's (the authority the
/// router saw: an absolute-form target's replaces the Host field) or proxy-rewrite's `host`
/// in its place, the node's, or `upstream_host`. For TLS it is also the server name, as
/// APISIX's `proxy_ssl_name $upstream_host` makes it.
fn upstream_host<'a>(
    head: &RequestHead,
    rb: &'a [u8],
    up: &'a UpstreamTarget,
    node: usize,
    edits: &'a Edits,
) -> &'a [u8] {
    match &up.pass_host {
        PassHost::Pass => match &edits.host {
            Some(h) => h.as_bytes(),
            None => head
                .authority(rb)
                .unwrap_or(up.nodes[node].host_header.as_bytes()),
        },
        PassHost::Node => up.nodes[node].host_header.as_bytes(),
        PassHost::Rewrite(h) => h.as_bytes(),
    }
}

/// Where to connect for node `node`, whose requests carry `host`; `None` (logged) when the node
/// cannot be reached: its name did not resolve, or TLS has no usable server name or setup.
fn dest(w: &Worker, up: &UpstreamTarget, node: usize, host: &[u8]) -> Option<Dest> {
    let addr = up.nodes[node].addr?;
    let Some(target) = &up.tls else {
        return Some(Dest {
            key: PoolKey { addr, tls: None },
            tls: None,
        });
    };
    let Some(name) = super::tls::server_name(host) else {
        tracing::warn!(
            upstream = %up.name,
            host = %String::from_utf8_lossy(host),
            "no TLS server name in the Host sent upstream"
        );
        return None;
    };
    let connector = match w.shared.upstream_tls.connector(target) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(upstream = %up.name, error = %e, "cannot set up TLS to the upstream");
            return None;
        }
    };
    Some(Dest {
        key: PoolKey {
            addr,
            tls: Some((connector.id, name.clone())),
        },
        tls: Some((connector, name)),
    })
}

/// The node indices one request has tried: inline for the usual few, on the heap beyond.
#[derive(Default)]
struct Tried {
    inline: [usize; 8],
    len: usize,
    spill: Vec<usize>,
}

impl Tried {
    fn push(&mut self, node: usize) {
        if self.spill.is_empty() && self.len < self.inline.len() {
            self.inline[self.len] = node;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(node);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[usize] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Picks a node and gets a connection to it: from the pool, else a new one. Connection failures
/// move on to the next node up to the upstream's `retries` (and `retry_timeout`). `host_of`
/// gives the `Host` a node's request will carry (its TLS server name).
async fn connect<'h>(
    w: &Rc<Worker>,
    up: &Arc<UpstreamTarget>,
    host_of: impl Fn(usize) -> &'h [u8],
    tried: &mut Tried,
    started: Instant,
) -> Result<(usize, Dest, UpConn), Fail> {
    let mut last = BAD_GATEWAY;
    loop {
        let Some(node) = w.balancers.borrow_mut().pick(up, tried.as_slice()) else {
            if tried.is_empty() {
                tracing::warn!(upstream = %up.name, "no valid upstream node");
            }
            return Err(last);
        };
        tried.push(node);
        if let Some(dest) = dest(w, up, node, host_of(node)) {
            let pooled = w.pool.borrow_mut().take(&dest.key);
            if let Some(conn) = pooled {
                return Ok((node, dest, conn));
            }
            match connect_node(up, &dest).await {
                Ok(conn) => return Ok((node, dest, conn)),
                Err(f) => last = f,
            }
        }
        let out_of_time = up.retry_timeout.is_some_and(|t| started.elapsed() >= t);
        if tried.len() > up.retries as usize || out_of_time {
            return Err(last);
        }
    }
}

/// Opens a new connection to `dest`: TCP, then the TLS handshake for `https`, both within the
/// upstream's connect timeout.
async fn connect_node(up: &UpstreamTarget, dest: &Dest) -> Result<UpConn, Fail> {
    let addr = dest.key.addr;
    let open = async {
        let tcp = TcpStream::connect_addr(addr)
            .await
            .map_err(|e| format!("upstream connect failed: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &dest.tls {
            None => Ok::<_, String>(UpStream::Plain(tcp)),
            Some((connector, name)) => {
                let fd = tcp.as_raw_fd();
                let tls = connector
                    .handshake(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("upstream TLS handshake failed: {e}"))?;
                Ok(UpStream::tls(tls, fd))
            }
        }
    };
    match monoio::time::timeout(up.connect_timeout, open).await {
        Ok(Ok(stream)) => Ok(UpConn {
            stream,
            served: 0,
            reused: false,
        }),
        Ok(Err(why)) => {
            let sni = dest.tls.as_ref().map(|(_, n)| n.to_str());
            tracing::warn!(upstream = %up.name, %addr, server_name = ?sni, "{why}");
            Err(BAD_GATEWAY)
        }
        Err(_) => {
            tracing::warn!(upstream = %up.name, %addr, "upstream connect timed out");
            Err(GATEWAY_TIMEOUT)
        }
    }
}

/// Writes the upstream request head into `bufs.wbuf`, plus the body when it is small and
/// already buffered.
fn build_head(
    bufs: &mut Bufs,
    head: &RequestHead,
    up: &UpstreamTarget,
    node: usize,
    client: &ClientInfo,
    plan: &BodyPlan,
    edits: &Edits,
) {
    let rb = &bufs.rbuf;
    let host = upstream_host(head, rb, up, node, edits);
    let target: Cow<'_, [u8]> = match &edits.target {
        Some(t) => Cow::Borrowed(t.as_slice()),
        None => origin_form(head, rb),
    };
    bufs.wbuf.clear();
    forward::request_head(
        &mut bufs.wbuf,
        rb,
        head,
        &target,
        host,
        client,
        plan.framing,
        edits,
    );
    if plan.coalesced && plan.buffered > 0 {
        bufs.wbuf
            .extend_from_slice(&rb[head.head_len..head.head_len + plan.buffered]);
    }
}

/// The request target in origin form (`/path?query`), whatever form the client used: the
/// normalised path the request was routed on, re-encoded, and the query as the client sent it.
fn origin_form<'a>(head: &RequestHead, rb: &'a [u8]) -> Cow<'a, [u8]> {
    if let Some(uri) = &head.normalized {
        let path = crate::http::path::encode(uri);
        let mut out = Vec::with_capacity(path.len() + head.query(rb).map_or(0, |q| q.len() + 1));
        out.extend_from_slice(&path);
        if let Some(q) = head.query(rb) {
            out.push(b'?');
            out.extend_from_slice(q);
        }
        return Cow::Owned(out);
    }
    // The path as written is already normal, and its own encoding.
    let raw = &rb[head.target.0 as usize..head.target.1 as usize];
    if raw.first() == Some(&b'/') {
        return Cow::Borrowed(raw);
    }
    // absolute-form: skip "scheme://authority".
    let after_scheme = raw
        .windows(3)
        .position(|w| w == b"://")
        .map(|p| p + 3)
        .unwrap_or(0);
    match raw[after_scheme..]
        .iter()
        .position(|&c| c == b'/' || c == b'?')
    {
        Some(p) if raw[after_scheme + p] == b'/' => Cow::Borrowed(&raw[after_scheme + p..]),
        // `http://host?query`: the path is empty, which origin form spells `/`; the query
        // stays (RFC 9112 §3.2.1).
        Some(p) => Cow::Owned([&b"/"[..], &raw[after_scheme + p..]].concat()),
        None => Cow::Borrowed(b"/"),
    }
}

enum RespFail {
    Io(IoFail),
    Client,
    Status(Fail),
}

/// Sends the prepared head and then the request body.
#[allow(clippy::too_many_arguments)]
async fn send_request<S: AsyncReadRent + AsyncWriteRent>(
    w: &Worker,
    client: &mut S,
    conn: &mut UpConn,
    bufs: &mut Bufs,
    head: &RequestHead,
    plan: &BodyPlan,
    up: &UpstreamTarget,
) -> Result<(), RespFail> {
    let cfg = &w.shared.config;
    write_all(&mut conn.stream, &mut bufs.wbuf, up.send_timeout)
        .await
        .map_err(RespFail::Io)?;
    if plan.coalesced {
        return Ok(());
    }
    if head.expect_continue {
        bufs.wbuf.extend_from_slice(reply::CONTINUE);
        write_all(client, &mut bufs.wbuf, cfg.timeouts.send)
            .await
            .map_err(|_| RespFail::Client)?;
    }
    match head.body {
        BodyFraming::Length(n) => relay_length_body(w, client, conn, bufs, head, plan, n, up).await,
        BodyFraming::Chunked => relay_chunked_body(w, client, conn, bufs, head, up).await,
        _ => Ok(()),
    }
}

/// Relays a `Content-Length` request body: first what is buffered, then reads of at most the
/// remaining length (so a pipelined next request stays in the client socket).
#[allow(clippy::too_many_arguments)]
async fn relay_length_body<S: AsyncReadRent>(
    w: &Worker,
    client: &mut S,
    conn: &mut UpConn,
    bufs: &mut Bufs,
    head: &RequestHead,
    plan: &BodyPlan,
    total: u64,
    up: &UpstreamTarget,
) -> Result<(), RespFail> {
    let cfg = &w.shared.config;
    let start = head.head_len;
    write_range(
        &mut conn.stream,
        &mut bufs.rbuf,
        start..start + plan.buffered,
        up.send_timeout,
    )
    .await
    .map_err(RespFail::Io)?;
    let mut remaining = total - plan.buffered as u64;
    bufs.ubuf.clear();
    while remaining > 0 {
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(RELAY_BUF);
        read_some(
            client,
            &mut bufs.ubuf,
            RELAY_BUF,
            want,
            cfg.timeouts.client_body,
        )
        .await
        .map_err(|_| RespFail::Client)?;
        remaining -= bufs.ubuf.len() as u64;
        write_all(&mut conn.stream, &mut bufs.ubuf, up.send_timeout)
            .await
            .map_err(RespFail::Io)?;
    }
    Ok(())
}

/// Decodes a chunked request body (strictly: this is where smuggling attempts die) and sends it
/// upstream re-encoded, so the upstream sees only canonical chunks without extensions.
async fn relay_chunked_body<S: AsyncReadRent>(
    w: &Worker,
    client: &mut S,
    conn: &mut UpConn,
    bufs: &mut Bufs,
    head: &RequestHead,
    up: &UpstreamTarget,
) -> Result<(), RespFail> {
    let cfg = &w.shared.config;
    let max = cfg.limits.max_body_bytes;
    let mut dec = ChunkedDecoder::new(&w.shared.limits);
    // Body bytes live in rbuf from `pos`; consumed bytes before `pos` are dropped as we go,
    // except the head (the exchange still reads it), which stays in place.
    let mut pos = head.head_len;
    loop {
        let d = dec.decode(&bufs.rbuf[pos..]).map_err(|e| {
            tracing::debug!(error = %e, "bad chunked request body");
            RespFail::Status(Fail::Status(400, "400 Bad Request"))
        })?;
        if !d.data.is_empty() {
            write_chunk_header(&mut bufs.wbuf, d.data.len());
            bufs.wbuf
                .extend_from_slice(&bufs.rbuf[pos + d.data.start..pos + d.data.end]);
            bufs.wbuf.extend_from_slice(b"\r\n");
        }
        pos += d.consumed;
        if max != 0 && dec.body_bytes() > max {
            return Err(RespFail::Status(Fail::Status(
                413,
                "413 Request Entity Too Large",
            )));
        }
        if d.done {
            bufs.wbuf.extend_from_slice(b"0\r\n\r\n");
            write_all(&mut conn.stream, &mut bufs.wbuf, up.send_timeout)
                .await
                .map_err(RespFail::Io)?;
            // Leave exactly the head plus nothing of the body: the next request follows.
            bufs.rbuf.drain(head.head_len..pos);
            return Ok(());
        }
        if d.consumed == 0 && d.data.is_empty() {
            if !bufs.wbuf.is_empty() {
                write_all(&mut conn.stream, &mut bufs.wbuf, up.send_timeout)
                    .await
                    .map_err(RespFail::Io)?;
            }
            bufs.rbuf.drain(head.head_len..pos);
            pos = head.head_len;
            read_some(
                client,
                &mut bufs.rbuf,
                READ_BUF,
                RELAY_BUF,
                cfg.timeouts.client_body,
            )
            .await
            .map_err(|_| RespFail::Client)?;
        } else if bufs.wbuf.len() >= RELAY_BUF {
            write_all(&mut conn.stream, &mut bufs.wbuf, up.send_timeout)
                .await
                .map_err(RespFail::Io)?;
        }
    }
}

/// Reads the response head into `ubuf`, skipping interim 1xx responses.
async fn read_response_head(
    conn: &mut UpConn,
    ubuf: &mut Vec<u8>,
    method: &http::Method,
    w: &Worker,
    up: &UpstreamTarget,
) -> Result<ResponseHead, RespFail> {
    let limits = &w.shared.limits;
    let is_head = *method == http::Method::HEAD;
    ubuf.clear();
    loop {
        if !ubuf.is_empty() {
            match parse_response(ubuf, is_head, limits) {
                Ok(Some(resp)) if (100..200).contains(&resp.status) && resp.status != 101 => {
                    ubuf.drain(..resp.head_len);
                    continue;
                }
                Ok(Some(resp)) if resp.status == 101 => {
                    tracing::warn!(upstream = %up.name, "upstream switched protocols unasked");
                    return Err(RespFail::Status(BAD_GATEWAY));
                }
                Ok(Some(resp)) => return Ok(resp),
                Ok(None) if ubuf.len() >= limits.max_header_bytes => {
                    tracing::warn!(upstream = %up.name, "upstream response head too large");
                    return Err(RespFail::Status(BAD_GATEWAY));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(upstream = %up.name, error = %e, "invalid upstream response");
                    return Err(RespFail::Status(BAD_GATEWAY));
                }
            }
        }
        let was_empty = ubuf.is_empty();
        match read_some(
            &mut conn.stream,
            ubuf,
            READ_BUF,
            usize::MAX,
            up.read_timeout,
        )
        .await
        {
            Ok(_) => {}
            Err(IoFail::Eof) if !was_empty => {
                tracing::warn!(upstream = %up.name, "upstream closed mid-head");
                return Err(RespFail::Status(BAD_GATEWAY));
            }
            Err(e) if was_empty => return Err(RespFail::Io(e)),
            Err(e) => return Err(RespFail::Status(upstream_fail(&e))),
        }
    }
}

/// Writes `wbuf` to the client, first noting in `started` that the answer has begun.
async fn to_client<S: AsyncWriteRent>(
    client: &mut S,
    wbuf: &mut Vec<u8>,
    send: std::time::Duration,
    started: &Cell<bool>,
) -> Result<(), IoFail> {
    started.set(true);
    write_all(client, wbuf, send).await
}

/// Sends the response head and relays the body, then decides about both connections.
#[allow(clippy::too_many_arguments)]
async fn relay_response<S: AsyncReadRent + AsyncWriteRent>(
    w: &Rc<Worker>,
    client: &mut S,
    mut conn: UpConn,
    bufs: &mut Bufs,
    head: &RequestHead,
    resp: ResponseHead,
    key: PoolKey,
    up: &UpstreamTarget,
    edits: &Edits,
) -> Result<Next, Fail> {
    let cfg = &w.shared.config;
    let extra = &edits.respond[..];
    let http10 = head.version == 0;
    // proxy-rewrite may send HEAD for a client's GET (no body comes; the client is told so)
    // or the other way round (the body that comes is not the client's to see).
    let client_head = head.method == http::Method::HEAD;
    let upstream_head = edits.method.as_ref().unwrap_or(&head.method) == http::Method::HEAD;
    let mut resp = resp;
    let mut upstream_clean = resp.keep_alive;
    if client_head && !upstream_head {
        // Forward the head only; the body is dropped with the connection.
        upstream_clean = false;
        resp.body = BodyFraming::None;
    }
    let out = match resp.body {
        BodyFraming::None if upstream_head && !client_head && !matches!(resp.status, 204 | 304) => {
            Framing::Length(0)
        }
        BodyFraming::None => Framing::KeepLength,
        BodyFraming::Length(n) => Framing::Length(n),
        BodyFraming::Chunked | BodyFraming::UntilClose if !http10 => Framing::Chunked,
        BodyFraming::Chunked | BodyFraming::UntilClose => Framing::Close,
    };
    let close = !head.keep_alive || w.closing() || out == Framing::Close;
    bufs.wbuf.clear();
    forward::response_head(
        &mut bufs.wbuf,
        &bufs.ubuf,
        &resp,
        &cfg.server_header,
        out,
        close,
        http10 && !close,
        extra,
    );
    let send = cfg.timeouts.send;
    let read = up.read_timeout;
    let mut body_start = resp.head_len;
    // Whether a byte of the answer may have reached the client. A chunked body is decoded
    // before the head is flushed, so an upstream can break before that: the client then still
    // gets a proper 502/504 instead of a connection closed on nothing.
    let started = Cell::new(false);
    let result: Result<(), IoFail> = async {
        match resp.body {
            BodyFraming::None => {
                upstream_clean &= bufs.ubuf.len() == body_start;
                to_client(client, &mut bufs.wbuf, send, &started).await
            }
            BodyFraming::Length(n) => {
                let have = ((bufs.ubuf.len() - body_start) as u64).min(n) as usize;
                upstream_clean &= bufs.ubuf.len() - body_start <= n as usize;
                if have <= COALESCE_BODY {
                    bufs.wbuf
                        .extend_from_slice(&bufs.ubuf[body_start..body_start + have]);
                    to_client(client, &mut bufs.wbuf, send, &started).await?;
                } else {
                    to_client(client, &mut bufs.wbuf, send, &started).await?;
                    write_range(client, &mut bufs.ubuf, body_start..body_start + have, send)
                        .await?;
                }
                let mut remaining = n - have as u64;
                while remaining > 0 {
                    bufs.ubuf.clear();
                    let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(RELAY_BUF);
                    read_some(&mut conn.stream, &mut bufs.ubuf, RELAY_BUF, want, read).await?;
                    remaining -= bufs.ubuf.len() as u64;
                    let len = bufs.ubuf.len();
                    write_range(client, &mut bufs.ubuf, 0..len, send).await?;
                }
                Ok(())
            }
            BodyFraming::Chunked => {
                let mut dec = ChunkedDecoder::new(&w.shared.limits);
                loop {
                    let d = dec.decode(&bufs.ubuf[body_start..]).map_err(|e| {
                        tracing::warn!(upstream = %up.name, error = %e, "bad chunked response body");
                        IoFail::Invalid
                    })?;
                    if !d.data.is_empty() {
                        let data = body_start + d.data.start..body_start + d.data.end;
                        if out == Framing::Chunked {
                            write_chunk_header(&mut bufs.wbuf, data.len());
                        }
                        bufs.wbuf.extend_from_slice(&bufs.ubuf[data]);
                        if out == Framing::Chunked {
                            bufs.wbuf.extend_from_slice(b"\r\n");
                        }
                    }
                    body_start += d.consumed;
                    if d.done {
                        upstream_clean &= bufs.ubuf.len() == body_start;
                        if out == Framing::Chunked {
                            bufs.wbuf.extend_from_slice(b"0\r\n\r\n");
                        }
                        return to_client(client, &mut bufs.wbuf, send, &started).await;
                    }
                    if d.consumed == 0 && d.data.is_empty() {
                        to_client(client, &mut bufs.wbuf, send, &started).await?;
                        bufs.ubuf.drain(..body_start);
                        body_start = 0;
                        read_some(&mut conn.stream, &mut bufs.ubuf, RELAY_BUF, RELAY_BUF, read)
                            .await?;
                    }
                }
            }
            BodyFraming::UntilClose => {
                upstream_clean = false;
                let mut from = body_start;
                loop {
                    let len = bufs.ubuf.len() - from;
                    if len > 0 {
                        if out == Framing::Chunked {
                            write_chunk_header(&mut bufs.wbuf, len);
                        }
                        bufs.wbuf.extend_from_slice(&bufs.ubuf[from..]);
                        if out == Framing::Chunked {
                            bufs.wbuf.extend_from_slice(b"\r\n");
                        }
                    }
                    to_client(client, &mut bufs.wbuf, send, &started).await?;
                    bufs.ubuf.clear();
                    from = 0;
                    match read_some(&mut conn.stream, &mut bufs.ubuf, RELAY_BUF, RELAY_BUF, read)
                        .await
                    {
                        Ok(_) => {}
                        Err(IoFail::Eof) => break,
                        Err(e) => return Err(e),
                    }
                }
                if out == Framing::Chunked {
                    bufs.wbuf.extend_from_slice(b"0\r\n\r\n");
                    to_client(client, &mut bufs.wbuf, send, &started).await?;
                }
                Ok(())
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(upstream = %up.name, error = ?e, "response relay ended early");
        if !started.get() {
            return Err(upstream_fail(&e));
        }
        return Ok(Next::Close);
    }
    if upstream_clean && !w.closing() {
        conn.reused = false;
        w.pool.borrow_mut().put(key, conn, &up.keepalive);
    }
    if close {
        return Ok(Next::Close);
    }
    // Drop this request's bytes; a pipelined next request moves to the front.
    let consumed = head.head_len
        + match head.body {
            BodyFraming::Length(n) => n as usize,
            _ => 0,
        };
    bufs.rbuf.drain(..consumed.min(bufs.rbuf.len()));
    Ok(Next::KeepAlive)
}

#[cfg(test)]
mod tests {
    use super::Tried;

    #[test]
    fn tried_nodes_spill_past_the_inline_few_in_order() {
        let mut t = Tried::default();
        assert!(t.is_empty() && t.as_slice().is_empty());
        for n in 0..20 {
            t.push(n * 3);
            assert_eq!(t.len(), n + 1);
            let want: Vec<usize> = (0..=n).map(|i| i * 3).collect();
            assert_eq!(t.as_slice(), &want[..]);
        }
    }
}
