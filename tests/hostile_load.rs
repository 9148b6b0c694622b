//! Hostile traffic at scale against the real binary: 10,000 open connections, a slowloris
//! crowd, floods of one-byte chunks, pipelined floods, half-closed sockets, clients that never
//! read a big response, and upstreams that reset mid-body or answer garbage.
//!
//! During each attack a well-behaved client (a [`Probe`]) keeps sending requests on its own
//! keep-alive connection; every one must succeed, and its p50/p99 latency is printed (run with
//! `--nocapture` to see the figures). The gateway's resident memory (`VmRSS`) is read from
//! `/proc` before, during and after, and must stay within generous bounds; its log must show no
//! panic. The tests take a lock so they run one at a time: the latency figures then measure
//! the attack, not the neighbouring tests.
//!
//! Where the machine's limits do not allow 10,000 descriptors (a CI runner's hard
//! `RLIMIT_NOFILE`), the connection count is scaled down and a note says so.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::client::{read_response, Conn, Response};
use common::upstream::Upstream;
use common::{both_drivers, connect, Driver, Gateway, GatewayOpts};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Open descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident memory of `pid` in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc status");
    kib * KIB
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// A gateway with two routes: `/probe/*` to the echo upstream, `/rogue/*` to `rogue`.
fn start(driver: Driver, extra_config: &str, echo: SocketAddr, rogue: SocketAddr) -> Gateway {
    let standalone = format!(
        "routes:\n\
         \x20 - id: probe\n    uri: \"/probe/*\"\n    upstream:\n      type: roundrobin\n      nodes:\n        \"{echo}\": 1\n\
         \x20 - id: rogue\n    uri: \"/rogue/*\"\n    upstream:\n      type: roundrobin\n      nodes:\n        \"{rogue}\": 1\n"
    );
    Gateway::start(GatewayOpts {
        driver,
        workers: 2,
        extra_config: extra_config.into(),
        standalone: Some(standalone),
        ..Default::default()
    })
}

fn assert_no_panic(gw: &Gateway) {
    let log = gw.stderr();
    assert!(!log.contains("panicked"), "the gateway panicked:\n{log}");
    assert!(gw.pid().is_some(), "the gateway exited");
}

/// A well-behaved client: GETs on one keep-alive connection, a few ms apart, until stopped.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<Duration>, Vec<String>)>,
}

impl Probe {
    fn start(addr: SocketAddr) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut times, mut errors) = (Vec::new(), Vec::new());
            let mut conn = Conn::open(addr);
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) || times.len() + errors.len() < 20 {
                i += 1;
                let t = Instant::now();
                let path = format!("/probe/{i}");
                let sent = conn
                    .writer
                    .write_all(format!("GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n").as_bytes());
                match sent.and_then(|_| conn.read(false)) {
                    Ok(r) if r.status == 200 && r.json()["uri"] == path.as_str() => {
                        times.push(t.elapsed())
                    }
                    Ok(r) => errors.push(format!("{path}: {} {}", r.status, r.text())),
                    Err(e) => {
                        errors.push(format!("{path}: {e}"));
                        conn = Conn::open(addr);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (times, errors)
        });
        Probe { stop, thread }
    }

    /// Stops the probe, prints its latency and checks that every request succeeded.
    fn finish(self, during: &str) -> (Duration, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut times, errors) = self.thread.join().expect("the probe thread");
        assert!(
            errors.is_empty(),
            "{during}: a well-behaved client's requests failed: {errors:?}"
        );
        times.sort();
        let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
        let (p50, p99) = (pct(50), pct(99));
        println!(
            "{during}: well-behaved client {} requests, p50 {p50:?}, p99 {p99:?}, max {:?}",
            times.len(),
            times[times.len() - 1]
        );
        // Generous (a debug build on two shared cores): a worker stalled by the attack, or a
        // request left to a timeout, takes longer.
        assert!(p99 < Duration::from_secs(2), "{during}: p99 {p99:?}");
        (p50, p99)
    }
}

