#!/usr/bin/env python3
"""Propagation of Admin API changes to every worker, measured from outside the gateway.

Run: `cargo build --release && python3 benches/propagation.py [target/release/portcullis] [rounds]`

Starts the gateway (admin mode, default worker count: one per core) in front of a local
upstream, opens 32 keep-alive client connections (SO_REUSEPORT spreads them over every
worker), then repeats: PUT a route to a new uri through the Admin API; as soon as the 2xx
arrives, send one request for the new uri on every connection, one after another. For each
round it records whether each of those first requests already saw the change, and the delay
from the 2xx to the moment each connection got its 200 (for a first request that saw the
change, that delay is just the time taken to reach that connection in the loop).

Printed: how many first requests after the 2xx saw the change (the invariant: all of them),
the delay from the 2xx to the first connection's 200 (one round trip: an upper bound on the
propagation delay), the delay to the last connection's 200 (32 sequential round trips), and
whether any keep-alive connection was dropped by a change (none may be: a drop raises).
"""
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/portcullis"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 300
CONNS = 32
KEY = "propagation-bench-admin-key-0123456789"


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def read_response(sock, buf):
    """Reads one Content-Length response; returns (status, rest of buffer)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        rest += chunk
    return status, rest[length:]


def admin_put(port, path, body):
    s = socket.create_connection(("127.0.0.1", port))
    data = json.dumps(body).encode()
    s.sendall(
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {KEY}\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data
    )
    status, _ = read_response(s, b"")
    s.close()
    return status


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    up_addr = f"127.0.0.1:{up.server_address[1]}"
    work = tempfile.mkdtemp(prefix="portcullis-prop-")
    port, admin_port = free_port(), free_port()
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write(
            f'node_listen: ["127.0.0.1:{port}"]\nssl_listen: []\ndata_dir: data\nlog_level: warn\n'
            f"deployment:\n  admin:\n    admin_listen: \"127.0.0.1:{admin_port}\"\n"
            f"    admin_key: [{{name: a, key: {KEY}, role: admin}}]\n"
        )
    gw = subprocess.Popen([BIN, "-c", os.path.join(work, "config.yaml")],
                          stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                socket.create_connection(("127.0.0.1", admin_port)).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNS)]
        for c in conns:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        bufs = [b""] * CONNS
        saw, total, delays, firsts = 0, 0, [], []
        for i in range(ROUNDS):
            uri = f"/v{i}"
            st = admin_put(admin_port, "/apisix/admin/routes/prop", {
                "uri": uri,
                "upstream": {"type": "roundrobin", "nodes": {up_addr: 1}},
            })
            t0 = time.perf_counter()
            assert st in (200, 201), st
            last = 0.0
            for n, c in enumerate(conns):
                first = True
                while True:
                    c.sendall(f"GET {uri} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                    status, bufs[n] = read_response(c, bufs[n])
                    if first:
                        total += 1
                        saw += status == 200
                        first = False
                    if status == 200:
                        break
                last = time.perf_counter() - t0
                if n == 0:
                    firsts.append(last * 1000)
            delays.append(last * 1000)
        print(f"workers: default (one per core, {os.cpu_count()} here); rounds: {ROUNDS}; "
              f"connections: {CONNS}")
        print(f"first requests after the 2xx that saw the change: {saw}/{total}")
        print(f"2xx -> first connection served the new route (one round trip, an upper bound "
              f"on the propagation delay): p50 {pct(firsts, 50):.3f} ms, p99 {pct(firsts, 99):.3f} ms")
        print(f"2xx -> all {CONNS} connections served the new route (one after another): "
              f"p50 {pct(delays, 50):.2f} ms, p99 {pct(delays, 99):.2f} ms, max {max(delays):.2f} ms")
        print(f"keep-alive connections dropped by changes: 0 of {CONNS}")
    finally:
        gw.terminate()
        gw.wait(timeout=30)
        up.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
