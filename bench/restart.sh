#!/usr/bin/env bash
# Restart time with a big database: loads N znodes into a fresh Ringkeeper
# (and, with --zookeeper, Apache ZooKeeper) data dir, makes the newest
# snapshot cover every txn, then restarts the server --runs times and
# measures how long each start takes until it answers srvr. See
# bench/README.md, "restart.sh".
#
# Exit status: 0 when every step completed (whatever the figures); 1 when
# a server failed to start, died, or the load failed; 2 bad usage or
# something missing (binaries, python3, java, the ZooKeeper jar).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
RK_BIN="$ROOT/build/bin/ringkeeper"
BENCH_BIN="$ROOT/build/bin/ringkeeper-bench"
ZKWIRE_DIR="$ROOT/tests/integration" # zkwire.py, the tests' raw wire client
ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}
ZK_CONF_DIR=${ZK_CONF_DIR:-/etc/zookeeper/conf}
SLF4J_JAR=${SLF4J_JAR:-/usr/share/java/slf4j-simple.jar}
ZK_HEAP=${ZK_HEAP:-2g}
PYTHON=${PYTHON:-python3}

ZNODES=1000000
VALUE_SIZE=100
RUNS=3
WITH_ZK=0
START_WAIT_S=300  # a restart must answer srvr within this
LOAD_WAIT_S=1800  # ringkeeper-bench's setup of the znodes
SNAP_WAIT_S=300   # the forced snapshot
STOP_WAIT_S=60    # SIGTERM, then SIGKILL after this (a snapshot may be under way)

usage() {
	cat <<EOF
usage: bench/restart.sh [--znodes N] [--value-size B] [--runs R] [--zookeeper]
  --znodes N      znodes to load, /rkbench/k0 .. k<N-1> (default $ZNODES)
  --value-size B  bytes per znode (default $VALUE_SIZE)
  --runs R        measured restarts per server (default $RUNS)
  --zookeeper     also measure Apache ZooKeeper (Debian's 3.8 package)
Environment: JAVA, ZK_JAR, ZK_CONF_DIR, SLF4J_JAR, ZK_HEAP ($ZK_HEAP), PYTHON, TMPDIR.
EOF
}

while (($#)); do
	case $1 in
	--znodes) ZNODES=${2:-}; shift ;;
	--value-size) VALUE_SIZE=${2:-}; shift ;;
	--runs) RUNS=${2:-}; shift ;;
	--zookeeper) WITH_ZK=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in "$ZNODES" "$VALUE_SIZE" "$RUNS"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "restart.sh: not a whole number: '$v'" >&2; exit 2; }
done
((ZNODES >= 1 && RUNS >= 1)) || { echo "restart.sh: --znodes and --runs must be at least 1" >&2; exit 2; }


# ---- prerequisites --------------------------------------------------------

for b in "$RK_BIN" "$BENCH_BIN"; do
	if [[ ! -x $b ]]; then
		log "restart.sh: $b is missing; build first:"
		log "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j\$(nproc)"
		exit 2
	fi
done
if ! "$PYTHON" -c "import sys; sys.path.insert(0, '$ZKWIRE_DIR'); import zkwire" 2>/dev/null; then
	log "restart.sh: needs $PYTHON and $ZKWIRE_DIR/zkwire.py"
	exit 2
fi
if ((WITH_ZK)); then
	JAVA=${JAVA:-$(command -v java || true)}
	if [[ -z $JAVA || ! -x $JAVA || ! -r $ZK_JAR ]]; then
		log "restart.sh: --zookeeper needs java and Apache ZooKeeper's jar ($ZK_JAR); on Debian:"
		log "  apt-get install zookeeper default-jre-headless"
		exit 2
	fi
	[[ -r $SLF4J_JAR ]] || SLF4J_JAR=
fi

# ---- cleanup: whatever was started is stopped on any exit ------------------

bench_workspace restart

