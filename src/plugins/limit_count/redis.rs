//! `limit-count` policy `redis`: APISIX's fixed window kept in Redis, so every gateway node
//! pointing at the same Redis shares one quota.
//!
//! - [`RedisConf`]: the checked `redis_*` fields.
//! - [`Pools`]: one per worker (core), idle connections keyed by host, port, database and
//!   credentials; AUTH and SELECT run only on a fresh connection.
//! - [`incoming`]: one round trip per request, `EVALSHA` of APISIX's script (the check and the
//!   increment are atomic in Redis), `EVAL` when Redis answers `NOSCRIPT`.
//!
//! The RESP2 framing is `redis-protocol`'s `resp2` encode/decode over plain byte buffers: it is
//! runtime-agnostic (no tokio), so it sits directly on monoio's ownership-passing reads and
//! writes. Every step runs on the worker's own event loop under one `redis_timeout` deadline,
//! so a request never waits on Redis longer than that, and a connection whose exchange failed
//! or timed out is dropped instead of going back to the pool.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, OwnedFrame};

/// APISIX's fixed-window script (`limit-count/util.lua`): KEYS[1] = key, ARGV = count, window
/// (seconds), cost. Returns `{consumed, pttl in ms}`.
pub const SCRIPT: &str = r#"assert(tonumber(ARGV[3]) >= 0, "cost must be at least 0")
local ttl = redis.call('pttl', KEYS[1])
if ttl < 0 then
    redis.call('set', KEYS[1], ARGV[3], 'EX', ARGV[2])
    return {ARGV[3], ARGV[2] * 1000}
end
return {redis.call('incrby', KEYS[1], ARGV[3]), ttl}"#;

/// APISIX's Redis key prefix for fixed-window counters.
pub const KEY_PREFIX: &str = "plugin-limit-count:v1:";

/// The lower-case hex SHA-1 of [`SCRIPT`], for `EVALSHA`.
pub fn script_sha() -> &'static str {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| {
        let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, SCRIPT.as_bytes());
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// The `redis_*` fields of a `policy: redis` configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConf {
    /// `redis_host`.
    pub host: String,
    /// `redis_port`, default 6379.
    pub port: u16,
    /// `redis_username` (an ACL user).
    pub username: Option<String>,
    /// `redis_password`; empty means no AUTH.
    pub password: Option<String>,
    /// `redis_database`, default 0 (SELECT only when not 0).
    pub database: u32,
    /// `redis_timeout`, default 1000 ms: the bound on one request's whole Redis exchange.
    pub timeout: Duration,
    /// `redis_keepalive_timeout`, default 10 s: how long a connection may sit idle in the pool.
    pub keepalive_timeout: Duration,
    /// `redis_keepalive_pool`, default 100: idle connections kept per pool and worker.
    pub keepalive_pool: usize,
    /// The address, resolved when the configuration is compiled (as upstream nodes are), never
    /// on a worker's event loop; `None` when the name did not resolve.
    pub addr: Option<SocketAddr>,
}

impl RedisConf {
    /// Resolves `host` (an IP literal needs no lookup).
    pub fn resolve(&mut self) {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        self.addr = match host.parse::<IpAddr>() {
            Ok(ip) => Some(SocketAddr::new(ip, self.port)),
            Err(_) => match (host, self.port).to_socket_addrs() {
                Ok(mut a) => a.next(),
                Err(e) => {
                    tracing::warn!(host = %self.host, error = %e, "limit-count: redis host does not resolve");
                    None
                }
            },
        };
    }

    /// The pool this configuration's connections belong to: connections are shared only by
    /// configurations with the same server, database and credentials.
    fn pool_key(&self) -> String {
        format!(
            "{}#{}#{}#{}#{}",
            self.host,
            self.port,
            self.database,
            self.username.as_deref().unwrap_or(""),
            self.password.as_deref().unwrap_or("")
        )
    }
}

/// One connection to Redis.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not decoded yet.
    rbuf: Vec<u8>,
    /// When it went back to the pool.
    idle_since: Instant,
}

/// One worker's idle Redis connections. Never borrowed across an await: a request takes a
/// connection out, uses it, and puts it back only if the exchange ended cleanly.
#[derive(Default)]
pub struct Pools {
    idle: RefCell<HashMap<String, Vec<Conn>>>,
}

impl Pools {
    /// An empty set of pools.
    pub fn new() -> Pools {
        Pools::default()
    }

    fn take(&self, key: &str, keepalive: Duration) -> Option<Conn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        while let Some(c) = list.pop() {
            if c.idle_since.elapsed() < keepalive {
                return Some(c);
            }
        }
        None
    }

    fn put(&self, key: String, mut conn: Conn, max: usize) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(key).or_default();
        if list.len() < max && conn.rbuf.is_empty() {
            conn.idle_since = Instant::now();
            list.push(conn);
        }
    }

    fn drop_idle(&self, key: &str) {
        self.idle.borrow_mut().remove(key);
    }

    /// Drops every idle connection.
    pub fn clear(&self) {
        self.idle.borrow_mut().clear();
    }

    /// Number of idle connections (tests).
    pub fn idle(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }
}

/// Encodes one command (an array of bulk strings) onto `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let frames: Vec<BorrowedFrame<'_>> =
        args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
    let frame = BorrowedFrame::Array(&frames);
    let start = out.len();
    out.resize(start + frame.encode_len(false), 0);
    let n = encode_borrowed(&mut out[start..], &frame, false)
        .expect("the buffer was sized with encode_len");
    out.truncate(start + n);
}

