#!/usr/bin/env bash
# Runs ringkeeper-bench against Apache ZooKeeper (Debian's package) and then
# against Ringkeeper, one server at a time on this machine, and prints the
# README's comparison table. See bench/README.md, "compare.sh".
#
# Exit status: 0 when every run completed (whatever the figures); 1 when a
# server failed to start or died, or ringkeeper-bench reported an error;
# 2 bad usage or something missing (binaries, java, the ZooKeeper jar).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
RK_BIN="$ROOT/build/bin/ringkeeper"
BENCH_BIN="$ROOT/build/bin/ringkeeper-bench"
ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}
ZK_CONF_DIR=${ZK_CONF_DIR:-/etc/zookeeper/conf}
SLF4J_JAR=${SLF4J_JAR:-/usr/share/java/slf4j-simple.jar}
RESULTS_DIR="$ROOT/build/bench-results"

DURATION=10
WARMUP=2
SESSIONS=32
INFLIGHT=8
THREADS=2
VALUE_SIZE=1024
KEYS=1000
BENCH_TIMEOUT=10   # ringkeeper-bench --timeout: connect, each reply, close
START_WAIT_S=60    # a server must answer srvr within this
STOP_WAIT_S=10     # SIGTERM, then SIGKILL after this
RATIOS=(1.0 0.9 0.0)

usage() {
	cat <<EOF
usage: bench/compare.sh [--quick] [--duration S] [--warmup S]
  --quick        3 measured seconds per workload instead of $DURATION
  --duration S   measured seconds per workload (default $DURATION)
  --warmup S     unmeasured seconds before each (default $WARMUP)
Environment: JAVA (java binary), ZK_JAR, ZK_CONF_DIR, SLF4J_JAR, TMPDIR.
EOF
}

while (($#)); do
	case $1 in
	--quick) DURATION=3 ;;
	--duration) DURATION=${2:-}; shift ;;
	--warmup) WARMUP=${2:-}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in "$DURATION" "$WARMUP"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "compare.sh: not a whole number of seconds: '$v'" >&2; exit 2; }
done
((DURATION > 0)) || { echo "compare.sh: --duration must be at least 1" >&2; exit 2; }


# ---- prerequisites --------------------------------------------------------

for b in "$RK_BIN" "$BENCH_BIN"; do
	if [[ ! -x $b ]]; then
		log "compare.sh: $b is missing; build first (the quick start's build):"
		log "  tools/start   # or: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j\$(nproc)"
		exit 2
	fi
done
JAVA=${JAVA:-$(command -v java || true)}
if [[ -z $JAVA && -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA=$JAVA_HOME/bin/java; fi
if [[ -z $JAVA || ! -x $JAVA || ! -r $ZK_JAR ]]; then
	log "compare.sh: needs java and Apache ZooKeeper's jar ($ZK_JAR); on Debian:"
	log "  apt-get install zookeeper default-jre-headless"
	exit 2
fi
[[ -r $SLF4J_JAR ]] || SLF4J_JAR= # ZooKeeper then logs nothing, which is fine

# ---- cleanup: whatever was started is stopped on any exit ------------------

bench_workspace compare

# ---- servers ---------------------------------------------------------------

srvr() { # port: the server's answer to the srvr four-letter word, or nothing
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf srvr >&3 && cat <&3" 2>/dev/null
}

write_cfg() { # file datadir port
	cat >"$1" <<EOF
tickTime=2000
dataDir=$2
clientPort=$3
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
4lw.commands.whitelist=*
EOF
}

# start_server name: sets SERVER_PID, PORT, DATA_DIR, SERVER_LOG; 0 once it
# answers srvr. Retries with another port if the chosen one was taken.
start_server() {
	local name=$1 attempt i cfg why
	for attempt in 1 2 3; do
		PORT=$(free_port) || { log "compare.sh: no free port found"; return 1; }
		DATA_DIR="$WORK/$name-data-$attempt"
		SERVER_LOG="$WORK/$name-$attempt.log"
		cfg="$WORK/$name-$attempt.cfg"
		mkdir -p "$DATA_DIR"
		write_cfg "$cfg" "$DATA_DIR" "$PORT"
		case $name in
		zookeeper)
			"$JAVA" -Xmx1g -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
				-cp "$ZK_CONF_DIR:$ZK_JAR${SLF4J_JAR:+:$SLF4J_JAR}" \
				org.apache.zookeeper.server.ZooKeeperServerMain "$cfg" \
				>"$SERVER_LOG" 2>&1 </dev/null &
			;;
		ringkeeper)
			"$RK_BIN" --port "$PORT" --data-dir "$DATA_DIR" --log-level warn "$cfg" \
				>"$SERVER_LOG" 2>&1 </dev/null &
			;;
		esac
		SERVER_PID=$!
		for ((i = 0; i < START_WAIT_S * 5; i++)); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			if srvr "$PORT" | grep -q '^Mode:'; then return 0; fi
			sleep 0.2
		done
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			why="did not answer srvr on 127.0.0.1:$PORT within ${START_WAIT_S}s"
			stop_pid "$SERVER_PID"
		else
			wait "$SERVER_PID"
			why="exited with status $? before answering on 127.0.0.1:$PORT"
		fi
		SERVER_PID=
		if grep -qi 'address already in use' "$SERVER_LOG"; then continue; fi
		log "compare.sh: $name $why; its log ends:"
		tail -n 20 "$SERVER_LOG" | sed 's/^/  /' >&2
		return 1
	done
	log "compare.sh: $name: every port tried was in use"
	return 1
}

