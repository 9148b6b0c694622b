#!/usr/bin/env bash
# Load-test suite: Portcullis against nginx as a plain reverse proxy, same upstream, same run.
#
#   benches/load.sh                                  # the whole grid, defaults below
#   SCENARIOS=nginx,none,hs256 ROUNDS=5 benches/load.sh
#   ROUNDS=3 DURATION=10 CONNS=50 THREADS=2 WORKERS=2 benches/load.sh
#
# Starts a fast upstream (an nginx server block answering from memory), nginx as a reverse proxy
# with upstream keep-alive in front of it (the bar: a C proxy doing no authentication at all), and
# two Portcullis processes (release build) in front of the same upstream: the main one, and one
# with the verified-token cache off and 10,000 HS256 consumers loaded. Then it drives every
# scenario with wrk (benches/load.lua), rounds interleaved (each round runs every scenario once,
# so drift on the machine hits all alike), and prints medians: requests/s, p50/p99/p99.9
# latency, the proxy's CPU time per request (user+sys of its processes, from /proc, over the
# run), and each figure as a ratio to nginx measured in the same rounds. It ends with the
# performance targets as ratios. Needs nginx, wrk, curl, openssl, python3
# (apt-get install -y nginx wrk curl openssl python3).
#
# Scenarios (SCENARIOS, comma-separated; default all):
#   upstream          wrk straight at the upstream: the ceiling, no proxy
#   nginx             nginx proxy_pass with upstream keep-alive
#   none              Portcullis, route without plugins
#   limit-count       route with limit-count (key remote_addr, a quota too large to reject)
#   hs256             jwt-auth, one HS256 token
#   rs256 es256 eddsa jwt-auth, one token, served from the per-core verified-token cache
#   rs256-nocache ... es256-nocache eddsa-nocache: the same tokens with the cache off
#   rs256-distinct    1,000 distinct RS256 tokens, cache on (each worker verifies each once)
#   hs256+limit-count jwt-auth HS256 and the consumer's own limit-count quota
#   hs256-10k         10,000 consumers, each request a token of another one (10,000 tokens)
#   nginx-tls         nginx `listen ... ssl` + proxy_pass, one self-signed ECDSA P-256 certificate
#   tls               Portcullis TLS termination on ssl_listen with an ssl object, same certificate
#                     (wrk over https with keep-alive: the cost of TLS records, not of handshakes;
#                     its x-nginx ratio is against nginx-tls)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
ALL=upstream,nginx,none,limit-count,hs256,rs256,es256,eddsa,rs256-nocache,es256-nocache,eddsa-nocache,rs256-distinct,hs256+limit-count,hs256-10k,nginx-tls,tls
SCENARIOS=${SCENARIOS:-$ALL}

here=$(cd "$(dirname "$0")/.." && pwd)
for tool in nginx wrk curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is required (apt-get install -y nginx wrk curl openssl python3)" >&2; exit 1; }
done
IFS=, read -r -a scen <<<"$SCENARIOS"
for s in "${scen[@]}"; do
  case ",$ALL," in *",$s,"*) ;; *) echo "load.sh: unknown scenario $s (known: $ALL)" >&2; exit 1 ;; esac
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
UP_PORT=$(free_port); NGX_PORT=$(free_port)
PC_PORT=$(free_port); PC_ADMIN=$(free_port); PC2_PORT=$(free_port); PC2_ADMIN=$(free_port)
NGX_TLS_PORT=$(free_port); PC_TLS_PORT=$(free_port)

# One certificate for both TLS terminators; wrk sends no usable SNI to 127.0.0.1, so
# Portcullis serves it through fallback_sni (nginx through its only server block).
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench.test -addext "subjectAltName=DNS:bench.test" \
  -keyout "$work/tls/tls.key" -out "$work/tls/tls.crt" 2>/dev/null

