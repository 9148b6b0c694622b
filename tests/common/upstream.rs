//! A real HTTP/1.1 upstream on loopback for the tests, one thread per connection, with
//! keep-alive. It echoes requests as JSON (like httpbin's `/anything`) and has paths that
//! misbehave on purpose:
//!
//! | path                | answer                                                          |
//! |---------------------|-----------------------------------------------------------------|
//! | anything else       | 200 JSON echo: method, uri, headers, body, connection number     |
//! | `/status/{n}`       | status n, empty body (no length header for 1xx/204/304)          |
//! | `/chunked`          | 200 chunked body `hello world` in three chunks                   |
//! | `/close`            | 200 without length, body until the connection closes             |
//! | `/slow/{ms}`        | waits, then echoes                                               |
//! | `/garbage`          | bytes that are not HTTP, then close                              |
//! | `/reset`            | closes without answering                                         |
//! | `/big/{n}`          | n bytes of `x` with Content-Length                               |
//! | `/conn-close`       | echo with `Connection: close`, then closes                       |
//! | `/then-close`       | echo (keep-alive framing, no `Connection: close`), then closes    |
//! | `/drop-next`        | echo; the next request on this connection is read, then the      |
//! |                     | connection is closed without an answer (a keep-alive race)       |
//!
//! Every request read in full is recorded in [`Upstream::seen`], in arrival order.
//!
//! [`Upstream::start_tls`] serves the same over TLS (rustls); the echo then also says which
//! server name (SNI) the client sent, and a connection the server ends is closed with a TLS
//! `close_notify` first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the upstream read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Connection number (1 for the first connection accepted).
    pub connection: usize,
    pub method: String,
    pub uri: String,
    pub body_len: usize,
}

pub struct Upstream {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Requests read in full so far, answered or not.
    pub log: Arc<Mutex<Vec<Seen>>>,
    /// `METHOD uri` of every request head received, in arrival order (even when its body
    /// never arrives in full).
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    pub fn start() -> Upstream {
        Upstream::start_with(None)
    }

    /// The same upstream over TLS with `config`.
    pub fn start_tls(config: Arc<rustls::ServerConfig>) -> Upstream {
        Upstream::start_with(Some(config))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, s, l, r) = (
            connections.clone(),
            stop.clone(),
            log.clone(),
            requests.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                let (l, r, tls) = (l.clone(), r.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        None => {
                            let mut stream = stream;
                            let _ = serve(&mut stream, n, None, &l, &r);
                        }
                        Some(cfg) => {
                            let _ = serve_tls(cfg, stream, n, &l, &r);
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            connections,
            log,
            requests,
            stop,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request read so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests for `uri` (path and query) with `method` were read.
    pub fn seen_count(&self, method: &str, uri: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.uri == uri)
            .count()
    }

    /// `METHOD uri` of every request head received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Handshakes, serves, and ends the connection with a `close_notify`.
fn serve_tls(
    cfg: Arc<rustls::ServerConfig>,
    mut tcp: TcpStream,
    conn_no: usize,
    log: &Mutex<Vec<Seen>>,
    heads: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut conn = rustls::ServerConnection::new(cfg).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    let sni = conn.server_name().map(str::to_owned);
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let served = serve(&mut tls, conn_no, sni, log, heads);
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    served
}

fn serve<S: Read + Write>(
    stream: &mut S,
    conn_no: usize,
    sni: Option<String>,
    log: &Mutex<Vec<Seen>>,
    heads: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut served = 0usize;
    let mut drop_next = false;
    loop {
        // Head.
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" || line == b"\n" {
                if head.len() == line.len() {
                    head.clear();
                    continue;
                }
                break;
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
        let method = req.method.unwrap_or("").to_string();
        let uri = req.path.unwrap_or("").to_string();
        heads.lock().unwrap().push(format!("{method} {uri}"));
        let hdrs: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let get = |n: &str| {
            hdrs.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        // Body.
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let mut line = String::new();
                reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .unwrap_or(0);
                if size == 0 {
                    // trailers
                    loop {
                        let mut t = String::new();
                        reader.read_line(&mut t)?;
                        if t == "\r\n" || t.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let mut chunk = vec![0; size];
                reader.read_exact(&mut chunk)?;
                body.extend_from_slice(&chunk);
                let mut crlf = [0; 2];
                reader.read_exact(&mut crlf)?;
            }
        } else if let Some(cl) = get("content-length") {
            let n: usize = cl.trim().parse().unwrap_or(0);
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        log.lock().unwrap().push(Seen {
            connection: conn_no,
            method: method.clone(),
            uri: uri.clone(),
            body_len: body.len(),
        });
        if drop_next {
            return Ok(());
        }
        served += 1;
        let path = uri.split('?').next().unwrap_or("").to_string();
        let echo = || {
            serde_json::json!({
                "method": method,
                "uri": uri,
                "headers": hdrs.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&body),
                "connection": conn_no,
                "served_on_connection": served,
                "sni": sni,
            })
            .to_string()
        };
        let head_only = method == "HEAD";
        let respond = |out: &mut S, status: u16, extra: &str, body: &[u8]| {
            let mut r = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nServer: upstream\r\n{extra}\r\n",
                body.len()
            )
            .into_bytes();
            if !head_only {
                r.extend_from_slice(body);
            }
            out.write_all(&r)
        };
        if let Some(code) = path.strip_prefix("/status/") {
            let code: u16 = code.parse().unwrap_or(200);
            if code == 204 || code == 304 || code < 200 {
                write!(
                    reader.get_mut(),
                    "HTTP/1.1 {code} X\r\nServer: upstream\r\n\r\n"
                )?;
            } else {
                respond(reader.get_mut(), code, "", b"")?;
            }
        } else if path == "/chunked" {
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            if !head_only {
                reader.get_mut().write_all(
                    b"6\r\nhello \r\n3;ext=1\r\nwor\r\n2\r\nld\r\n0\r\nX-Trailer: t\r\n\r\n",
                )?;
            }
        } else if path == "/close" {
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close")?;
            return Ok(());
        } else if let Some(ms) = path.strip_prefix("/slow/") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(100)));
            respond(
                reader.get_mut(),
                200,
                "Content-Type: application/json\r\n",
                echo().as_bytes(),
            )?;
        } else if path == "/garbage" {
            reader.get_mut().write_all(b"NOT HTTP AT ALL\r\n\r\n")?;
            return Ok(());
        } else if path == "/reset" {
            return Ok(());
        } else if let Some(n) = path.strip_prefix("/big/") {
            let n: usize = n.parse().unwrap_or(0);
            respond(reader.get_mut(), 200, "", &vec![b'x'; n])?;
        } else if path == "/then-close" {
            respond(reader.get_mut(), 200, "", echo().as_bytes())?;
            return Ok(());
        } else if path == "/drop-next" {
            respond(reader.get_mut(), 200, "", echo().as_bytes())?;
            drop_next = true;
        } else if path == "/conn-close" {
            respond(
                reader.get_mut(),
                200,
                "Connection: close\r\n",
                echo().as_bytes(),
            )?;
            return Ok(());
        } else {
            respond(
                reader.get_mut(),
                200,
                "Content-Type: application/json\r\n",
                echo().as_bytes(),
            )?;
        }
    }
}