/// Reads a frame's integer, whether Redis sent it as an integer or (a Lua string passed
/// through) as a bulk string.
fn as_int(f: &OwnedFrame) -> Option<i64> {
    match f {
        OwnedFrame::Integer(n) => Some(*n),
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => {
            std::str::from_utf8(b).ok()?.trim().parse().ok()
        }
        _ => None,
    }
}

/// The script's answer: `(consumed, pttl ms)`; a Redis error or another shape is an error.
pub fn script_result(f: &OwnedFrame) -> Result<(i64, i64), String> {
    match f {
        OwnedFrame::Array(items) if items.len() == 2 => {
            match (as_int(&items[0]), as_int(&items[1])) {
                (Some(c), Some(t)) => Ok((c, t)),
                _ => Err(format!("unexpected script result: {f:?}")),
            }
        }
        OwnedFrame::Error(e) => Err(e.clone()),
        _ => Err(format!("unexpected script result: {f:?}")),
    }
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect_addr(addr)
            .await
            .map_err(|e| format!("failed to connect to redis {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            rbuf: Vec::with_capacity(256),
            idle_since: Instant::now(),
        })
    }

    /// Sends one command and reads its reply frame (an error reply is `Ok(Error)`).
    async fn call(&mut self, args: &[&[u8]]) -> Result<OwnedFrame, String> {
        let mut out = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        encode_command(&mut out, args);
        let (res, _) = self.stream.write_all(out).await;
        res.map_err(|e| format!("failed to send to redis: {e}"))?;
        loop {
            match decode(&self.rbuf) {
                Ok(Some((frame, used))) => {
                    self.rbuf.drain(..used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("bad redis reply: {e}")),
            }
            if self.rbuf.capacity() - self.rbuf.len() < 256 {
                self.rbuf.reserve(4096);
            }
            let start = self.rbuf.len();
            let end = self.rbuf.capacity();
            let buf = std::mem::take(&mut self.rbuf);
            let (res, slice) = self.stream.read(buf.slice_mut(start..end)).await;
            self.rbuf = slice.into_inner();
            match res {
                Ok(0) => return Err("redis closed the connection".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("failed to read from redis: {e}")),
            }
        }
    }

    /// AUTH and SELECT, as APISIX runs them on a fresh connection.
    async fn prepare(&mut self, conf: &RedisConf) -> Result<(), String> {
        if let Some(pass) = conf.password.as_deref().filter(|p| !p.is_empty()) {
            let r = match conf.username.as_deref() {
                Some(user) => {
                    self.call(&[b"AUTH", user.as_bytes(), pass.as_bytes()])
                        .await?
                }
                None => self.call(&[b"AUTH", pass.as_bytes()]).await?,
            };
            if let OwnedFrame::Error(e) = r {
                return Err(format!("failed to auth redis: {e}"));
            }
        }
        if conf.database != 0 {
            let db = conf.database.to_string();
            if let OwnedFrame::Error(e) = self.call(&[b"SELECT", db.as_bytes()]).await? {
                return Err(format!("failed to change redis db, err: {e}"));
            }
        }
        Ok(())
    }
}

/// Charges `cost` to `key` (already prefixed with [`KEY_PREFIX`]) for a window of `window_s`
/// seconds. Returns `(consumed, pttl ms)`. Bounded by `conf.timeout` as a whole.
pub async fn incoming(
    pools: &Pools,
    conf: &RedisConf,
    key: &str,
    count: u64,
    window_s: u64,
    cost: u64,
) -> Result<(i64, i64), String> {
    match monoio::time::timeout(
        conf.timeout,
        exchange(pools, conf, key, count, window_s, cost),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(format!(
            "redis timeout after {} ms",
            conf.timeout.as_millis()
        )),
    }
}

async fn exchange(
    pools: &Pools,
    conf: &RedisConf,
    key: &str,
    count: u64,
    window_s: u64,
    cost: u64,
) -> Result<(i64, i64), String> {
    let addr = conf
        .addr
        .ok_or_else(|| format!("redis host {} does not resolve", conf.host))?;
    let pool_key = conf.pool_key();
    let (count, window, cost) = (count.to_string(), window_s.to_string(), cost.to_string());
    let argv = [
        key.as_bytes(),
        count.as_bytes(),
        window.as_bytes(),
        cost.as_bytes(),
    ];
    if let Some(mut conn) = pools.take(&pool_key, conf.keepalive_timeout) {
        match run_script(&mut conn, &argv).await {
            Ok(reply) => {
                pools.put(pool_key, conn, conf.keepalive_pool);
                return script_result(&reply);
            }
            // A pooled connection that broke (Redis restarted, idle timeout on its side):
            // its siblings are most likely stale too; drop them and go on with a fresh one.
            Err(e) => {
                tracing::debug!(error = %e, "limit-count: pooled redis connection broke, reconnecting");
                pools.drop_idle(&pool_key);
            }
        }
    }
    let mut conn = Conn::connect(addr).await?;
    conn.prepare(conf).await?;
    let reply = run_script(&mut conn, &argv).await?;
    // The exchange ended cleanly (even on a Redis error reply): the connection is reusable.
    pools.put(pool_key, conn, conf.keepalive_pool);
    script_result(&reply)
}

/// EVALSHA of [`SCRIPT`] with `argv` (key, count, window, cost); EVAL on `NOSCRIPT`.
async fn run_script(conn: &mut Conn, argv: &[&[u8]; 4]) -> Result<OwnedFrame, String> {
    let sha = script_sha();
    let mut args: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes(), b"1"];
    args.extend_from_slice(argv);
    let reply = conn.call(&args).await?;
    if !matches!(&reply, OwnedFrame::Error(e) if e.starts_with("NOSCRIPT")) {
        return Ok(reply);
    }
    args[0] = b"EVAL";
    args[1] = SCRIPT.as_bytes();
    conn.call(&args).await
}
