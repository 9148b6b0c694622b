//! A minimal HTTP/1.1 client that reads exactly one response off a stream (Content-Length,
//! chunked, or until close; HEAD, 1xx, 204 and 304 without a body), so tests can keep a
//! connection open, pipeline, and look at raw bytes.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
    /// For echo responses: the value of request header `name` as the upstream saw it.
    pub fn echoed_header(&self, name: &str) -> Option<String> {
        self.json()["headers"]
            .as_array()?
            .iter()
            .find(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .and_then(|h| h[1].as_str().map(String::from))
    }
}

/// A keep-alive connection to the gateway.
pub struct Conn {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let s = super::connect(addr);
        Conn {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.writer.write_all(raw).expect("write to gateway");
    }

    /// Reads one response; `head_request` when it answers a HEAD.
    pub fn read(&mut self, head_request: bool) -> std::io::Result<Response> {
        read_response(&mut self.reader, head_request)
    }

    /// Sends a GET and reads the answer.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n\r\n").as_bytes());
        self.read(false).expect("a response")
    }
}

/// Sends one request on a fresh connection and reads the response.
pub fn request(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut c = Conn::open(addr);
    c.send(raw);
    c.read(raw.starts_with(b"HEAD ")).expect("a response")
}

/// GET `path` with `Host: test.local` on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n\r\n").as_bytes(),
    )
}

pub fn read_response<R: BufRead>(r: &mut R, head_request: bool) -> std::io::Result<Response> {
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
        }
        let mut hs = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut hs);
        match resp.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            other => {
                return Err(std::io::Error::other(format!(
                    "bad response head {other:?}: {}",
                    String::from_utf8_lossy(&head)
                )))
            }
        }
        let status = resp.code.unwrap_or(0);
        let headers: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        if status == 100 {
            continue;
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if head_request || status == 204 || status == 304 || status < 200 {
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut line = String::new();
                r.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| std::io::Error::other(format!("bad chunk line {line:?}")))?;
                if size == 0 {
                    let mut end = String::new();
                    r.read_line(&mut end)?;
                    break;
                }
                let mut chunk = vec![0; size];
                r.read_exact(&mut chunk)?;
                body.extend_from_slice(&chunk);
                let mut crlf = [0; 2];
                r.read_exact(&mut crlf)?;
            }
        } else if let Some(cl) = get("content-length") {
            body.resize(cl.trim().parse().unwrap_or(0), 0);
            r.read_exact(&mut body)?;
        } else {
            r.read_to_end(&mut body)?;
        }
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
}
