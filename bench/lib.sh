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

# ---- how busy other processes kept the machine ---------------------------
#
# Set MACHINE_START=$(machine_ticks) and OURS_START=$(our_ticks) at the
# start; others_busy then says what share of the CPUs processes this script
# did not start used meanwhile: the figures are only as good as that is
# small.

# CPU ticks as "busy total" for the machine, and those of this shell and
# every child it has reaped (servers, benches: all reaped before the report).
machine_ticks() {
	awk '$1 == "cpu" { for (i = 2; i <= 9 && i <= NF; i++) { t += $i; if (i == 5 || i == 6) idle += $i }
		print t - idle, t }' /proc/stat
}
our_ticks() { # utime + stime + cutime + cstime (fields 14..17)
	sed 's/.*) //' "/proc/$$/stat" | awk '{ print $12 + $13 + $14 + $15 }'
}

others_busy() {
	local busy0 total0 ours0=$OURS_START busy1 total1 ours1
	read -r busy0 total0 <<<"$MACHINE_START"
	read -r busy1 total1 < <(machine_ticks)
	ours1=$(our_ticks)
	awk -v b="$((busy1 - busy0))" -v t="$((total1 - total0))" -v o="$((ours1 - ours0))" \
		'BEGIN { x = b - o; if (x < 0) x = 0; printf "%.0f%%", (t > 0 ? 100 * x / t : 0) }'
}

# bench_workspace NAME: a temporary directory in $WORK, and traps that stop
# the server ($SERVER_PID), an ensemble's servers (ENS_PIDS) and the bench
# or loader ($CHILD_PID) the script started, then remove $WORK, on any
# exit. KEEP_WORK=1 keeps $WORK (server logs, data dirs) for a look after.
bench_workspace() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/rk-$1.XXXXXX") || exit 1
	SERVER_PID=
	CHILD_PID=
	ENS_PIDS=()
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
	ens_stop_all
	if [[ ${KEEP_WORK:-0} == 1 ]]; then
		log "${0##*/}: kept $WORK"
	else
		rm -rf "$WORK"
	fi
}

# ---- ensembles (bench/ensemble.sh, bench/failover.sh) ------------------------
#
# One zoo.cfg shape drives Ringkeeper and Apache ZooKeeper's QuorumPeerMain,
# as tools/cluster and tests/integration/harness.py's Cluster write it:
# server.N=127.0.0.1:quorumPort:electionPort;127.0.0.1:clientPort, with
# dataDir/myid. The caller sets RK_BIN, and for ZooKeeper JAVA, ZK_JAR,
# ZK_CONF_DIR, SLF4J_JAR (may be empty), ZK_HEAP and ZK_LOG_LEVEL; RK_CORES
# and RK_LOG_LEVEL, if set, go to Ringkeeper as --cores and --log-level. Servers are numbered 1..ENS_N; ENS_PIDS[i]
# is server i's pid while it runs (empty once stopped or killed).