# run_child timeout_s cmd...: runs cmd in the background (so the trap can
# stop it) with a time bound; returns its status (124 on timeout).
run_child() {
	local t=$1 rc
	shift
	timeout -k 5 "$t" "$@" </dev/null &
	CHILD_PID=$!
	wait "$CHILD_PID"
	rc=$?
	CHILD_PID=
	return "$rc"
}

# ---- servers ---------------------------------------------------------------

srvr() { # port wait_s: the server's answer to the srvr four-letter word, or nothing
	timeout "$2" bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf srvr >&3 && cat <&3" 2>/dev/null
}

write_cfg() { # file datadir port [extra zoo.cfg lines]
	cat >"$1" <<EOF
tickTime=2000
dataDir=$2
clientPort=$3
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
4lw.commands.whitelist=*
${4:-}
EOF
}

now_ns() { date +%s%N; }

# launch name cfg log: starts the server in the background, sets SERVER_PID.
launch() {
	case $1 in
	zookeeper)
		"$JAVA" "-Xmx$ZK_HEAP" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
			-cp "$ZK_CONF_DIR:$ZK_JAR${SLF4J_JAR:+:$SLF4J_JAR}" \
			org.apache.zookeeper.server.ZooKeeperServerMain "$2" >>"$3" 2>&1 </dev/null &
		;;
	ringkeeper)
		"$RK_BIN" "$2" >>"$3" 2>&1 </dev/null &
		;;
	esac
	SERVER_PID=$!
}

# wait_ready: 0 once the server answers srvr with its Mode (ZooKeeper
# accepts connections while it loads, answering that it is not serving;
# Ringkeeper listens before it loads and answers once its cores run), with
# the answer in $WORK/srvr; 1 if it exits or START_WAIT_S pass.
wait_ready() {
	local deadline=$((SECONDS + START_WAIT_S))
	while ((SECONDS < deadline)); do
		kill -0 "$SERVER_PID" 2>/dev/null || return 1
		if srvr "$PORT" 5 >"$WORK/srvr" && grep -q '^Mode:' "$WORK/srvr"; then
			return 0
		fi
		sleep 0.02
	done
	return 1
}

# start name [extra zoo.cfg lines]: starts on $DATA_DIR with $PORT; 0 once
# ready; sets START_S (seconds from fork to the srvr answer).
start() {
	local name=$1 t0 t1
	write_cfg "$CFG" "$DATA_DIR" "$PORT" "${2:-}"
	t0=$(now_ns)
	launch "$name" "$CFG" "$SERVER_LOG"
	if ! wait_ready; then
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			log "restart.sh: $name did not answer srvr on 127.0.0.1:$PORT within ${START_WAIT_S}s"
			stop_pid "$SERVER_PID"
		else
			wait "$SERVER_PID"
			log "restart.sh: $name exited with status $? before answering on 127.0.0.1:$PORT"
		fi
		SERVER_PID=
		log "restart.sh: its log ends:"
		tail -n 20 "$SERVER_LOG" | sed 's/^/  /' >&2
		return 1
	fi
	t1=$(now_ns)
	START_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	return 0
}

stop() {
	stop_pid "$SERVER_PID"
	SERVER_PID=
}

# Files: Ringkeeper keeps dataDir/snapshots/snapshot.<zxid> and
# dataDir/txnlog/log.<zxid>; ZooKeeper dataDir/version-2/{snapshot,log}.<zxid>.
snap_dir() { [[ $1 == ringkeeper ]] && echo "$DATA_DIR/snapshots" || echo "$DATA_DIR/version-2"; }
log_dir() { [[ $1 == ringkeeper ]] && echo "$DATA_DIR/txnlog" || echo "$DATA_DIR/version-2"; }

newest_snapshot() { # name: the newest complete snapshot file, or nothing
	find "$(snap_dir "$1")" -maxdepth 1 -name 'snapshot.*' ! -name '*.tmp' 2>/dev/null | sort | tail -n 1
}

# ---- the steps ---------------------------------------------------------------

