#!/usr/bin/env python3
"""Resident memory per idle keep-alive client connection.

    python3 benches/idle_conns.py target/release/portcullis [CONNECTIONS]   # default 10000

Starts the gateway (2 workers, one route) in front of a small keep-alive upstream in this
process, opens CONNECTIONS client connections, sends one request on each and reads its answer,
so every connection has served a request and now waits for its next one, then reads the
gateway's VmRSS. Prints the resident memory added per connection, and what is left once the
clients close. The open-file limit is raised to the hard limit (the gateway raises its own).
"""

import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

BODY = b'{"hello":"world"}'
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n" + BODY


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def upstream(listener):
    def serve(conn):
        buf = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                conn.sendall(REPLY)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if n + 100 > hard:
        sys.exit(f"idle_conns.py: {n} connections need an open-file limit above {hard}")

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    threading.Thread(target=upstream, args=(listener,), daemon=True).start()
    up = listener.getsockname()[1]

    work = tempfile.mkdtemp()
    port, admin = free_port(), free_port()
    with open(os.path.join(work, "apisix.yaml"), "w") as f:
        f.write(f"routes:\n  - {{ id: r, uri: /hello, upstream: {{ nodes: {{ \"127.0.0.1:{up}\": 1 }} }} }}\n")
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write(
            f'node_listen: ["127.0.0.1:{port}"]\nworkers: 2\ndata_dir: {work}/data\nlog_level: warn\n'
            f'deployment:\n  admin:\n    admin_listen: "127.0.0.1:{admin}"\n'
            f"    admin_key: [{{name: a, key: idle-bench-admin-key-01234, role: admin}}]\n"
            f"standalone: {work}/apisix.yaml\n"
        )
    gw = subprocess.Popen([binary, "-c", os.path.join(work, "config.yaml")])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        request = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n"
        # Warm up each worker's upstream pool and buffers, then measure from there.
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(request)
                s.recv(4096)
        time.sleep(0.5)
        base = rss(gw.pid)
        conns = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            conns.append(s)
        for s in conns:
            buf = b""
            while not buf.endswith(BODY):
                chunk = s.recv(4096)
                if not chunk:
                    sys.exit("idle_conns.py: the gateway closed a connection")
                buf += chunk
        time.sleep(6)  # let the burst's freed memory go back first (see below)
        held = rss(gw.pid)
        for s in conns:
            s.close()
        time.sleep(6)  # workers hand freed memory back every few seconds
        after = rss(gw.pid)
        print(f"{n} idle keep-alive connections, 2 workers")
        print(f"gateway RSS: {base / 2**20:.1f} MiB before, {held / 2**20:.1f} MiB holding them, "
              f"{after / 2**20:.1f} MiB after they closed")
        print(f"per idle connection: {(held - base) / n:.0f} bytes")
    finally:
        gw.terminate()
        gw.wait()


if __name__ == "__main__":
    main()
