#!/usr/bin/env bash
# bench.sh is `make bench`: routied against a tuned nginx and against no proxy at all, then
# routied switching between two apps under keep-alive load. It is a benchmark, not a test.
#
# It builds routied, the demo app, the demo load tool and bench/switchbench into a temporary
# directory, starts two demo apps (blue and green), routied (HTTP and HTTPS, self-signed) and
# nginx (same certificate, TLS 1.3, upstream keepalive 256, 2 workers, no access log), all on
# 127.0.0.1, and measures:
#
#  1. throughput and latency with wrk (2 threads, 64 keep-alive connections) through routied,
#     through nginx and straight to the app, over HTTP and HTTPS (the app has no TLS, so
#     "direct" is HTTP only). The runs are interleaved, BENCH_ROUNDS rounds of
#     BENCH_SECONDS each, so machine noise hits every setup alike; the load generator shares
#     the machine's cores with the proxy, the same for every setup;
#  2. routied's memory: VmRSS after start and a few requests, VmHWM (peak) under load;
#  3. BENCH_SWITCHES switches between blue and green under 64 keep-alive connections
#     (bench/switchbench): failed requests, how soon the new app answers, and routied's
#     connections left to the old app after its drain, by its status and by ss(8).
#
# It ends with a summary block for the README. Every process it starts is stopped on exit,
# however it exits; logs go to a mktemp -d directory, removed unless the bench failed or
# BENCH_KEEP=1.
#
# Usage (from anywhere):
#   bench/bench.sh
#   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_SWITCHES=20 BENCH_PORT_BASE=28080 bench/bench.sh
#
# It needs wrk and nginx (Debian: apt-get install -y wrk nginx), Go, and ss (iproute2); it
# installs nothing. Ports BENCH_PORT_BASE+1 to +6 (default 18081-18086) must be free.
#
# Exit status: 0 when everything ran, no request failed and no connection to an old target
# was left; 1 otherwise. Throughput and memory below their targets are reported, not failed:
# they depend on the machine.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly seconds=${BENCH_SECONDS:-8}
readonly rounds=${BENCH_ROUNDS:-2}
readonly switches=${BENCH_SWITCHES:-10}
readonly base=${BENCH_PORT_BASE:-18080}
readonly threads=2 connections=64 warmup=2
# Targets from the issue: routied/nginx throughput, and routied's memory in MiB.
readonly target_ratio=0.6 target_idle_mib=12 target_peak_mib=25

readonly script=bench
# shellcheck source=demo/procs.sh
source demo/procs.sh

for v in seconds rounds switches base; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "BENCH_${v^^}=${!v}: want a positive whole number"
done
((base + 6 <= 65535)) || die "BENCH_PORT_BASE=$base: the ports up to $((base + 6)) must exist"

missing=()
for tool in wrk nginx; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]} > 0)); then
	printf 'bench needs wrk and nginx: apt-get install -y wrk nginx\n' >&2
	printf '(missing: %s; nothing was installed)\n' "${missing[*]}" >&2
	exit 1
fi
command -v go >/dev/null || die "go is not on PATH; install Go 1.26 or later"
command -v ss >/dev/null || die "ss is not on PATH; it counts routied's connections: apt-get install -y iproute2"

readonly blue_port=$((base + 1)) green_port=$((base + 2))
readonly routied_http=$((base + 3)) routied_https=$((base + 4))
readonly nginx_http=$((base + 5)) nginx_https=$((base + 6))

busy=()
for port in "$blue_port" "$green_port" "$routied_http" "$routied_https" "$nginx_http" "$nginx_https"; do
	if listening "$port"; then busy+=("$port"); fi