# load name: N znodes with ringkeeper-bench's setup (pipelined creates, one
# txn each), then 0.1 s of reads that check the values' size.
load() {
	local name=$1 out="$WORK/$1-load.out" rc
	run_child "$LOAD_WAIT_S" "$BENCH_BIN" "127.0.0.1:$PORT" --keys "$ZNODES" \
		--value-size "$VALUE_SIZE" --sessions 1 --threads 1 --inflight 1 --read-ratio 1 \
		--duration 0.1 --warmup 0 --timeout 60 >"$out" 2>&1
	rc=$?
	if ((rc != 0)); then
		log "restart.sh: loading $name failed (ringkeeper-bench exited $rc):"
		tail -n 10 "$out" | sed 's/^/  /' >&2
		return 1
	fi
	sed -n 's/^setup: .* in \([0-9.]*\) s$/\1/p' "$out" >"$WORK/$name.load_s"
	return 0
}

# shellcheck disable=SC2317 # force_snapshot_<name>: called as "force_snapshot_$name"
# force_snapshot_ringkeeper: with snapCount=2 the next txn starts a
# snapshot. A session's create starts one; once it is written the close
# starts another, which covers every txn. Then the log after the newest
# snapshot is empty and a restart measures loading the snapshot.
force_snapshot_ringkeeper() {
	start ringkeeper "snapCount=2" || return 1
	cat >"$WORK/force_snapshot.py" <<'EOF'
import re, sys, time
port, log, zkwire_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, zkwire_dir)
import zkwire

def snapshots():
    with open(log, errors="replace") as f:
        return re.findall(r"snapshot at zxid (0x[0-9a-f]+)", f.read())

def wait_for(n):
    while len(snapshots()) < n:
        time.sleep(0.05)

before = len(snapshots())
c = zkwire.session(port, 30000)
wait_for(before + 1)
c.close_session()
c.close()
wait_for(before + 2)
print("forced snapshots at zxid %s" % ", ".join(snapshots()[before:]))
EOF
	run_child "$SNAP_WAIT_S" "$PYTHON" "$WORK/force_snapshot.py" "$PORT" "$SERVER_LOG" \
		"$ZKWIRE_DIR" >"$WORK/force_snapshot.out" 2>&1
	local rc=$?
	stop
	if ((rc != 0)); then
		log "restart.sh: forcing a Ringkeeper snapshot failed (status $rc)"
		return 1
	fi
	return 0
}

# shellcheck disable=SC2317
# ZooKeeper writes a snapshot of everything at every start-up (after
# loading), so one restart leaves the log after the newest snapshot empty.
force_snapshot_zookeeper() {
	start zookeeper || return 1
	stop
	return 0
}

# ---- one server ------------------------------------------------------------

FAILED=0
run_server() {
	local name=$1 r
	log "== $name: $ZNODES znodes of $VALUE_SIZE bytes"
	PORT=$(free_port) || { log "restart.sh: no free port found"; FAILED=1; return; }
	DATA_DIR="$WORK/$name-data"
	SERVER_LOG="$WORK/$name.log"
	CFG="$WORK/$name.cfg"
	mkdir -p "$DATA_DIR"
	start "$name" || { FAILED=1; return; }
	log "   loading with ringkeeper-bench's setup"
	if ! load "$name"; then
		stop
		FAILED=1
		return
	fi
	stop
	log "   loaded in $(cat "$WORK/$name.load_s") s; forcing a snapshot"
	"force_snapshot_$name" || { FAILED=1; return; }
	: >"$WORK/$name.runs"
	for ((r = 1; r <= RUNS; r++)); do
		start "$name" || { FAILED=1; return; }
		echo "$START_S $(rss_kib "$SERVER_PID" VmRSS) $(rss_kib "$SERVER_PID" VmHWM)" \
			"$(sed -n 's/^Node count: //p' "$WORK/srvr")" >>"$WORK/$name.runs"
		log "   restart $r: $START_S s"
		stop
	done
	sed -n 's/^Zookeeper version: \([^,]*\).*/\1/p' "$WORK/srvr" | sed 's/-[$]{.*//' |
		head -n 1 >"$WORK/$name.version"
	local snap
	snap=$(newest_snapshot "$name")
	{
		[[ -n $snap ]] && stat -c %s "$snap" || echo 0
		find "$(snap_dir "$name")" -maxdepth 1 -name 'snapshot.*' | wc -l
		find "$(log_dir "$name")" -maxdepth 1 -name 'log.*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
		find "$(log_dir "$name")" -maxdepth 1 -name 'log.*' -printf '%b\n' | # allocated
			awk '{ s += $1 * 512 } END { print s + 0 }'
		find "$(log_dir "$name")" -maxdepth 1 -name 'log.*' | wc -l
	} >"$WORK/$name.files"
	if [[ $name == ringkeeper ]]; then
		grep -E 'loaded snapshot|recovered [0-9]+ znodes|txn log .* opened in' "$SERVER_LOG" |
			tail -n 3 | sed 's/^[0-9-]* [0-9:.]* *[A-Z]* *//' >"$WORK/$name.detail"
	fi
}

