//! The Admin API's HTTP/1.1 server: its own threads, never the data-plane workers.
//!
//! Admin traffic is a few requests a second at most, so this is a plain blocking server (one
//! thread per connection, a bounded number of them) on the same strict head parser as the
//! proxy. Writes are serialised by the [`Control`] lock, which is never touched by the request
//! path: workers only read the snapshots it publishes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::AdminConfig;
use crate::http::{parse_request, BodyFraming, ChunkedDecoder, Limits};

use super::api::{handle, ApiRequest};
use super::auth;
use super::control::Control;

/// Largest accepted Admin API body (APISIX reads at most 1.5 MiB; imports can be bigger).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Most concurrent Admin API connections.
const MAX_CONNS: usize = 128;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds the Admin API address and serves it on background threads.
pub fn start(
    admin: AdminConfig,
    server_header: String,
    control: Control,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(admin.listen)?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Server {
        admin,
        server_header,
        control: Mutex::new(control),
        open: AtomicUsize::new(0),
    });
    // Secrets referenced by credentials (Vault) are read again periodically, so a rotated
    // secret takes effect without a write to the Admin API.
    let refresher = Arc::downgrade(&shared);
    std::thread::Builder::new()
        .name("portcullis-secrets".into())
        .spawn(move || loop {
            std::thread::sleep(crate::secrets::CACHE_TTL);
            let Some(server) = refresher.upgrade() else {
                return;
            };
            server
                .control
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .refresh();
        })?;
    std::thread::Builder::new()
        .name("portcullis-admin".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                if shared.open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNS {
                    shared.open.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                let s = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("portcullis-admin-conn".into())
                    .spawn(move || {
                        s.serve(stream);
                        s.open.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    shared.open.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })?;
    Ok(addr)
}

struct Server {
    admin: AdminConfig,
    server_header: String,
    control: Mutex<Control>,
    open: AtomicUsize,
}

impl Server {
    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let peer = match stream.peer_addr() {
            Ok(p) => p,
            Err(_) => return,
        };
        let limits = Limits::default();
        let mut buf = Vec::with_capacity(4096);
        loop {
            let head = loop {
                if !buf.is_empty() {
                    match parse_request(&buf, &limits) {
                        Ok(Some(h)) => break h,
                        Ok(None) => {}
                        Err(e) => {
                            let _ = self.respond(
                                &mut stream,
                                e.status(),
                                &json!({"error_msg": e.message()}),
                                true,
                            );
                            return;
                        }
                    }
                }
                if buf.len() >= limits.max_header_bytes || !read_more(&mut stream, &mut buf) {
                    return;
                }
            };
            let method = head.method.as_str().to_string();
            let path = String::from_utf8_lossy(head.path(&buf)).into_owned();
            let query = head
                .query(&buf)
                .map(|q| String::from_utf8_lossy(q).into_owned());
            let keep_alive = head.keep_alive;

            if !auth::allowed(&self.admin, peer.ip()) {
                let _ = self.respond(
                    &mut stream,
                    403,
                    &json!({"error_msg": "access denied"}),
                    true,
                );
                return;
            }
            let key = presented_key(&head, &buf, query.as_deref());
            if let Err(denied) = auth::check(&self.admin, key.as_deref(), &method) {
                tracing::warn!(%peer, reason = %denied, "admin API request refused");
                let body = json!({"error_msg": "failed to check token", "description": denied.to_string()});
                let _ = self.respond(&mut stream, 401, &body, true);
                return;
            }

            // Body (only once authenticated).
            let mut rest = buf.split_off(head.head_len);
            let body = match read_body(&mut stream, &mut rest, head.body, &limits) {
                Ok(b) => b,
                Err((status, msg)) => {
                    let _ = self.respond(&mut stream, status, &json!({"error_msg": msg}), true);
                    return;
                }
            };
            let resp = {
                let mut ctl = match self.control.lock() {
                    Ok(c) => c,
                    // A panic while holding the lock would be a bug; the state itself is only
                    // replaced after a successful commit, so it is still consistent.
                    Err(poisoned) => poisoned.into_inner(),
                };
                handle(
                    &mut ctl,
                    &ApiRequest {
                        method: &method,
                        path: &path,
                        query: query.as_deref(),
                        body: &body,
                    },
                )
            };
            if self
                .respond(&mut stream, resp.status, &resp.body, !keep_alive)
                .is_err()
                || !keep_alive
            {
                return;
            }
            buf = rest;
        }
    }

    fn respond(
        &self,
        stream: &mut TcpStream,
        status: u16,
        body: &Value,
        close: bool,
    ) -> std::io::Result<()> {
        let text = format!("{body}\n");
        let mut out = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-API-VERSION: v3\r\n",
            crate::proxy::reply::reason(status),
            text.len()
        );
        if !self.server_header.is_empty() {
            out.push_str(&format!("Server: {}\r\n", self.server_header));
        }
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&text);
        stream.write_all(out.as_bytes())
    }
}

fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// The admin key from `X-API-KEY`, the `api_key` query argument or the `X-API-KEY` cookie.
fn presented_key(
    head: &crate::http::RequestHead,
    buf: &[u8],
    query: Option<&str>,
) -> Option<Vec<u8>> {
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("api_key=") {
                return Some(v.as_bytes().to_vec());
            }
        }
    }
    if let Some(v) = head.header(buf, "x-api-key") {
        return Some(v.to_vec());
    }
    let cookie = head.header(buf, "cookie")?;
    String::from_utf8_lossy(cookie).split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        k.eq_ignore_ascii_case("x-api-key")
            .then(|| v.as_bytes().to_vec())
    })
}

/// Reads the whole (bounded) body; `rest` holds bytes already read after the head and keeps any
/// bytes of a pipelined next request.
fn read_body(
    stream: &mut TcpStream,
    rest: &mut Vec<u8>,
    framing: BodyFraming,
    limits: &Limits,
) -> Result<Vec<u8>, (u16, &'static str)> {
    match framing {
        BodyFraming::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_BODY)
                .ok_or((413, "request body too large"))?;
            while rest.len() < n {
                if !read_more(stream, rest) {
                    return Err((400, "incomplete request body"));
                }
            }
            let tail = rest.split_off(n);
            Ok(std::mem::replace(rest, tail))
        }
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::new(limits);
            let mut body = Vec::new();
            let mut pos = 0;
            loop {
                let d = dec
                    .decode(&rest[pos..])
                    .map_err(|_| (400, "invalid chunked body"))?;
                body.extend_from_slice(&rest[pos + d.data.start..pos + d.data.end]);
                pos += d.consumed;
                if body.len() > MAX_BODY {
                    return Err((413, "request body too large"));
                }
                if d.done {
                    rest.drain(..pos);
                    return Ok(body);
                }
                if d.consumed == 0 && d.data.is_empty() {
                    rest.drain(..pos);
                    pos = 0;
                    if !read_more(stream, rest) {
                        return Err((400, "incomplete request body"));
                    }
                }
            }
        }
        _ => Ok(Vec::new()),
    }
}
