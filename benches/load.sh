#!/usr/bin/env bash
# Load-test harness: Portcullis vs nginx as a plain reverse proxy, same upstream, same run.
#
#   benches/load.sh                      # defaults below
#   ROUNDS=5 DURATION=10 CONNS=64 WORKERS=2 benches/load.sh
#
# Starts a fast upstream (an nginx server block answering from memory), nginx as a reverse proxy
# with upstream keep-alive in front of it, and Portcullis (release build) with one route in front
# of the same upstream. Then drives both with wrk, alternating rounds (nginx, Portcullis, nginx,
# ...) so drift on the machine hits both alike, and prints the medians: requests/s, p50 and p99
# latency, and Portcullis/nginx ratios. Needs nginx and wrk (apt-get install -y nginx wrk).
#
# JWT=1 adds two Portcullis scenarios in the same rounds: a jwt-auth route with an HS256
# credential and one with an RS256 credential (served from the per-core verified-token cache
# after the first request on each worker), and a third with HS256 plus a consumer limit-count
# quota too large to reject; it prints HS256 / no-plugin, RS256 / HS256 and limit-count / HS256.
#
# TLS=1 adds TLS termination in the same rounds: nginx `listen ... ssl` proxying to the same
# upstream, and Portcullis on ssl_listen with an ssl object, both serving one self-signed ECDSA
# P-256 certificate made here with openssl; wrk drives both over https with keep-alive (so the
# figures are mostly record encryption, one handshake per connection). It prints
# Portcullis TLS / nginx ssl.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
PATH_UNDER_TEST=${PATH_UNDER_TEST:-/hello}
JWT=${JWT:-0}
TLS=${TLS:-0}

here=$(cd "$(dirname "$0")/.." && pwd)
for tool in nginx wrk curl; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is required (apt-get install -y nginx wrk curl)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port); NGX_PORT=$(free_port); PC_PORT=$(free_port); ADMIN_PORT=$(free_port)
NGX_TLS_PORT=$(free_port); PC_TLS_PORT=$(free_port)