# ---- one workload ------------------------------------------------------------

# run_bench name ratio: appends the CSV line to $CSV_OUT, writes the parsed
# figures to $WORK/<name>-<ratio>.fig; returns the bench's status.
run_bench() {
	local name=$1 ratio=$2 out="$WORK/$1-$2.csv" err="$WORK/$1-$2.err" rc
	timeout -k 5 $((WARMUP + DURATION + 4 * BENCH_TIMEOUT + 30)) \
		"$BENCH_BIN" "127.0.0.1:$PORT" --sessions "$SESSIONS" --inflight "$INFLIGHT" \
		--threads "$THREADS" --read-ratio "$ratio" --value-size "$VALUE_SIZE" \
		--keys "$KEYS" --duration "$DURATION" --warmup "$WARMUP" \
		--timeout "$BENCH_TIMEOUT" --csv-header >"$out" 2>"$err" </dev/null &
	CHILD_PID=$!
	wait "$CHILD_PID"
	rc=$?
	CHILD_PID=
	if ((rc != 0)) || [[ $(wc -l <"$out") -lt 2 ]]; then
		if ((rc == 124)); then
			log "compare.sh: ringkeeper-bench against $name (read ratio $ratio) timed out:"
		elif ((rc > 128)); then
			log "compare.sh: ringkeeper-bench against $name (read ratio $ratio) was killed" \
				"by signal $((rc - 128)), not sent by compare.sh:"
		else
			log "compare.sh: ringkeeper-bench against $name (read ratio $ratio) exited $rc:"
		fi
		sed 's/^/  /' "$err" | tail -n 10 >&2
		((rc == 3)) || return 1 # status 3: completed with error replies; keep the figures
		rc=1
	fi
	[[ -s $CSV_OUT ]] || sed -n 1p "$out" | sed 's/^/server,/' >"$CSV_OUT"
	sed -n 2p "$out" | sed "s/^/$name,/" >>"$CSV_OUT"
	# ops/s, read p99, write p99, errors, by column name.
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		NR == 2 { print $c["ops_per_s"], $c["read_p99_us"], $c["write_p99_us"],
			$c["read_errors"] + $c["write_errors"] }' "$out" >"$WORK/$name-$ratio.fig"
	return "$rc"
}

# run_server name: start, every workload, RSS, data-dir size, stop.
FAILED=0
run_server() {
	local name=$1 ratio
	log "== $name"
	if ! start_server "$name"; then
		FAILED=1
		return
	fi
	# "3.8.0-${mvngit.commit.id}, built on ..." -> "3.8.0"
	srvr "$PORT" | sed -n 's/^Zookeeper version: \([^,]*\).*/\1/p' | sed 's/-[$]{.*//' |
		head -n 1 >"$WORK/$name.version"
	DF_LINE=$(df -hT "$DATA_DIR" | awk 'NR == 2 { print $1 ", " $2 ", " $3 " (" $5 " free), mounted on " $7 }')
	for ratio in "${RATIOS[@]}"; do
		log "   read ratio $ratio: ${WARMUP}s warmup + ${DURATION}s"
		run_bench "$name" "$ratio" || FAILED=1
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			log "compare.sh: $name exited during the run; its log ends:"
			tail -n 20 "$SERVER_LOG" | sed 's/^/  /' >&2
			FAILED=1
			wait "$SERVER_PID" 2>/dev/null
			SERVER_PID=
			return
		fi
	done
	echo "$(rss_kib "$SERVER_PID" VmRSS) $(rss_kib "$SERVER_PID" VmHWM)" >"$WORK/$name.rss"
	du -sk "$DATA_DIR" | awk '{ print $1 }' >"$WORK/$name.du"
	find "$DATA_DIR" -type f -size +0 | wc -l >"$WORK/$name.files"
	stop_pid "$SERVER_PID"
	SERVER_PID=
}

# ---- the report ------------------------------------------------------------

