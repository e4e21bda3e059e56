# shellcheck shell=bash
# Helpers shared by the bench scripts (sourced, not run). The caller sets
# STOP_WAIT_S before using stop_pid.

log() { printf '%s\n' "$*" >&2; }

stop_pid() { # pid: SIGTERM, bounded wait (STOP_WAIT_S), then SIGKILL
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < STOP_WAIT_S * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "${0##*/}: pid $pid ignored SIGTERM for ${STOP_WAIT_S}s; SIGKILL"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

free_port() { # a port below Linux's ephemeral range that nothing answers on
	local i p
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 12000))
		if ! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

rss_kib() { # pid field: VmRSS or VmHWM in KiB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

# bench_workspace NAME: a temporary directory in $WORK, and traps that stop
# the server ($SERVER_PID) and the bench or loader ($CHILD_PID) the script
# started, then remove $WORK, on any exit.
bench_workspace() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/rk-$1.XXXXXX") || exit 1
	SERVER_PID=
	CHILD_PID=
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# shellcheck disable=SC2317 # reached through the trap
bench_cleanup() {
	trap - EXIT INT TERM HUP
	[[ -n $CHILD_PID ]] && stop_pid "$CHILD_PID"
	[[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID"
	rm -rf "$WORK"
}
