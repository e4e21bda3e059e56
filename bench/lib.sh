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