/// An upstream that misbehaves on purpose, by path (`/rogue/...`), one thread per connection:
///
/// | path                 | answer                                                             |
/// |----------------------|--------------------------------------------------------------------|
/// | `ok`                 | 200 `ok`                                                           |
/// | `stream/{n}`         | 200 with n bytes of body, written 64 KiB at a time                 |
/// | `rst-mid-body`       | 200 promising 1 MB, 64 KiB of it, then a reset (RST)               |
/// | `rst-mid-chunked`    | 200 chunked, one 4 KiB chunk, then a reset                         |
/// | `bad-chunk-early`    | 200 chunked and a chunk size that is not hex, in one write         |
/// | `bad-chunk-late`     | 200 chunked, a chunk, and 100 ms later a chunk size that is not hex |
/// | `garbage-status`     | a status line that is not HTTP                                     |
/// | `garbage-binary`     | 4 KiB of binary noise                                              |
/// | `endless-head`       | a status line, then header lines for 16 MiB                        |
struct Rogue {
    addr: SocketAddr,
}

impl Rogue {
    fn start() -> Rogue {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the rogue upstream");
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = Rogue::serve(stream);
                });
            }
        });
        Rogue { addr }
    }

    fn serve(stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        // No Nagle: a head and its body in two writes must not wait for a delayed ACK.
        stream.set_nodelay(true)?;
        let mut out = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line)? == 0 {
                return Ok(());
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == "\r\n" {
                    break;
                }
            }
            let target = request_line.split(' ').nth(1).unwrap_or("");
            let path = target.split('?').next().unwrap_or("");
            let path = path.strip_prefix("/rogue/").unwrap_or(path);
            let block = vec![b'x'; 64 * 1024];
            let reset = |s: &TcpStream| {
                socket2::SockRef::from(s).set_linger(Some(Duration::ZERO))?;
                s.shutdown(Shutdown::Both)
            };
            match path {
                "ok" => out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?,
                p if p.starts_with("stream/") => {
                    let mut left: usize = p[7..].parse().unwrap_or(0);
                    write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {left}\r\n\r\n")?;
                    while left > 0 {
                        let n = left.min(block.len());
                        out.write_all(&block[..n])?;
                        left -= n;
                    }
                }
                "rst-mid-body" => {
                    out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")?;
                    out.write_all(&block)?;
                    std::thread::sleep(Duration::from_millis(50));
                    return reset(&out);
                }
                "rst-mid-chunked" => {
                    out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                    out.write_all(b"1000\r\n")?;
                    out.write_all(&block[..4096])?;
                    out.write_all(b"\r\n")?;
                    std::thread::sleep(Duration::from_millis(50));
                    return reset(&out);
                }
                "bad-chunk-early" => {
                    out.write_all(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nokay\r\nzz\r\n",
                    )?;
                    std::thread::sleep(Duration::from_millis(500));
                    return Ok(());
                }
                "bad-chunk-late" => {
                    out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                    out.write_all(b"4\r\nokay\r\n")?;
                    std::thread::sleep(Duration::from_millis(100));
                    out.write_all(b"zz\r\nnot a chunk\r\n")?;
                    std::thread::sleep(Duration::from_millis(500));
                    return Ok(());
                }
                "garbage-status" => {
                    out.write_all(b"HTTP/9.9 banana\r\nContent-Length: 2\r\n\r\nok")?;
                    return Ok(());
                }
                "garbage-binary" => {
                    let noise: Vec<u8> = (0..4096u32)
                        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                        .collect();
                    out.write_all(&noise)?;
                    return Ok(());
                }
                "endless-head" => {
                    out.write_all(b"HTTP/1.1 200 OK\r\n")?;
                    let line = b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
                    let lines = line.repeat(1024);
                    for _ in 0..(16 * MIB as usize / lines.len()) {
                        out.write_all(&lines)?;
                    }
                    return Ok(());
                }
                _ => out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
            }
        }
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit and returns the soft limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one `rlimit` we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max.min(1 << 20),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    lim.rlim_cur
}

/// The soft open-file limit of process `pid`, from `/proc/PID/limits`.
fn nofile_of(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Waits until `f` holds, up to `limit`; returns whether it did.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Reads until the peer closes (EOF or reset), at most `limit`; returns the bytes and whether
/// the connection ended (rather than the time running out).
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return (out, true)
            }
            Err(_) => return (out, false),
        }
    }
}