# ---- the report ------------------------------------------------------------

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

report_server() {
	local name=$1 label=$2 f="$WORK/$1.runs" snap_b snaps log_b log_alloc logs
	[[ -s $f ]] || { echo "| $label | failed | | | | |"; return; }
	{ read -r snap_b; read -r snaps; read -r log_b; read -r log_alloc; read -r logs; } <"$WORK/$name.files"
	awk -v label="$label" -v snap="$(mib "$snap_b") ($snaps file(s))" \
		-v logs="$(mib "$log_b") in $logs file(s), $(mib "$log_alloc") allocated" \
		-v load="$(cat "$WORK/$name.load_s" 2>/dev/null)" '
		{ t[NR] = $1; rss[NR] = $2; hwm[NR] = $3; nodes = $4 }
		END {
			n = NR; s = ""
			for (i = 1; i <= n; i++) s = s (i > 1 ? " / " : "") sprintf("%.2f", t[i])
			# median of the runs
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
			med = n % 2 ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
			printf "| %s | %.2f s (%s) | %s | %s | %.0f MiB (peak %.0f MiB) | %s znodes, loaded in %s s |\n",
				label, med, s, snap, logs, rss[n] / 1024, hwm[n] / 1024, nodes, load }' "$f"
}

report() {
	echo "| server | restart, median (runs) | newest snapshot | txn log | RSS after the last restart | database |"
	echo "|---|---:|---:|---:|---:|---|"
	report_server ringkeeper "Ringkeeper"
	((WITH_ZK)) && report_server zookeeper "Apache ZooKeeper $(cat "$WORK/zookeeper.version" 2>/dev/null)"
	echo
	echo "Restart: from starting the process until it answers srvr with its Mode, polled" \
		"every 20 ms; $RUNS runs on the same data dir, each a clean stop (SIGTERM) after the" \
		"last. $ZNODES znodes of $VALUE_SIZE bytes under /rkbench, created one txn each by" \
		"ringkeeper-bench's setup; the newest snapshot holds every txn."
	if [[ -s $WORK/ringkeeper.detail ]]; then
		echo
		echo "Ringkeeper's last start-up:"
		sed 's/^/    /' "$WORK/ringkeeper.detail"
	fi
	echo
	((WITH_ZK)) && echo "- Apache ZooKeeper: standalone, default settings, -Xmx$ZK_HEAP," \
		"$("$JAVA" -version 2>&1 | head -n 1); it writes a snapshot at every start-up," \
		"which its restart time includes"
	echo "- Ringkeeper: commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')," \
		"build type $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$ROOT/build/CMakeCache.txt" 2>/dev/null || echo '?')," \
		"default --cores"
	echo "- Machine: $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
		"$(uname -sr); data dirs on $(df -hT "$WORK" | awk 'NR == 2 { print $1 ", " $2 }');" \
		"load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
}

# ---- main ------------------------------------------------------------------

run_server ringkeeper
((WITH_ZK)) && run_server zookeeper
report
exit "$FAILED"
