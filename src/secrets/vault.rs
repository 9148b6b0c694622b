//! A minimal HashiCorp Vault KV v1 client: `GET {uri}/v1/{prefix}/{path}` with the
//! `X-Vault-Token` header, answer `{"data": {field: value, ...}}`. Blocking, with timeouts; it
//! runs on the control thread only.
//!
//! Only `http://` URIs are read here; `https://` needs the TLS client that comes with TLS
//! support and is reported as unresolvable until then (never silently skipped).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Map, Value};

/// Largest secret response accepted.
const MAX_RESPONSE: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(5);

/// One secret manager object (`/apisix/secrets/vault/{id}`).
#[derive(Clone, PartialEq, Eq)]
pub struct Vault {
    /// `http://host:port`.
    pub uri: String,
    /// KV mount and path prefix, e.g. `kv/apisix`.
    pub prefix: String,
    /// Vault token.
    pub token: String,
    /// Vault Enterprise namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("uri", &self.uri)
            .field("prefix", &self.prefix)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Vault {
    /// From a stored secret manager object.
    pub fn from_json(v: &Value) -> Option<Vault> {
        Some(Vault {
            uri: v.get("uri")?.as_str()?.trim_end_matches('/').to_string(),
            prefix: v.get("prefix")?.as_str()?.trim_matches('/').to_string(),
            token: v.get("token")?.as_str()?.to_string(),
            namespace: v
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Reads the secret at `path`; its `data` object.
    pub fn read(&self, path: &str) -> Result<Map<String, Value>, String> {
        let Some(authority) = self.uri.strip_prefix("http://") else {
            return Err(format!(
                "{}: only http:// Vault addresses are supported for now",
                self.uri
            ));
        };
        let authority = authority.split('/').next().unwrap_or_default();
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.uri))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.uri))?;
        let mut s =
            TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{}: {e}", self.uri))?;
        s.set_read_timeout(Some(TIMEOUT)).ok();
        s.set_write_timeout(Some(TIMEOUT)).ok();
        let ns = self
            .namespace
            .as_deref()
            .map(|n| format!("X-Vault-Namespace: {n}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET /v1/{}/{} HTTP/1.1\r\nHost: {authority}\r\nX-Vault-Token: {}\r\n{ns}Accept: application/json\r\nConnection: close\r\n\r\n",
            self.prefix,
            path.trim_matches('/'),
            self.token
        );
        s.write_all(req.as_bytes())
            .map_err(|e| format!("{}: {e}", self.uri))?;
        let mut raw = Vec::new();
        s.take(MAX_RESPONSE as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("{}: {e}", self.uri))?;
        if raw.len() > MAX_RESPONSE {
            return Err(format!("{}: response too large", self.uri));
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(&raw) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => return Err(format!("{}: not an HTTP response", self.uri)),
        };
        let status = resp.code.unwrap_or(0);
        let chunked = resp.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("transfer-encoding")
                && String::from_utf8_lossy(h.value)
                    .to_ascii_lowercase()
                    .contains("chunked")
        });
        let body = if chunked {
            dechunk(&raw[head_len..]).ok_or_else(|| format!("{}: bad chunked body", self.uri))?
        } else {
            raw[head_len..].to_vec()
        };
        if status != 200 {
            return Err(format!(
                "vault answered {status} for {}/{}",
                self.prefix, path
            ));
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{}: invalid JSON ({e})", self.uri))?;
        match v.get("data") {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(format!("{}: no data object in the answer", self.uri)),
        }
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}
