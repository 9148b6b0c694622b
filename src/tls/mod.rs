//! TLS termination on `ssl_listen`: certificates from APISIX `ssl` objects, picked by SNI.
//!
//! - [`sni`]: host-name checks and the [`SniTable`] (exact name, then `*.example.com`, then
//!   `*`), compiled into every [`Snapshot`](crate::snapshot::Snapshot), so a PUT or DELETE of
//!   an ssl object applies to the next handshake on every worker, without a restart.
//! - [`server`]: each worker's rustls [`ServerConfig`](rustls::ServerConfig)s (TLS 1.2 and 1.3,
//!   ALPN `http/1.1`, ring as the crypto provider) and the certificate resolver that reads the
//!   current snapshot's table.
//! - [`accept`]: one connection: handshake under `timeouts.client_header_secs`, then the same
//!   connection loop as plain HTTP with scheme `https`.
//!
//! rustls does the TLS; `monoio-rustls` adapts it to monoio's ownership-passing I/O. Sessions
//! resume from each worker's own in-memory cache (no shared lock between cores, and no session
//! tickets, whose key would have to be shared and rotated); a client whose next connection lands
//! on another worker does a full handshake.

pub mod accept;
pub mod server;
pub mod sni;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

pub use accept::serve;
pub use server::Acceptors;
pub use sni::SniTable;

/// The crypto provider every TLS config and key parse uses: ring, the crate the JWT core already
/// depends on (rustls's default, aws-lc-rs, would add a C and assembly build).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