done
((${#busy[@]} == 0)) || die "ports ${busy[*]} are busy; free them (ss -ltnp shows who holds them) or set BENCH_PORT_BASE"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/routie-bench.XXXXXX")
readonly tmp logdir=$tmp
keep=${BENCH_KEEP:-0}

cleanup() {
	local status=$? i
	stop_all >/dev/null
	# nginx's master stops its workers; a worker left behind (master killed) is stopped too.
	for i in "${nginx_workers[@]}"; do
		kill -KILL "$i" 2>/dev/null || true
	done
	if ((status != 0)) || [[ $keep == 1 ]]; then
		printf 'bench: logs are in %s\n' "$tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# answers URL [N]: whether N (default 1) GETs of URL are all answered 2xx, on one connection.
answers() {
	"$tmp/bin/load" -url "$1" -insecure -c 1 -n "${2:-1}" -d 10s -timeout 2s -by-header ""
}

# proc_kib PID FIELD: a VmRSS/VmHWM-style field of /proc/PID/status, in KiB.
proc_kib() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# cpu_ticks PID...: user+system CPU time of the processes so far, in clock ticks.
cpu_ticks() {
	local total=0 pid stat
	local -a f
	for pid; do
		stat=$(<"/proc/$pid/stat") || continue
		read -r -a f <<<"${stat##*) }" # after "pid (comm) ": f[11] is utime, f[12] stime
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}
clk_tck=$(getconf CLK_TCK)
readonly clk_tck

say "building routied, the demo app and load tool, and switchbench into $tmp/bin"
mkdir -p "$tmp/bin" "$tmp/state" "$tmp/nginx"
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tmp/bin/" ./cmd/routied ./demo/app ./demo/load ./bench/switchbench

say "starting blue on 127.0.0.1:$blue_port and green on 127.0.0.1:$green_port"
start blue "$tmp/bin/app" -name blue -listen "127.0.0.1:$blue_port"
wait_for blue "${pids[-1]}" "$tmp/blue.log" 10 answers "http://127.0.0.1:$blue_port/actuator/health"
start green "$tmp/bin/app" -name green -listen "127.0.0.1:$green_port"
wait_for green "${pids[-1]}" "$tmp/green.log" 10 answers "http://127.0.0.1:$green_port/actuator/health"

# One passing probe gates a switch, so the switch timings below measure routied's swap and
# not a probe interval. The access log is off, as nginx's is.
cat >"$tmp/routie.toml" <<EOF
[listen]
http = "127.0.0.1:$routied_http"
https = "127.0.0.1:$routied_https"

[tls]
mode = "self-signed"
domains = ["localhost", "127.0.0.1"]
redirect = false

[upstream]
host = "127.0.0.1"
initial = $blue_port

[health]
interval = "1s"
passes = 1
wait = "10s"

[control]
socket = "$tmp/control.sock"
mode = "0600"

[state]
dir = "$tmp/state"

[log]
format = "json"
access = false
EOF

say "starting routied on 127.0.0.1:$routied_http (HTTP) and :$routied_https (HTTPS)"
start routied "$tmp/bin/routied" -config "$tmp/routie.toml"
routied_pid=${pids[-1]}
wait_for routied "$routied_pid" "$tmp/routied.log" 30 answers "https://127.0.0.1:$routied_https/"
answers "http://127.0.0.1:$routied_http/" 10 >/dev/null || die "routied's HTTP listener did not answer 2xx; see $tmp/routied.log"
answers "https://127.0.0.1:$routied_https/" 10 >/dev/null || die "routied's HTTPS listener did not answer 2xx; see $tmp/routied.log"
sleep 1
idle_kib=$(proc_kib "$routied_pid" VmRSS)

cert=$tmp/state/tls/self-signed.crt
key=$tmp/state/tls/self-signed.key
[[ -f $cert && -f $key ]] || die "routied's self-signed certificate is not at $cert and $key; nginx needs them"

# nginx tuned for proxying to one keep-alive upstream. keepalive_requests is raised on both
# sides because Go's server and transport have no such limit: with nginx's default of 1000
# it would reconnect (and over HTTPS handshake again) every 1000 requests.
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;

    upstream app {
        server 127.0.0.1:$blue_port;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$nginx_http;
        listen 127.0.0.1:$nginx_https ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.3;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # What routied sends too: the client's Host and the X-Forwarded-* headers.
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
nginx -t -q -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx-t.log" 2>&1 ||
	{ cat "$tmp/nginx-t.log" >&2; die "nginx refused the bench's config; see above"; }

say "starting nginx on 127.0.0.1:$nginx_http (HTTP) and :$nginx_https (HTTPS)"
start nginx nginx -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
nginx_pid=${pids[-1]}
wait_for nginx "$nginx_pid" "$tmp/nginx/error.log" 10 answers "https://127.0.0.1:$nginx_https/"
answers "http://127.0.0.1:$nginx_http/" >/dev/null || die "nginx's HTTP listener did not answer 2xx; see $tmp/nginx/error.log"
deadline=$((SECONDS + 5))
while :; do
	# The file has no final newline, so read reports EOF even when it read the pids.
	read -r -a nginx_workers <"/proc/$nginx_pid/task/$nginx_pid/children" || true
	((${#nginx_workers[@]} >= 2 || SECONDS >= deadline)) && break
	sleep 0.1
done
((${#nginx_workers[@]} == 2)) || die "nginx started ${#nginx_workers[@]} worker processes, not 2"

if command -v openssl >/dev/null; then
	for port in "$routied_https" "$nginx_https"; do
		tls_info=$(openssl s_client -connect "127.0.0.1:$port" -brief </dev/null 2>&1 |
			awk -F': ' '/^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 } END { print p, c }')
		case $port in
		"$routied_https") say "TLS to routied: $tls_info" ;;
		*) say "TLS to nginx:   $tls_info" ;;
		esac
	done
fi

# The setups: NAME PROTO URL, then the pids whose CPU time counts as the proxy's.
results=$tmp/results.txt
: >"$results"

# measure SETUP PROTO URL DURATION RECORD PID...: one wrk run; RECORD=1 appends it to the
# results (SETUP PROTO req/s p50_us p99_us errors cpu_us_per_request).
measure() {
	local setup=$1 proto=$2 url=$3 duration=$4 record=$5
	shift 5
	local before after out line requests duration_us p50 p99 errors rps cpu
	before=$(cpu_ticks "$@")
	if ! out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s bench/report.lua "$url" 2>&1); then
		printf '%s\n' "$out" >&2
		die "wrk against $setup $proto ($url) failed; its output is above"
	fi
	after=$(cpu_ticks "$@")
	printf '### %s %s %ss\n%s\n' "$setup" "$proto" "$duration" "$out" >>"$tmp/wrk.log"
	((record)) || return 0
	line=$(grep '^WRK ' <<<"$out") || die "wrk printed no WRK line (is bench/report.lua intact?); see $tmp/wrk.log"
	requests=$(sed -E 's/.* requests=([0-9]+).*/\1/' <<<"$line")
	duration_us=$(sed -E 's/.* duration_us=([0-9]+).*/\1/' <<<"$line")
	p50=$(sed -E 's/.* p50_us=([0-9]+).*/\1/' <<<"$line")
	p99=$(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")
	errors=$(sed -E 's/.* errors=([0-9]+).*/\1/' <<<"$line")
	rps=$(awk -v n="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
	cpu=-
	if (($# > 0)); then
		cpu=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
	fi
	printf '%s %s %s %s %s %s %s\n' "$setup" "$proto" "$rps" "$p50" "$p99" "$errors" "$cpu" >>"$results"
	printf '    %-8s %-5s %8s req/s  p50 %6.2f ms  p99 %6.2f ms  errors %s  proxy CPU %s us/req\n' \
		"$setup" "$proto" "$rps" "$(awk -v u="$p50" 'BEGIN { print u / 1000 }')" \
		"$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" "$errors" "$cpu"
}

readonly url_routied_http=http://127.0.0.1:$routied_http/
readonly url_routied_https=https://127.0.0.1:$routied_https/
readonly url_nginx_http=http://127.0.0.1:$nginx_http/
readonly url_nginx_https=https://127.0.0.1:$nginx_https/
readonly url_direct=http://127.0.0.1:$blue_port/

# setup N RECORD DURATION: runs setup N (0-4) of the interleaved cycle.
setup() {
	local record=$2 duration=$3
	case $1 in
	0) measure routied http "$url_routied_http" "$duration" "$record" "$routied_pid" ;;
	1) measure nginx http "$url_nginx_http" "$duration" "$record" "${nginx_workers[@]}" ;;
	2) measure direct http "$url_direct" "$duration" "$record" ;;
	3) measure routied https "$url_routied_https" "$duration" "$record" "$routied_pid" ;;
	4) measure nginx https "$url_nginx_https" "$duration" "$record" "${nginx_workers[@]}" ;;
	esac
}

say "warming up: ${warmup}s of wrk on each setup (not counted)"
for i in 0 1 2 3 4; do
	setup "$i" 0 "$warmup"
done

say "measuring: $rounds rounds of ${seconds}s per setup, interleaved; wrk -t$threads -c$connections --latency"
for ((r = 1; r <= rounds; r++)); do
	printf '  round %d\n' "$r"
	# Every other round runs the cycle backwards, so no setup always follows the same one.
	if ((r % 2)); then order=(0 1 2 3 4); else order=(4 3 2 1 0); fi
	for i in "${order[@]}"; do
		setup "$i" 1 "$seconds"
	done
done
peak_load_kib=$(proc_kib "$routied_pid" VmHWM)

# nginx is done: stop it, so that its keep-alive connections to blue are not counted as
# routied's below and its workers take no CPU from the switches.
stop "$nginx_pid"
for ((i = 0; i < ${#pids[@]}; i++)); do
	if [[ ${pids[i]} == "$nginx_pid" ]]; then pids[i]=""; fi # reaped: cleanup must not signal a reused pid
done
nginx_workers=()

say "switching blue <-> green $switches times under $connections keep-alive connections over HTTPS"
switch_out=$tmp/switch.txt
switch_status=0
"$tmp/bin/switchbench" -url "$url_routied_https" -socket "$tmp/control.sock" \
	-targets "$blue_port=blue,$green_port=green" -c "$connections" -switches "$switches" \
	-pid "$routied_pid" -limit 120s >"$switch_out" 2>&1 || switch_status=$?
sed 's/^/    /' "$switch_out"
grep -q '^RESULT ' "$switch_out" || die "switchbench did not finish (exit $switch_status); its output is above"
peak_kib=$(proc_kib "$routied_pid" VmHWM)
end_kib=$(proc_kib "$routied_pid" VmRSS)

# result KEY: a value from switchbench's RESULT line.
result() {
	grep '^RESULT ' "$switch_out" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Aggregates over the rounds: mean req/s (with min and max), mean p50 and p99, total
# errors, mean CPU per request.
summary=$(awk '
	{ k = $1 " " $2; n[k]++; rps[k] += $3; p50[k] += $4; p99[k] += $5; err[k] += $6
	  if ($7 == "-") nocpu[k] = 1; else cpu[k] += $7
	  if (!(k in lo) || $3 < lo[k]) lo[k] = $3; if ($3 > hi[k]) hi[k] = $3 }
	END { for (k in n) printf "%s %.0f %.0f %.0f %.2f %.2f %d %s\n", k, rps[k] / n[k], lo[k], hi[k],
		p50[k] / n[k] / 1000, p99[k] / n[k] / 1000, err[k], (k in nocpu ? "-" : sprintf("%.1f", cpu[k] / n[k])) }
' "$results")
# row SETUP PROTO: the aggregate line of one setup.
row() { awk -v s="$1" -v p="$2" '$1 == s && $2 == p' <<<"$summary"; }
field() { row "$1" "$2" | awk -v i="$3" '{ print $i }'; }
ratio() { awk -v a="$(field routied "$1" 3)" -v b="$(field nginx "$1" 3)" 'BEGIN { printf "%.2f", a / b }'; }
meets() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=" ? v >= t : v <= t); print (ok ? "ok" : "BELOW TARGET") }'; }

ratio_http=$(ratio http)
ratio_https=$(ratio https)
idle_mib=$(mib "$idle_kib")
peak_mib=$(mib "$peak_kib")
wrk_errors=$(awk '{ e += $6 } END { print e + 0 }' "$results")
failed=$(result failed)
left_status=$(result left_status_max)
left_ss=$(result left_ss_max)

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')
wrk_version=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true) # wrk -v exits 1

echo
echo "==== routie benchmark summary (bench/bench.sh) ===="
printf 'machine: %s cores (%s), Linux %s, %s, %s, wrk %s; load generator on the same cores\n' \
	"$(nproc)" "${cpu_model:-unknown CPU}" "$(uname -r)" "$(go env GOVERSION)" "$nginx_version" "$wrk_version"
printf 'load:    wrk -t%d -c%d keep-alive, GET / of the demo app (27-byte body), %d x %ds per setup interleaved\n' \
	"$threads" "$connections" "$rounds" "$seconds"
printf '         nginx: 2 workers, upstream keepalive 256, HTTP/1.1, access_log off; routied: access log off; HTTPS is TLS 1.3, same cert\n'
echo
printf '| %-15s | %8s | %-15s | %8s | %8s | %13s |\n' "setup" "req/s" "min-max req/s" "p50 ms" "p99 ms" "proxy CPU/req"
printf '|%s|%s|%s|%s|%s|%s|\n' "-----------------" "---------:" "-----------------" "---------:" "---------:" "--------------:"
for sp in "direct http" "nginx http" "routied http" "nginx https" "routied https"; do
	read -r s p <<<"$sp"
	read -r _ _ avg lo hi p50 p99 _ cpu <<<"$(row "$s" "$p")"
	if [[ $cpu != - ]]; then cpu="$cpu us"; fi
	printf '| %-15s | %8s | %-15s | %8s | %8s | %13s |\n' "$s ${p^^}" "$avg" "$lo-$hi" "$p50" "$p99" "$cpu"
done
echo
printf 'routied/nginx req/s: HTTP %s (%s), HTTPS %s (%s); target >= %s\n' \
	"$ratio_http" "$(meets "$ratio_http" "$target_ratio" ">=")" "$ratio_https" "$(meets "$ratio_https" "$target_ratio" ">=")" "$target_ratio"
printf 'routied memory: idle RSS %s MiB (%s, target <= %s); peak RSS %s MiB (%s, target <= %s); under wrk alone %s MiB, RSS at the end %s MiB\n' \
	"$idle_mib" "$(meets "$idle_mib" "$target_idle_mib" "<=")" "$target_idle_mib" \
	"$peak_mib" "$(meets "$peak_mib" "$target_peak_mib" "<=")" "$target_peak_mib" \
	"$(mib "$peak_load_kib")" "$(mib "$end_kib")"
printf 'switch under load: %s switches, %d keep-alive conns over HTTPS: %s failed of %s requests (target 0); new app answers median %s ms, max %s ms after the call (%s ms, %s ms after the swap event); connections left to the old target: %s by status, %s by ss (target 0)\n' \
	"$(result switches)" "$connections" "$failed" "$(result requests)" \
	"$(result call_new_p50_ms)" "$(result call_new_max_ms)" "$(result swap_new_p50_ms)" "$(result swap_new_max_ms)" \
	"$left_status" "$left_ss"
printf 'wrk errors (connect/read/write/timeout/non-2xx) over all runs: %s\n' "$wrk_errors"

if ((switch_status != 0 || wrk_errors != 0)); then
	die "a correctness check failed: failed requests, a failed switch, a connection left to an old target or a wrk error; see above"
fi