fn get_on(s: &TcpStream, path: &str) -> std::io::Result<Response> {
    let mut w = s;
    w.write_all(format!("GET {path} HTTP/1.1\r\nHost: load\r\n\r\n").as_bytes())?;
    read_response(&mut BufReader::with_capacity(4096, s), false)
}

#[test]
fn ten_thousand_open_connections_leave_room_for_others() {
    let _serial = serial();
    let wanted = 10_000u64;
    let own = raise_nofile();
    let (echo, rogue) = (Upstream::start(), Rogue::start());
    let gw = start(Driver::Uring, "", echo.addr, rogue.addr);
    let pid = gw.pid().unwrap();
    let room = own.min(nofile_of(pid)).saturating_sub(256);
    let n = wanted.min(room) as usize;
    if (n as u64) < wanted {
        println!(
            "note: RLIMIT_NOFILE allows {room} descriptors here (test {own}, gateway {}); \
             running with {n} connections instead of {wanted}",
            nofile_of(pid)
        );
    }
    assert!(n >= 500, "only {n} descriptors available");

    let before = rss(pid);
    let fds_before = fds(pid);
    Probe::start(gw.addr()).finish("idle gateway");

    // Every connection makes one request (so its buffers exist), then stays open.
    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let s = connect(gw.addr());
        let r = get_on(&s, &format!("/rogue/ok?c={i}"))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(r.status, 200, "connection {i}");
        held.push(s);
    }
    println!(
        "{n} connections opened and served in {:?}",
        started.elapsed()
    );

    let probe = Probe::start(gw.addr());
    std::thread::sleep(Duration::from_secs(1));
    let during = rss(pid);
    // Held connections are still served, not just accepted.
    for (i, s) in held.iter().enumerate().step_by(97) {
        let r = get_on(s, "/rogue/ok").unwrap_or_else(|e| panic!("held connection {i}: {e}"));
        assert_eq!(r.status, 200);
    }
    probe.finish(&format!("{n} connections open"));
    let per_conn = during.saturating_sub(before) / n as u64;
    println!(
        "gateway RSS: {} before, {} with {n} connections open ({} per connection)",
        mib(before),
        mib(during),
        per_conn
    );
    assert!(
        per_conn < 64 * KIB,
        "{per_conn} bytes of RSS per open connection"
    );

    assert!(
        fds(pid) >= fds_before + n,
        "the gateway holds {} descriptors",
        fds(pid)
    );
    drop(held);
    // Every connection is released (the probe's and pooled upstream ones aside).
    let released = eventually(Duration::from_secs(10), || fds(pid) <= fds_before + 8);
    assert!(
        released,
        "{} descriptors still open, {fds_before} before",
        fds(pid)
    );
    let growth = during.saturating_sub(before);
    let settled = eventually(Duration::from_secs(10), || {
        rss(pid) <= before + growth / 2 + 4 * MIB
    });
    let after = rss(pid);
    println!("gateway RSS after they closed: {}", mib(after));
    assert!(
        settled,
        "RSS stayed at {} after the connections closed ({} before, {} during)",
        mib(after),
        mib(before),
        mib(during)
    );
    Probe::start(gw.addr()).finish("after the connections closed");
    assert_no_panic(&gw);
}