fig() { # name ratio: "ops r_p99 w_p99 errors" or nothing
	cat "$WORK/$1-$2.fig" 2>/dev/null
}

cell() { # name ratio: "123,456 (p99 1.23 ms)"
	fig "$1" "$2" | awk -v r="$2" '
		function grp(n,   s) { n = sprintf("%.0f", n); s = "";
			while (length(n) > 3) { s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3) }
			return n s }
		{ if (r == 1) p = sprintf("p99 %.2f ms", $2 / 1000)
		  else if (r == 0) p = sprintf("p99 %.2f ms", $3 / 1000)
		  else p = sprintf("p99 get %.2f / set %.2f ms", $2 / 1000, $3 / 1000)
		  e = $4 > 0 ? sprintf(", %d errors", $4) : ""
		  printf "%s (%s%s)", grp($1), p, e; found = 1 }
		END { if (!found) printf "failed" }'
}

ratio_cell() { # zk-ops rk-ops
	awk -v z="$1" -v k="$2" 'BEGIN { if (z > 0 && k > 0) printf "%.2fx", k / z; else printf "-" }'
}

mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }

rss_cell() { # name
	local f="$WORK/$1.rss"
	[[ -s $f ]] || { printf 'n/a'; return; }
	read -r rss hwm <"$f"
	printf '%s (peak %s)' "$(mib "$rss")" "$(mib "$hwm")"
}

report() {
	local ratio label zk rk
	echo "| workload | Apache ZooKeeper ops/s (p99) | Ringkeeper ops/s (p99) | ratio |"
	echo "|---|---:|---:|---:|"
	for ratio in "${RATIOS[@]}"; do
		case $ratio in
		1.0) label="100% getData" ;;
		0.0) label="100% setData" ;;
		*) label="$(awk -v r="$ratio" 'BEGIN { printf "%d%% getData, %d%% setData", r * 100 + 0.5, (1 - r) * 100 + 0.5 }')" ;;
		esac
		zk=$(fig zookeeper "$ratio" | awk '{ print $1 }')
		rk=$(fig ringkeeper "$ratio" | awk '{ print $1 }')
		echo "| $label | $(cell zookeeper "$ratio") | $(cell ringkeeper "$ratio") | $(ratio_cell "${zk:-0}" "${rk:-0}") |"
	done
	echo "| RSS after the runs | $(rss_cell zookeeper) | $(rss_cell ringkeeper) | |"
	echo
	echo "Load: ringkeeper-bench, $SESSIONS sessions x $INFLIGHT in flight on $THREADS threads," \
		"$VALUE_SIZE-byte values over $KEYS keys, ${WARMUP} s warmup + ${DURATION} s measured" \
		"per workload; client and server on the same machine, one server at a time;" \
		"ratio = Ringkeeper ops/s / ZooKeeper ops/s."
	echo
	echo "- Apache ZooKeeper $(cat "$WORK/zookeeper.version" 2>/dev/null || echo '?')," \
		"standalone, default settings (forceSync=yes), -Xmx1g," \
		"$("$JAVA" -version 2>&1 | head -n 1)"
	echo "- Ringkeeper $(cat "$WORK/ringkeeper.version" 2>/dev/null || echo '?')," \
		"commit $GIT_AT_START at the start, build type $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$ROOT/build/CMakeCache.txt" 2>/dev/null || echo '?')," \
		"binary built $(date -r "$RK_BIN" '+%Y-%m-%d %H:%M')"
	echo "- Data dir after the runs: ZooKeeper $(cat "$WORK/zookeeper.du" 2>/dev/null || echo '?') KiB," \
		"Ringkeeper $(cat "$WORK/ringkeeper.du" 2>/dev/null || echo '?') KiB$(
			[[ $(cat "$WORK/ringkeeper.files" 2>/dev/null) == 0 ]] &&
				echo ' (nothing written: this build keeps writes in memory, so setData is not durable and not comparable)'
		)"
	echo "- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
		"$(awk '/^MemTotal:/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
		"$(uname -sr); data dirs on ${DF_LINE:-?}; other processes kept $(others_busy) of the CPUs busy during the runs"
}

# ---- main ------------------------------------------------------------------

mkdir -p "$RESULTS_DIR"
STAMP=$(date '+%Y%m%d-%H%M%S')
CSV_OUT="$RESULTS_DIR/compare-$STAMP.csv"
: >"$CSV_OUT"
DF_LINE=
GIT_AT_START=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] &&
	GIT_AT_START+=" (+ uncommitted changes)"
MACHINE_START=$(machine_ticks)
OURS_START=$(our_ticks)

run_server zookeeper
run_server ringkeeper

report | tee "$RESULTS_DIR/compare-$STAMP.md"
echo
echo "CSV: ${CSV_OUT#"$ROOT"/}"
exit "$FAILED"