# find_zookeeper: sets JAVA, ZK_JAR, ZK_CONF_DIR and SLF4J_JAR (the
# environment overrides each) for Debian's zookeeper package; 1, having
# said what to install, if java or the jar is missing.
find_zookeeper() {
	ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}
	ZK_CONF_DIR=${ZK_CONF_DIR:-/etc/zookeeper/conf}
	SLF4J_JAR=${SLF4J_JAR-/usr/share/java/slf4j-simple.jar}
	JAVA=${JAVA:-$(command -v java || true)}
	if [[ -z $JAVA && -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA=$JAVA_HOME/bin/java; fi
	if [[ -z $JAVA || ! -x $JAVA || ! -r $ZK_JAR ]]; then
		log "${0##*/}: needs java and Apache ZooKeeper's jar ($ZK_JAR); on Debian:"
		log "  apt-get install zookeeper default-jre-headless   # or tools/deps.sh"
		return 1
	fi
	[[ -r $SLF4J_JAR ]] || SLF4J_JAR= # ZooKeeper then logs nothing, which is fine
	return 0
}

fourlw() { # port word: the server's answer, or nothing within 2 s
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf $2 >&3 && cat <&3" 2>/dev/null
}

# ens_setup dir target n: writes dir/sI/zoo.cfg and dir/sI/data/myid for
# servers 1..n on free 127.0.0.1 ports; sets ENS_DIR, ENS_TARGET, ENS_N and
# ENS_PORT[i] (client port). Returns 1 if no free ports were found.
ens_setup() {
	local i j p ports=() seen=" "
	ENS_DIR=$1 ENS_TARGET=$2 ENS_N=$3
	ENS_PORT=() ENS_PIDS=()
	while ((${#ports[@]} < 3 * ENS_N)); do
		p=$(free_port) || return 1
		[[ $seen == *" $p "* ]] && continue
		seen+="$p "
		ports+=("$p")
	done
	for ((i = 1; i <= ENS_N; i++)); do
		ENS_PORT[i]=${ports[3 * i - 3]}
		mkdir -p "$ENS_DIR/s$i/data"
		echo "$i" >"$ENS_DIR/s$i/data/myid"
	done
	for ((i = 1; i <= ENS_N; i++)); do
		{
			echo "tickTime=2000"
			echo "initLimit=10"
			echo "syncLimit=5"
			echo "dataDir=$ENS_DIR/s$i/data"
			echo "clientPort=${ENS_PORT[i]}"
			echo "clientPortAddress=127.0.0.1"
			echo "admin.enableServer=false"
			echo "maxClientCnxns=0"
			echo "4lw.commands.whitelist=*"
			for ((j = 1; j <= ENS_N; j++)); do
				echo "server.$j=127.0.0.1:${ports[3 * j - 2]}:${ports[3 * j - 1]};127.0.0.1:${ENS_PORT[j]}"
			done
		} >"$ENS_DIR/s$i/zoo.cfg"
	done
}

# ens_start i: starts server i in the background, appending to its
# server.log; sets ENS_PIDS[i]. ZooKeeper logs through slf4j-simple with
# UTC millisecond timestamps, like Ringkeeper's log lines.
ens_start() {
	local i=$1 d="$ENS_DIR/s$1"
	case $ENS_TARGET in
	ringkeeper)
		(cd "$d" && exec "$RK_BIN" "$d/zoo.cfg" ${RK_CORES:+--cores "$RK_CORES"} \
			--log-level "${RK_LOG_LEVEL:-info}" \
			</dev/null >>"$d/server.log" 2>&1) &
		;;
	zookeeper)
		(cd "$d" && exec "$JAVA" "-Xmx$ZK_HEAP" -Duser.timezone=UTC \
			"-Dorg.slf4j.simpleLogger.defaultLogLevel=$ZK_LOG_LEVEL" \
			-Dorg.slf4j.simpleLogger.showDateTime=true \
			"-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS" \
			-cp "$ZK_CONF_DIR:$ZK_JAR${SLF4J_JAR:+:$SLF4J_JAR}" \
			org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
			</dev/null >>"$d/server.log" 2>&1) &
		;;
	esac
	ENS_PIDS[i]=$!
}

ens_mode() { # i: leader, follower, ... from srvr, or nothing
	fourlw "${ENS_PORT[$1]}" srvr | sed -n 's/^Mode: //p'
}

# ens_wait_quorum timeout_s: 0 once exactly one running server leads and
# every other running one follows (a 1-server "ensemble" runs standalone,
# as both servers do with one server.N line: it counts as the leader);
# ENS_LEADER is the leader's id then. 1 on timeout or when a server has
# exited (its log's tail is printed).
ens_wait_quorum() {
	local deadline=$((SECONDS + $1)) i m leaders followers running
	while ((SECONDS < deadline)); do
		leaders=() followers=0 running=0
		for ((i = 1; i <= ENS_N; i++)); do
			[[ -n ${ENS_PIDS[i]:-} ]] || continue
			if ! kill -0 "${ENS_PIDS[i]}" 2>/dev/null; then
				log "${0##*/}: $ENS_TARGET server $i exited; $ENS_DIR/s$i/server.log ends:"
				tail -n 20 "$ENS_DIR/s$i/server.log" | sed 's/^/  /' >&2
				wait "${ENS_PIDS[i]}" 2>/dev/null
				ENS_PIDS[i]=
				return 1
			fi
			running=$((running + 1))
			m=$(ens_mode "$i")
			[[ $m == leader || ($m == standalone && ENS_N -eq 1) ]] && leaders+=("$i")
			[[ $m == follower ]] && followers=$((followers + 1))
		done
		if ((${#leaders[@]} == 1 && followers == running - 1)); then
			# shellcheck disable=SC2034 # the callers' result
			ENS_LEADER=${leaders[0]}
			return 0
		fi
		sleep 0.1
	done
	log "${0##*/}: $ENS_TARGET ensemble: no single leader with every other server following after $1 s"
	for ((i = 1; i <= ENS_N; i++)); do
		log "  server $i: ${ENS_PIDS[i]:+pid ${ENS_PIDS[i]}, }mode $(ens_mode "$i" || true)"
	done
	return 1
}

ens_followers() { # the ids of the running servers that answer "follower"
	local i
	for ((i = 1; i <= ENS_N; i++)); do
		[[ -n ${ENS_PIDS[i]:-} && $(ens_mode "$i") == follower ]] && echo "$i"
	done
}

# ens_load_servers: where clients go, as ZooKeeper's benchmark puts them:
# the followers (none on the leader), or the one server of a standalone.
ens_load_servers() {
	if ((ENS_N == 1)); then echo 1; else ens_followers; fi
}

# ens_all_serving: 0 when every running server answers leader or follower
# (standalone for a single server) and one of them leads.
ens_all_serving() {
	local i m leader=0
	for ((i = 1; i <= ENS_N; i++)); do
		[[ -n ${ENS_PIDS[i]:-} ]] || continue
		m=$(ens_mode "$i")
		case $m in
		leader | standalone) leader=1 ;;
		follower) ;;
		*) return 1 ;;
		esac
	done
	((leader))
}

ens_kill() { # i: SIGKILL server i, as a crash
	[[ -n ${ENS_PIDS[$1]:-} ]] || return 0
	kill -KILL "${ENS_PIDS[$1]}" 2>/dev/null
	wait "${ENS_PIDS[$1]}" 2>/dev/null
	ENS_PIDS[$1]=
}

# ens_stop_all: SIGTERM to every server at once, then stop_pid each
# (bounded by STOP_WAIT_S, then SIGKILL).
ens_stop_all() {
	local i
	for i in "${!ENS_PIDS[@]}"; do
		[[ -n ${ENS_PIDS[i]} ]] && kill -TERM "${ENS_PIDS[i]}" 2>/dev/null
	done
	for i in "${!ENS_PIDS[@]}"; do
		[[ -n ${ENS_PIDS[i]} ]] && stop_pid "${ENS_PIDS[i]}"
		ENS_PIDS[i]=
	done
	return 0
}

# ---- the machine, for every report -------------------------------------------

# machine_line dir: "2 CPUs (AMD EPYC), 24 GiB RAM, Linux 6.1; disk /dev/vda
# ext4, virtio, ..." for the disk that holds dir.
machine_line() {
	local dev fs disk rot=""
	read -r dev fs < <(df -T "$1" 2>/dev/null | awk 'NR == 2 { print $1, $2 }')
	disk=${dev#/dev/}
	disk=${disk%%[0-9]*}
	[[ -r /sys/block/$disk/queue/rotational ]] &&
		rot=", the kernel flags it $([[ $(cat "/sys/block/$disk/queue/rotational") == 1 ]] || echo non-)rotational"
	[[ $disk == vd* ]] && rot=", virtio$rot"
	printf '%s CPUs (%s), %s, %s %s; disk %s %s%s\n' "$(nproc)" \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
		"$(awk '/^MemTotal:/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)" \
		"$(uname -s)" "$(uname -r)" "${dev:-?}" "${fs:-?}" "$rot"
}

# sync_write_ms dir: the median time of a 4 KiB O_DSYNC write (dd) in dir,
# in ms: what a durable txn-log append costs on this disk at best.
sync_write_ms() {
	local f="$1/.sync-probe.$$" i
	for i in 1 2 3; do
		dd if=/dev/zero of="$f" bs=4k count=200 oflag=dsync 2>&1 |
			awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.3f\n", $(i - 1) * 1000 / 200 }'
	done | sort -n | sed -n 2p
	rm -f "$f"
}