# --- upstream and nginx proxy (two nginx processes, so the proxy has its own workers) -------
mkdir -p "$work/up" "$work/ngx"
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
    listen 127.0.0.1:$NGX_TLS_PORT ssl reuseport backlog=4096;
    ssl_certificate $work/tls/tls.crt;
    ssl_certificate_key $work/tls/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets off;
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

# --- keys, tokens and the two Portcullis configurations ------------------------------------
(cd "$here" && cargo build --release --quiet)
PC=$here/target/release/portcullis
k=$work/keys
mkdir -p "$k" "$work/pc" "$work/pc2"
openssl genrsa -out "$k/rs.pem" 2048 2>/dev/null
openssl rsa -in "$k/rs.pem" -pubout -out "$k/rs.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$k/es.pem"
openssl pkey -in "$k/es.pem" -pubout -out "$k/es.pub"
openssl genpkey -algorithm ed25519 -out "$k/ed.pem" 2>/dev/null
openssl pkey -in "$k/ed.pem" -pubout -out "$k/ed.pub"
HS_SECRET=bench-hs256-secret-that-is-long-enough
indent() { sed 's/^/          /' "$1"; }

routes() { # upstream port -> the routes every Portcullis config shares
  cat <<CONF
ssls:
  - id: bench
    snis: [bench.test]
    cert: |
$(sed 's/^/      /' "$work/tls/tls.crt")
    key: |
$(sed 's/^/      /' "$work/tls/tls.key")
routes:
  - id: none
    uri: /*
    upstream: { type: roundrobin, nodes: { "127.0.0.1:$1": 1 } }
  - id: limit-count
    uri: /lc/*
    plugins:
      limit-count: { count: 1000000000, time_window: 3600, key_type: var, key: remote_addr }
    upstream: { type: roundrobin, nodes: { "127.0.0.1:$1": 1 } }
  - id: jwt
    uri: /jwt/*
    plugins: { jwt-auth: {} }
    upstream: { type: roundrobin, nodes: { "127.0.0.1:$1": 1 } }
consumers:
  - username: hs
    plugins: { jwt-auth: { key: hs-key, secret: $HS_SECRET } }
  - username: lc
    plugins:
      jwt-auth: { key: lc-key, secret: $HS_SECRET }
      limit-count: { count: 1000000000, time_window: 3600, key: consumer_name }
  - username: rs
    plugins:
      jwt-auth:
        key: rs-key
        algorithm: RS256
        public_key: |
$(indent "$k/rs.pub")
  - username: es
    plugins:
      jwt-auth:
        key: es-key
        algorithm: ES256
        public_key: |
$(indent "$k/es.pub")
  - username: ed
    plugins:
      jwt-auth:
        key: ed-key
        algorithm: EdDSA
        public_key: |
$(indent "$k/ed.pub")
CONF
}
routes "$UP_PORT" > "$work/pc/apisix.yaml"
routes "$UP_PORT" > "$work/pc2/apisix.yaml"
# 10,000 HS256 consumers and one token each, signed here (HMAC-SHA256 is in Python's stdlib).
python3 - "$work/pc2/apisix.yaml" "$work/tokens-10k.txt" <<'PY'
import base64, hashlib, hmac, json, sys, time
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
exp = int(time.time()) + 86400
with open(sys.argv[1], "a") as conf, open(sys.argv[2], "w") as toks:
    for i in range(10000):
        key, secret = f"k{i:05}", f"bench-secret-{i:05}-long-enough-for-hs256"
        conf.write(f"  - username: c{i:05}\n    plugins: {{ jwt-auth: {{ key: {key}, secret: {secret} }} }}\n")
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps({"key": key, "exp": exp}).encode())
        sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
        toks.write(f"{head}.{body}.{sig}\n")
PY
node_config() { # port admin_port dir cache_size [ssl_port]
  cat <<CONF
node_listen: ["127.0.0.1:$1"]
ssl_listen: [$([ -n "${5:-}" ] && echo "\"127.0.0.1:$5\"")]
fallback_sni: bench.test
workers: $WORKERS
data_dir: $3/data
log_level: warn
jwt_cache_size: $4
deployment:
  admin:
    admin_listen: "127.0.0.1:$2"
    admin_key: [{name: admin, key: bench-admin-key-0123456789, role: admin}]
standalone: $3/apisix.yaml
CONF
}
node_config "$PC_PORT" "$PC_ADMIN" "$work/pc" 10000 "$PC_TLS_PORT" > "$work/pc/config.yaml"
node_config "$PC2_PORT" "$PC2_ADMIN" "$work/pc2" 0 > "$work/pc2/config.yaml"

sign() { "$PC" token sign --expires-in 86400 "$@"; }
sign --secret "$HS_SECRET" --claim key=hs-key > "$work/tok-hs256"
sign --secret "$HS_SECRET" --claim key=lc-key > "$work/tok-lc"
sign --alg RS256 --private-key "$k/rs.pem" --claim key=rs-key > "$work/tok-rs256"
sign --alg ES256 --private-key "$k/es.pem" --claim key=es-key > "$work/tok-es256"
sign --alg EdDSA --private-key "$k/ed.pem" --claim key=ed-key > "$work/tok-eddsa"
if [[ ",$SCENARIOS," == *",rs256-distinct,"* ]]; then
  for i in $(seq 1000); do sign --alg RS256 --private-key "$k/rs.pem" --claim key=rs-key --claim "jti=$i"; done > "$work/tok-rs256-distinct"
fi

"$PC" -c "$work/pc/config.yaml" & PC_PID=$!; pids+=($PC_PID)
"$PC" -c "$work/pc2/config.yaml" & PC2_PID=$!; pids+=($PC2_PID)

wait_up() { for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$1/hello" && return 0; sleep 0.1; done; echo "load.sh: port $1 did not come up" >&2; exit 1; }
wait_up "$UP_PORT"; wait_up "$NGX_PORT"; wait_up "$PC_PORT"; wait_up "$PC2_PORT"
NGX_PIDS=$(pgrep -P "$(cat "$work/ngx/nginx.pid")" | tr '\n' ' ')

# scenario -> "url-base path tokens-file proxy-pids"
spec() {
  case $1 in
    nginx-tls) echo "https://127.0.0.1:$NGX_TLS_PORT /hello - $NGX_PIDS" ;;
    tls) echo "https://127.0.0.1:$PC_TLS_PORT /hello - $PC_PID" ;;
    upstream) echo "http://127.0.0.1:$UP_PORT /hello - -" ;;
    nginx) echo "http://127.0.0.1:$NGX_PORT /hello - $NGX_PIDS" ;;
    none) echo "http://127.0.0.1:$PC_PORT /hello - $PC_PID" ;;
    limit-count) echo "http://127.0.0.1:$PC_PORT /lc/x - $PC_PID" ;;
    hs256 | rs256 | es256 | eddsa | rs256-distinct) echo "http://127.0.0.1:$PC_PORT /jwt/x $work/tok-$1 $PC_PID" ;;
    *-nocache) echo "http://127.0.0.1:$PC2_PORT /jwt/x $work/tok-${1%-nocache} $PC2_PID" ;;
    hs256+limit-count) echo "http://127.0.0.1:$PC_PORT /jwt/x $work/tok-lc $PC_PID" ;;
    hs256-10k) echo "http://127.0.0.1:$PC2_PORT /jwt/x $work/tokens-10k.txt $PC2_PID" ;;
  esac
}
# Every scenario's first token must pass before anything is measured.
for s in "${scen[@]}"; do
  read -r base path toks _ <<<"$(spec "$s")"
  hdr=()
  [ "$toks" = - ] || hdr=(-H "Authorization: $(head -n 1 "$toks")")
  code=$(curl -sk -o /dev/null -w '%{http_code}' "${hdr[@]}" "$base$path")
  [ "$code" = 200 ] || { echo "load.sh: scenario $s answered $code" >&2; exit 1; }
done

cpu_ticks() { # pids... -> utime+stime in clock ticks
  local t=0 p
  for p in "$@"; do
    [ "$p" = - ] && continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)
run() { # scenario -> "rps p50ms p99ms p999ms cpu_us_per_req"
  local base path toks pidlist out before after
  read -r base path toks pidlist <<<"$(spec "$1")"
  [ "$toks" = - ] && toks=""
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pidlist)
  out=$(LOAD_TOKENS=$toks wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$here/benches/load.lua" "$base$path")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pidlist)
  local rps res
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  res=$(grep '^RESULT' <<<"$out")
  read -r _ reqs errs p50 p99 p999 <<<"$res"
  [ "$errs" = 0 ] || echo "  warning: $1: $errs errors" >&2
  awk -v r="$rps" -v a="$p50" -v b="$p99" -v c="$p999" -v t=$((after - before)) -v n="$reqs" -v hz="$HZ" -v p="$pidlist" \
    'BEGIN { cpu = (p == "-") ? "-" : sprintf("%.2f", t * 1e6 / hz / n); printf "%s %.3f %.3f %.3f %s\n", r, a/1000, b/1000, c/1000, cpu }'
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(uname -r); wrk -t$THREADS -c$CONNS -d${DURATION}s; $WORKERS workers each; $ROUNDS rounds"
for s in "${scen[@]}"; do
  read -r base _ <<<"$(spec "$s")"
  wrk -t1 -c4 -d1s "$base/hello" >/dev/null   # warm-up
  : > "$work/res-$s"
done
for r in $(seq "$ROUNDS"); do
  for s in "${scen[@]}"; do
    v=$(run "$s"); printf 'round %d %-18s %s\n' "$r" "$s" "$v"; echo "$v" >> "$work/res-$s"
  done
done

col() { awk -v c="$1" '$c != "-" {print $c}' "$work/res-$2" | median; }
echo
printf '%-18s %10s %8s %8s %8s %10s %9s %9s\n' "scenario (median)" "req/s" "p50 ms" "p99 ms" "p99.9 ms" "cpu us/req" "x nginx" "p99/ngx"
declare -A RPS
for s in "${scen[@]}"; do
  # Each figure against nginx in the same rounds: TLS against nginx's TLS, the rest plain.
  ref=nginx; [ "$s" = tls ] && ref=nginx-tls
  nr=""; n99=""
  if [ -s "$work/res-$ref" ]; then nr=$(col 1 "$ref"); n99=$(col 3 "$ref"); fi
  rr=$(col 1 "$s"); RPS[$s]=$rr
  awk -v s="$s" -v r="$rr" -v a="$(col 2 "$s")" -v b="$(col 3 "$s")" -v c="$(col 4 "$s")" -v u="$(col 5 "$s")" -v nr="$nr" -v n99="$n99" \
    'BEGIN { x = (nr == "") ? "-" : sprintf("%.2fx", r / nr); y = (n99 == "") ? "-" : sprintf("%.2fx", b / n99);
             printf "%-18s %10.0f %8.3f %8.3f %8.3f %10s %9s %9s\n", s, r, a, b, c, u, x, y }'
done
ratio() { # label a b target
  [ -n "${RPS[$2]:-}" ] && [ -n "${RPS[$3]:-}" ] || return 0
  awk -v l="$1" -v a="${RPS[$2]}" -v b="${RPS[$3]}" -v t="$4" \
    'BEGIN { printf "%-40s %6.2fx  (target >= %s) %s\n", l, a / b, t, (a / b >= t) ? "met" : "NOT met" }'
}
echo
ratio "no plugin / nginx" none nginx 1.5
ratio "jwt-auth HS256 / nginx" hs256 nginx 1.3
ratio "jwt-auth HS256 / no plugin" hs256 none 0.9
ratio "RS256 cached / HS256" rs256 hs256 0.9
ratio "jwt-auth + limit-count / jwt-auth" hs256+limit-count hs256 0.95
ratio "limit-count / no plugin" limit-count none 0.95
ratio "TLS termination / nginx ssl" tls nginx-tls 1.0
