#!/usr/bin/env bash
# demo.sh is `make demo`: it shows routied switching an app between two ports under load
# without dropping a request.
#
# It builds routied, routiectl and the demo tools into bin/, starts the demo app twice
# (blue on 127.0.0.1:8080, green on 127.0.0.1:8081), starts routied with conf/dev.toml
# (HTTPS on :8443 with a self-signed certificate, HTTP on :8000, control socket
# var/control.sock), then sends keep-alive load to https://localhost:8443/ while switching
# green, blue, green, ... about once a second. At the end it prints the load report, the
# number of failed requests and which app answered how many. Every process it started is
# stopped on exit, however it exits; logs are in var/demo/.
#
# Usage (from anywhere; it works in the repository root):
#   demo/demo.sh
#   DEMO_SECONDS=30 DEMO_CONNECTIONS=64 demo/demo.sh
#
# Exit status: 0 if no request failed and every switch succeeded, 1 otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly seconds=${DEMO_SECONDS:-12}
readonly connections=${DEMO_CONNECTIONS:-32}
readonly config=conf/dev.toml
readonly socket=var/control.sock
readonly url=https://localhost:8443/
readonly logs=var/demo
readonly script=demo logdir=var/demo
# shellcheck source=demo/procs.sh
source demo/procs.sh

cleanup() {
	local status=$? stopped
	stopped=$(stop_all)
	if [[ -n $stopped ]]; then
		say "stopped $stopped; logs are in $logs/"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# answers URL: whether one GET of URL is answered 2xx.
answers() {
	bin/demo-load -url "$1" -insecure -c 1 -n 1 -d 2s -timeout 1s -by-header ""
}

[[ $seconds =~ ^[0-9]+$ ]] || die "DEMO_SECONDS=$seconds: want whole seconds, e.g. DEMO_SECONDS=20"
[[ $connections =~ ^[0-9]+$ ]] || die "DEMO_CONNECTIONS=$connections: want a number, e.g. DEMO_CONNECTIONS=64"
command -v go >/dev/null || die "go is not on PATH; install Go 1.26 or later"
[[ -f $config ]] || die "$config is missing; it configures routied for this demo"

busy=0
for port in 8000 8443 8080 8081; do
	if listening "$port"; then
		case $port in
		8000) role="routied's HTTP listener" ;;
		8443) role="routied's HTTPS listener" ;;
		8080) role="the blue app" ;;
		8081) role="the green app" ;;
		esac
		printf 'demo: port %s is busy: something already listens on it, and the demo needs it for %s\n' "$port" "$role" >&2
		busy=1
	fi
done
if ((busy)); then
	die "free the busy ports and run again; to see what holds them: lsof -nP -iTCP:8000,8443,8080,8081 -sTCP:LISTEN"
fi

say "building into bin/"
mkdir -p bin "$logs"
go build -o bin/routied ./cmd/routied
go build -o bin/routiectl ./cmd/routiectl
go build -o bin/demo-app ./demo/app
go build -o bin/demo-load ./demo/load

say "starting blue on 127.0.0.1:8080 and green on 127.0.0.1:8081"
start blue bin/demo-app -name blue -listen 127.0.0.1:8080
wait_for blue "${pids[0]}" "$logs/blue.log" 10 answers http://127.0.0.1:8080/actuator/health
start green bin/demo-app -name green -listen 127.0.0.1:8081
wait_for green "${pids[1]}" "$logs/green.log" 10 answers http://127.0.0.1:8081/actuator/health

say "starting routied -config $config"
start routied bin/routied -config "$config"
routied_pid=${pids[2]}
wait_for routied "$routied_pid" "$logs/routied.log" 30 bin/routiectl --socket "$socket" status
wait_for routied "$routied_pid" "$logs/routied.log" 30 answers "$url"

# A previous run may have left green active in routied's saved state; start from blue so
# that the switches below alternate green, blue, green, ...
if ! bin/routiectl --socket "$socket" switch 8080 >>"$logs/switch.log" 2>&1; then
	say "warning: could not make blue (8080) active first; see $logs/switch.log"
fi
bin/routiectl --socket "$socket" status

say "sending load to $url over $connections connections for ${seconds}s, switching about every second"
bin/demo-load -url "$url" -insecure -c "$connections" -d "${seconds}s" -by-header X-App -progress \
	>"$logs/load.txt" &
load_pid=$!
load_index=${#pids[@]}
pids+=("$load_pid")
names+=(demo-load)

# At most one switch a second, and none in the last second of load, so that the last
# switch is measured under load too.
max_switches=$((seconds - 2))
load_end=$((SECONDS + seconds))
switches_ok=0
switches_failed=0
active=8080
sleep 1
while ((switches_ok + switches_failed < max_switches && SECONDS < load_end - 1)) && kill -0 "$load_pid" 2>/dev/null; do
	if ((active == 8080)); then port=8081 app=green; else port=8080 app=blue; fi
	say "switch to $app ($port)"
	# The pipe keeps routiectl's progress readable next to the load's progress lines;
	# with pipefail the if sees routiectl's own exit status.
	if bin/routiectl --socket "$socket" switch "$port" 2>&1 | tee -a "$logs/switch.log" |
		while IFS= read -r line; do printf '    %s\n' "$line"; done; then
		switches_ok=$((switches_ok + 1))
		active=$port
	else
		switches_failed=$((switches_failed + 1))
		say "switch to $app ($port) FAILED; see $logs/switch.log"
	fi
	sleep 1
done

if wait "$load_pid"; then load_status=0; else load_status=$?; fi
pids[load_index]="" # reaped: its pid may be reused, so cleanup must not signal it
((load_status <= 1)) || die "demo-load could not run (exit $load_status); see above"

echo
cat "$logs/load.txt"
echo
bin/routiectl --socket "$socket" status || true
echo
failed=$(awk '$1 == "failed:" { print $2 }' "$logs/load.txt")
non2xx=$(awk '$1 == "non-2xx:" { print $2 }' "$logs/load.txt")
total=$(awk '$1 == "requests:" { print $2 }' "$logs/load.txt")
by_app=$(awk '$1 == "by" { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' "$logs/load.txt")
printf 'failed requests: %d of %d (transport errors %d, non-2xx %d)\n' \
	$((failed + non2xx)) "$total" "$failed" "$non2xx"
printf 'answered by:     %s\n' "$by_app"
printf 'switches:        %d ok, %d failed\n' "$switches_ok" "$switches_failed"

if ((failed + non2xx > 0 || switches_failed > 0 || load_status != 0)); then
	exit 1
fi
say "zero-downtime: every request answered 2xx across $switches_ok switches"