# --- upstream and nginx proxy (two nginx processes, so the proxy has its own workers) -------
mkdir -p "$work/up" "$work/ngx"
ngx_tls=""
if [ "$TLS" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=bench.test -addext "subjectAltName=DNS:bench.test" \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
  ngx_tls="listen 127.0.0.1:$NGX_TLS_PORT ssl reuseport backlog=4096;
    ssl_certificate $work/tls.crt;
    ssl_certificate_key $work/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets off;"
fi
cat > "$work/up/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/up/nginx.pid;
error_log $work/up/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
    location / { default_type application/json; return 200 '{"hello":"world"}'; }
  }
}
CONF
cat > "$work/ngx/nginx.conf" <<CONF
worker_processes $WORKERS;
daemon off;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$UP_PORT; keepalive 320; }
  server {
    listen 127.0.0.1:$NGX_PORT reuseport backlog=4096;
    $ngx_tls
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
nginx -p "$work/up" -c "$work/up/nginx.conf" & pids+=($!)
nginx -p "$work/ngx" -c "$work/ngx/nginx.conf" & pids+=($!)

# --- Portcullis ---------------------------------------------------------------------------
(cd "$here" && cargo build --release --quiet)
mkdir -p "$work/pc"
cat > "$work/pc/config.yaml" <<CONF
node_listen: ["127.0.0.1:$PC_PORT"]
ssl_listen: [$([ "$TLS" = 1 ] && echo "\"127.0.0.1:$PC_TLS_PORT\"")]
fallback_sni: bench.test
workers: $WORKERS
data_dir: $work/pc/data
log_level: warn
deployment:
  admin:
    admin_listen: "127.0.0.1:$ADMIN_PORT"
    admin_key: [{name: admin, key: bench-admin-key-0123456789, role: admin}]
standalone: $work/pc/apisix.yaml
CONF
cat > "$work/pc/apisix.yaml" <<CONF
routes:
  - id: bench
    uri: /*
    upstream:
      type: roundrobin
      nodes: { "127.0.0.1:$UP_PORT": 1 }
CONF
if [ "$TLS" = 1 ]; then
  # First in the file: the sections below (JWT=1) continue the routes list.
  { echo "ssls:"; echo "  - id: bench"; echo "    snis: [bench.test]"
    echo "    cert: |"; sed 's/^/      /' "$work/tls.crt"
    echo "    key: |"; sed 's/^/      /' "$work/tls.key"
    cat "$work/pc/apisix.yaml"; } > "$work/pc/apisix.yaml.new"
  mv "$work/pc/apisix.yaml.new" "$work/pc/apisix.yaml"
fi
PC=$here/target/release/portcullis
if [ "$JWT" = 1 ]; then
  openssl genrsa -out "$work/pc/rsa.pem" 2048 2>/dev/null
  openssl rsa -in "$work/pc/rsa.pem" -pubout -out "$work/pc/rsa.pub.pem" 2>/dev/null
  cat >> "$work/pc/apisix.yaml" <<CONF
  - id: jwt-hs
    uri: /jwt-hs/*
    plugins: { jwt-auth: {} }
    upstream: { type: roundrobin, nodes: { "127.0.0.1:$UP_PORT": 1 } }
  - id: jwt-rs
    uri: /jwt-rs/*
    plugins: { jwt-auth: {} }
    upstream: { type: roundrobin, nodes: { "127.0.0.1:$UP_PORT": 1 } }
  - id: jwt-lc
    uri: /jwt-lc/*
    plugins: { jwt-auth: {} }
    upstream: { type: roundrobin, nodes: { "127.0.0.1:$UP_PORT": 1 } }
consumers:
  - username: lc
    plugins:
      jwt-auth: { key: lc-key, secret: bench-hs256-secret-that-is-long-enough }
      limit-count: { count: 1000000000, time_window: 3600, key: consumer_name }
  - username: hs
    plugins: { jwt-auth: { key: hs-key, secret: bench-hs256-secret-that-is-long-enough } }
  - username: rs
    plugins:
      jwt-auth:
        key: rs-key
        algorithm: RS256
        public_key: |
$(sed 's/^/          /' "$work/pc/rsa.pub.pem")
CONF
  HS_TOKEN=$("$PC" token sign --secret bench-hs256-secret-that-is-long-enough --claim key=hs-key --expires-in 86400)
  RS_TOKEN=$("$PC" token sign --alg RS256 --private-key "$work/pc/rsa.pem" --claim key=rs-key --expires-in 86400)
  LC_TOKEN=$("$PC" token sign --secret bench-hs256-secret-that-is-long-enough --claim key=lc-key --expires-in 86400)
fi
"$PC" -c "$work/pc/config.yaml" & pids+=($!)

wait_up() { for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$1$PATH_UNDER_TEST" && return 0; sleep 0.1; done; echo "load.sh: port $1 did not come up" >&2; exit 1; }
wait_up "$UP_PORT"; wait_up "$NGX_PORT"; wait_up "$PC_PORT"
if [ "$TLS" = 1 ]; then
  for port in "$NGX_TLS_PORT" "$PC_TLS_PORT"; do
    code=$(curl -sk -o /dev/null -w '%{http_code}' --resolve "bench.test:$port:127.0.0.1" "https://bench.test:$port$PATH_UNDER_TEST")
    [ "$code" = 200 ] || { echo "load.sh: https on $port answered $code" >&2; exit 1; }
  done
fi

# --- rounds -------------------------------------------------------------------------------
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; printf "%.3f", v}'; }
run_wrk() { # port [path [header]] -> "rps p50ms p99ms"; SCHEME=https for TLS
  local path=${2:-$PATH_UNDER_TEST} out url="${SCHEME:-http}://127.0.0.1:$1${2:-$PATH_UNDER_TEST}"
  if [ -n "${3:-}" ]; then
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "$3" "$url")
  else
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url")
  fi
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -z "$errs" ] || echo "  warning: $errs" >&2
  echo "$rps $p50 $p99"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(uname -r); wrk -t$THREADS -c$CONNS -d${DURATION}s; $WORKERS workers each; $ROUNDS rounds"
wrk -t1 -c4 -d1s "http://127.0.0.1:$NGX_PORT$PATH_UNDER_TEST" >/dev/null   # warm-up
wrk -t1 -c4 -d1s "http://127.0.0.1:$PC_PORT$PATH_UNDER_TEST" >/dev/null
: > "$work/ngx.txt"; : > "$work/pc.txt"; : > "$work/hs.txt"; : > "$work/rs.txt"; : > "$work/lc.txt"
: > "$work/ngxtls.txt"; : > "$work/pctls.txt"
if [ "$JWT" = 1 ]; then
  for h in "$HS_TOKEN:/jwt-hs/x" "$RS_TOKEN:/jwt-rs/x" "$LC_TOKEN:/jwt-lc/x"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: ${h%%:*}" "http://127.0.0.1:$PC_PORT${h#*:}")
    [ "$code" = 200 ] || { echo "load.sh: ${h#*:} answered $code with its token" >&2; exit 1; }
  done
fi
for r in $(seq "$ROUNDS"); do
  n=$(run_wrk "$NGX_PORT"); echo "round $r nginx      $n"; echo "$n" >> "$work/ngx.txt"
  p=$(run_wrk "$PC_PORT");  echo "round $r portcullis $p"; echo "$p" >> "$work/pc.txt"
  if [ "$JWT" = 1 ]; then
    h=$(run_wrk "$PC_PORT" /jwt-hs/x "Authorization: $HS_TOKEN"); echo "round $r pc jwt HS256 $h"; echo "$h" >> "$work/hs.txt"
    s=$(run_wrk "$PC_PORT" /jwt-rs/x "Authorization: $RS_TOKEN"); echo "round $r pc jwt RS256 $s"; echo "$s" >> "$work/rs.txt"
    l=$(run_wrk "$PC_PORT" /jwt-lc/x "Authorization: $LC_TOKEN"); echo "round $r pc jwt+limit $l"; echo "$l" >> "$work/lc.txt"
  fi
  if [ "$TLS" = 1 ]; then
    n=$(SCHEME=https run_wrk "$NGX_TLS_PORT"); echo "round $r nginx ssl  $n"; echo "$n" >> "$work/ngxtls.txt"
    p=$(SCHEME=https run_wrk "$PC_TLS_PORT");  echo "round $r pc tls     $p"; echo "$p" >> "$work/pctls.txt"
  fi
done

col() { awk -v c="$1" '{print $c}' "$2" | median; }
nr=$(col 1 "$work/ngx.txt"); n50=$(col 2 "$work/ngx.txt"); n99=$(col 3 "$work/ngx.txt")
pr=$(col 1 "$work/pc.txt");  p50=$(col 2 "$work/pc.txt");  p99=$(col 3 "$work/pc.txt")
echo
printf '%-28s %12s %10s %10s\n' "scenario (medians)" "requests/s" "p50 ms" "p99 ms"
printf '%-28s %12.0f %10.3f %10.3f\n' "nginx proxy_pass" "$nr" "$n50" "$n99"
printf '%-28s %12.0f %10.3f %10.3f\n' "portcullis, no plugins" "$pr" "$p50" "$p99"
if [ "$JWT" = 1 ]; then
  hr=$(col 1 "$work/hs.txt"); h50=$(col 2 "$work/hs.txt"); h99=$(col 3 "$work/hs.txt")
  sr=$(col 1 "$work/rs.txt"); s50=$(col 2 "$work/rs.txt"); s99=$(col 3 "$work/rs.txt")
  printf '%-28s %12.0f %10.3f %10.3f\n' "portcullis, jwt-auth HS256" "$hr" "$h50" "$h99"
  printf '%-28s %12.0f %10.3f %10.3f\n' "portcullis, jwt-auth RS256" "$sr" "$s50" "$s99"
  lr=$(col 1 "$work/lc.txt"); l50=$(col 2 "$work/lc.txt"); l99=$(col 3 "$work/lc.txt")
  printf '%-28s %12.0f %10.3f %10.3f\n' "portcullis, HS256+limit-count" "$lr" "$l50" "$l99"
fi
if [ "$TLS" = 1 ]; then
  tnr=$(col 1 "$work/ngxtls.txt"); tn50=$(col 2 "$work/ngxtls.txt"); tn99=$(col 3 "$work/ngxtls.txt")
  tpr=$(col 1 "$work/pctls.txt");  tp50=$(col 2 "$work/pctls.txt");  tp99=$(col 3 "$work/pctls.txt")
  printf '%-28s %12.0f %10.3f %10.3f\n' "nginx ssl proxy_pass" "$tnr" "$tn50" "$tn99"
  printf '%-28s %12.0f %10.3f %10.3f\n' "portcullis, TLS" "$tpr" "$tp50" "$tp99"
fi
awk -v a="$pr" -v b="$nr" -v c="$p99" -v d="$n99" 'BEGIN {printf "ratio portcullis/nginx: %.2fx requests/s, p99 %.2fx\n", a/b, c/d}'
if [ "$TLS" = 1 ]; then
  awk -v a="$tpr" -v b="$tnr" -v c="$tp99" -v d="$tn99" 'BEGIN {printf "ratio portcullis TLS / nginx ssl: %.2fx requests/s, p99 %.2fx\n", a/b, c/d}'
fi
if [ "$JWT" = 1 ]; then
  awk -v a="$hr" -v b="$pr" 'BEGIN {printf "ratio jwt-auth HS256 / no plugin: %.2fx requests/s\n", a/b}'
  awk -v a="$sr" -v b="$hr" 'BEGIN {printf "ratio jwt-auth RS256 (cached) / HS256: %.2fx requests/s\n", a/b}'
  awk -v a="$lr" -v b="$hr" 'BEGIN {printf "ratio HS256 + limit-count / HS256: %.2fx requests/s\n", a/b}'
fi
