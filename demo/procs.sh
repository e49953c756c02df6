# shellcheck shell=bash disable=SC2154  # $script and $logdir are the caller's
# procs.sh: helpers shared by demo/demo.sh and bench/bench.sh, which source it. They start
# processes in the background, wait for them to answer, and stop exactly the ones they
# started. The caller sets $script (the name in messages) and $logdir (where start writes
# NAME.log) before it calls them.

say() { printf '==> %s\n' "$*"; }
die() {
	printf '%s: %s\n' "$script" "$*" >&2
	exit 1
}

# Processes this script started, and their names for messages. Only these are stopped.
pids=()
names=()

# start NAME COMMAND...: runs COMMAND in the background, logging to $logdir/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$logdir/$name.log" 2>&1 &
	pids+=("$!")
	names+=("$name")
}

# stop PID: SIGTERM, up to 10s to exit gracefully, then SIGKILL.
stop() {
	local pid=$1 deadline=$((SECONDS + 10))
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# stop_all: stops every started process, newest first (a proxy before the apps behind it),
# and prints the names of those it stopped.
stop_all() {
	local i stopped=()
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		if [[ -n ${pids[i]} ]]; then
			stop "${pids[i]}"
			stopped+=("${names[i]}")
		fi
	done
	printf '%s\n' "${stopped[*]}"
}

# listening PORT: whether something accepts connections on 127.0.0.1:PORT.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for WHAT PID LOG SECONDS COMMAND...: runs COMMAND until it succeeds; fails if the
# process PID exits first or SECONDS pass.
wait_for() {
	local what=$1 pid=$2 log=$3 deadline=$((SECONDS + $4))
	shift 4
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$log" >&2 || true
			die "$what exited while starting; the end of $log is above"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 20 "$log" >&2 || true
			die "$what did not answer within $4s; the end of $log is above"
		fi
		sleep 0.2
	done
}