#[test]
fn a_slowloris_crowd_is_cut_off_while_others_are_served() {
    let _serial = serial();
    let crowd = 500;
    both_drivers(|driver| {
        let (echo, rogue) = (Upstream::start(), Rogue::start());
        let timeouts = "timeouts:\n  client_header_secs: 2\n";
        let gw = start(driver, timeouts, echo.addr, rogue.addr);
        let pid = gw.pid().unwrap();
        let before = rss(pid);
        let probe = Probe::start(gw.addr());

        let started = Instant::now();
        let mut socks: Vec<TcpStream> = (0..crowd).map(|_| connect(gw.addr())).collect();
        for s in &mut socks {
            s.write_all(b"GET /probe/slow HTTP/1.1\r\nHost: a\r\nX-Drip: ")
                .unwrap();
        }
        // A header byte per connection every 250 ms, for 1.5 s; then silence, so that the
        // gateway's 408 finds nothing unread and closes cleanly.
        while started.elapsed() < Duration::from_millis(1500) {
            std::thread::sleep(Duration::from_millis(250));
            for s in &mut socks {
                s.write_all(b"d").unwrap();
            }
        }
        let during = rss(pid);
        for (i, s) in socks.iter_mut().enumerate() {
            let (bytes, closed) = read_until_closed(s, Duration::from_secs(6));
            assert!(closed, "{driver:?}: slowloris {i} still open");
            let resp = read_response(&mut &bytes[..], false).unwrap_or_else(|e| {
                panic!(
                    "{driver:?}: slowloris {i}: {e}: {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(resp.status, 408, "{driver:?}: slowloris {i}");
        }
        let cut_after = started.elapsed();
        println!("{driver:?}: {crowd} slowloris connections cut off after {cut_after:?}");
        assert!(cut_after < Duration::from_secs(6), "{cut_after:?}");
        probe.finish(&format!("{driver:?}: slowloris crowd of {crowd}"));
        println!(
            "{driver:?}: gateway RSS {} before, {} during the slowloris",
            mib(before),
            mib(during)
        );
        assert!(during.saturating_sub(before) < crowd as u64 * 64 * KIB);
        assert_no_panic(&gw);
    });
}

/// Sends `head` then `body` from a writer thread while reading the response.
fn post(addr: SocketAddr, head: &str, body: Vec<u8>) -> std::io::Result<Response> {
    let s = connect(addr);
    let mut w = s.try_clone()?;
    let head = head.to_string();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(head.as_bytes());
        let _ = w.write_all(&body);
    });
    let r = read_response(&mut BufReader::new(s), false);
    let _ = writer.join();
    r
}

fn one_byte_chunks(n: usize, ext: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(n * (8 + ext.len()));
    for _ in 0..n {
        body.extend_from_slice(format!("1{ext}\r\nx\r\n").as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

#[test]
fn floods_of_tiny_chunks_are_decoded_or_refused_within_bounds() {
    let _serial = serial();
    both_drivers(|driver| {
        let (echo, rogue) = (Upstream::start(), Rogue::start());
        let limits = "limits:\n  max_body_bytes: 30000\n";
        let gw = start(driver, limits, echo.addr, rogue.addr);
        let pid = gw.pid().unwrap();
        let before = rss(pid);
        let probe = Probe::start(gw.addr());
        let head = "POST /probe/chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

        // 20 clients at once, 20,000 one-byte chunks each (140 KB of framing for 20 KB).
        let flooders: Vec<_> = (0..20)
            .map(|i| {
                let addr = gw.addr();
                let ext = if i % 2 == 0 {
                    ""
                } else {
                    ";a=b;quoted=\"v v\""
                };
                let body = one_byte_chunks(20_000, ext);
                std::thread::spawn(move || post(addr, head, body))
            })
            .collect();
        for (i, f) in flooders.into_iter().enumerate() {
            let r = f
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("flooder {i}: {e}"));
            assert_eq!(r.status, 200, "{driver:?}: flooder {i}: {}", r.text());
            assert_eq!(r.json()["body"].as_str().map(str::len), Some(20_000));
        }
        let during = rss(pid);

        // Past max_body_bytes: refused with 413, never forwarded whole.
        let r = post(gw.addr(), head, one_byte_chunks(40_000, "")).unwrap();
        assert_eq!(r.status, 413, "{driver:?}: {}", r.text());
        // A chunk line longer than the limit (a 1 MB extension): 400, not buffered.
        let mut huge_ext = b"1;".to_vec();
        huge_ext.extend(std::iter::repeat_n(b'a', 1 << 20));
        huge_ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        let r = post(gw.addr(), head, huge_ext).unwrap();
        assert_eq!(r.status, 400, "{driver:?}: {}", r.text());

        probe.finish(&format!("{driver:?}: 20 floods of 20,000 one-byte chunks"));
        println!(
            "{driver:?}: gateway RSS {} before, {} after the chunk floods",
            mib(before),
            mib(during)
        );
        assert!(during.saturating_sub(before) < 32 * MIB);
        assert_no_panic(&gw);
    });
}

#[test]
fn pipelined_floods_are_answered_in_order_or_cut_off() {
    let _serial = serial();
    both_drivers(|driver| {
        let (echo, rogue) = (Upstream::start(), Rogue::start());
        let gw = start(driver, "timeouts:\n  send_secs: 2\n", echo.addr, rogue.addr);
        let pid = gw.pid().unwrap();
        let before = rss(pid);
        let probe = Probe::start(gw.addr());

        // 5,000 requests in one write, answered in order.
        let n = 5_000;
        let flood: Vec<u8> = (0..n)
            .flat_map(|i| format!("GET /probe/p{i} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes())
            .collect();
        let s = connect(gw.addr());
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || w.write_all(&flood));
        let mut reader = BufReader::new(s);
        for i in 0..n {
            let r = read_response(&mut reader, false)
                .unwrap_or_else(|e| panic!("{driver:?}: pipelined response {i}: {e}"));
            assert_eq!(r.json()["uri"], format!("/probe/p{i}"), "{driver:?}");
        }
        writer.join().unwrap().unwrap();
        let during = rss(pid);

        // A pipeliner that never reads: the gateway stops when the socket buffers fill, holds
        // no more than a head's worth of its bytes, and cuts it off after send_secs, which
        // resets the writer (its requests were left unread).
        let mut s = connect(gw.addr());
        let mut w = s.try_clone().unwrap();
        w.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
        let flood: Vec<u8> = (0..100_000)
            .flat_map(|_| b"GET /rogue/stream/4096 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec())
            .collect();
        let t = Instant::now();
        let writer = std::thread::spawn(move || w.write_all(&flood));
        std::thread::sleep(Duration::from_secs(2));
        let stalled = rss(pid);
        let written = writer.join().unwrap();
        let cut_after = t.elapsed();
        assert!(
            written.as_ref().is_err_and(|e| matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )),
            "{driver:?}: a pipeliner that never reads: {written:?} after {cut_after:?}"
        );
        assert!(cut_after < Duration::from_secs(12), "{cut_after:?}");
        let (bytes, closed) = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(closed, "{driver:?}: still open after the cut-off");
        let complete_answers = bytes.len() / (4096 + 60);
        probe.finish(&format!("{driver:?}: pipelined floods"));
        println!(
            "{driver:?}: gateway RSS {} before, {} after 5,000 pipelined, {} with a stalled \
             pipeliner (cut off after ~{complete_answers} answers)",
            mib(before),
            mib(during),
            mib(stalled)
        );
        assert!(stalled.saturating_sub(before) < 32 * MIB);
        assert_no_panic(&gw);
    });
}

#[test]
fn half_closed_clients_still_get_their_answers() {
    let _serial = serial();
    both_drivers(|driver| {
        let (echo, rogue) = (Upstream::start(), Rogue::start());
        let gw = start(driver, "", echo.addr, rogue.addr);
        let cases: &[(&str, &[u8], usize)] = &[
            ("GET", b"GET /probe/a HTTP/1.1\r\nHost: a\r\n\r\n", 1),
            (
                "POST with a body",
                b"POST /probe/b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                1,
            ),
            (
                "chunked POST",
                b"POST /probe/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                1,
            ),
            (
                "slow upstream",
                b"GET /probe/slow/300 HTTP/1.1\r\nHost: a\r\n\r\n",
                1,
            ),
            (
                "three pipelined",
                b"GET /probe/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /probe/2 HTTP/1.1\r\nHost: a\r\n\r\nGET /probe/3 HTTP/1.1\r\nHost: a\r\n\r\n",
                3,
            ),
        ];
        for (case, raw, answers) in cases {
            let mut s = connect(gw.addr());
            s.write_all(raw).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let (bytes, closed) = read_until_closed(&mut s, Duration::from_secs(5));
            assert!(closed, "{driver:?} {case}: left open after a half-close");
            let mut rest = &bytes[..];
            for i in 0..*answers {
                let r = read_response(&mut rest, false).unwrap_or_else(|e| {
                    panic!(
                        "{driver:?} {case}: answer {i}: {e}: {:?}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                assert_eq!(r.status, 200, "{driver:?} {case}: {}", r.text());
            }
            assert!(rest.is_empty(), "{driver:?} {case}: extra bytes");
        }
        assert_no_panic(&gw);
    });
}

#[test]
fn clients_that_never_read_big_answers_cost_bounded_memory() {
    let _serial = serial();
    both_drivers(|driver| {
        let (echo, rogue) = (Upstream::start(), Rogue::start());
        let gw = start(driver, "timeouts:\n  send_secs: 2\n", echo.addr, rogue.addr);
        let pid = gw.pid().unwrap();
        let before = rss(pid);
        let probe = Probe::start(gw.addr());
        let (clients, size) = (20, 64 * MIB as usize);
        let mut socks: Vec<TcpStream> = (0..clients)
            .map(|_| {
                let mut s = connect(gw.addr());
                write!(s, "GET /rogue/stream/{size} HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_secs(3));
        let stalled = rss(pid);
        for (i, s) in socks.iter_mut().enumerate() {
            let (bytes, closed) = read_until_closed(s, Duration::from_secs(10));
            assert!(closed, "{driver:?}: client {i} never cut off");
            assert!(
                bytes.len() < size,
                "{driver:?}: client {i} got the whole body"
            );
        }
        probe.finish(&format!(
            "{driver:?}: {clients} clients not reading 64 MiB each"
        ));
        println!(
            "{driver:?}: gateway RSS {} before, {} with {clients} stalled 64 MiB answers",
            mib(before),
            mib(stalled)
        );
        assert!(stalled.saturating_sub(before) < 32 * MIB);
        // The route still works, on the upstream that was left hanging.
        let r = common::client::get(gw.addr(), "/rogue/ok");
        assert_eq!(r.status, 200);
        assert_no_panic(&gw);
    });
}

#[test]
fn upstreams_that_reset_or_answer_garbage() {
    let _serial = serial();
    both_drivers(|driver| {
        let (echo, rogue) = (Upstream::start(), Rogue::start());
        let gw = start(driver, "", echo.addr, rogue.addr);
        let pid = gw.pid().unwrap();
        let probe = Probe::start(gw.addr());

        // The head was already forwarded: the client's connection ends early (never a hung
        // request, never a complete-looking body).
        for (path, promised) in [
            ("rst-mid-body", 1_000_000),
            ("rst-mid-chunked", usize::MAX),
            ("bad-chunk-late", usize::MAX),
        ] {
            let started = Instant::now();
            let mut s = connect(gw.addr());
            write!(s, "GET /rogue/{path} HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
            let (bytes, closed) = read_until_closed(&mut s, Duration::from_secs(5));
            assert!(closed, "{driver:?} {path}: client connection left hanging");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{driver:?} {path}"
            );
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "{driver:?} {path}: {text:.200}"
            );
            // The client can tell the body is cut short.
            let body_at = text.find("\r\n\r\n").map_or(0, |i| i + 4);
            if promised != usize::MAX {
                assert!(bytes.len() - body_at < promised, "{driver:?} {path}");
            } else {
                assert!(
                    !text.ends_with("0\r\n\r\n"),
                    "{driver:?} {path}: a complete chunked body"
                );
            }
            assert!(
                read_response(&mut &bytes[..], false).is_err(),
                "{driver:?} {path}"
            );
        }

        // Garbage before any byte reached the client (a chunked body is decoded before the head
        // is flushed): 502 with the gateway's JSON.
        let before = rss(pid);
        for path in [
            "garbage-status",
            "garbage-binary",
            "endless-head",
            "bad-chunk-early",
        ] {
            let r = common::client::get(gw.addr(), &format!("/rogue/{path}"));
            assert_eq!(r.status, 502, "{driver:?} {path}: {}", r.text());
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert!(r.json()["error_msg"].is_string(), "{driver:?} {path}");
        }
        let after = rss(pid);
        assert!(
            after.saturating_sub(before) < 8 * MIB,
            "{driver:?}: a 16 MiB upstream head grew the gateway by {}",
            mib(after.saturating_sub(before))
        );
        let r = common::client::get(gw.addr(), "/rogue/ok");
        assert_eq!(r.status, 200, "{driver:?}: after the rogue answers");
        probe.finish(&format!("{driver:?}: resetting and garbage upstreams"));
        assert_no_panic(&gw);
    });
}
