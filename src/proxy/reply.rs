//! Responses the gateway writes itself (errors, `100 Continue`). Every error body is JSON in
//! APISIX's shape, `{"error_msg":"..."}` followed by a newline, so clients parse one format
//! whichever layer refused them.

use super::date;

/// `100 Continue` interim response, sent before reading a body the client is holding back.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The reason phrase for `status`, or `Unknown` for codes without one.
pub fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// Appends a complete JSON error response to `out`.
///
/// `close` adds `Connection: close`; the caller closes the connection after writing it.
pub fn json_error(out: &mut Vec<u8>, status: u16, message: &str, server: &str, close: bool) {
    let body = serde_json::json!({ "error_msg": message }).to_string();
    json_response(out, status, &body, server, close);
}

/// Appends a complete response with a JSON `body` (a newline is added, as APISIX does).
pub fn json_response(out: &mut Vec<u8>, status: u16, body: &str, server: &str, close: bool) {
    json_response_with(out, status, &[], body, server, close)
}

/// [`json_response`] with extra headers (a plugin's `WWW-Authenticate`, rate-limit headers).
pub fn json_response_with(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, String)],
    body: &str,
    server: &str,
    close: bool,
) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} {}\r\nDate: ", status, reason(status));
    date::append_now(out);
    let _ = write!(
        out,
        "\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len() + 1
    );
    if !server.is_empty() {
        let _ = write!(out, "Server: {server}\r\n");
    }
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_json_with_length() {
        let mut out = Vec::new();
        json_error(&mut out, 404, "404 Route Not Found", "Portcullis", false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "{\"error_msg\":\"404 Route Not Found\"}\n");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(head.contains("Content-Type: application/json"));
        assert!(!head.contains("Connection: close"));
    }

    #[test]
    fn message_is_escaped() {
        let mut out = Vec::new();
        json_error(&mut out, 400, "bad \"quote\"", "P", true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("{\"error_msg\":\"bad \\\"quote\\\"\"}\n"));
    }
}
