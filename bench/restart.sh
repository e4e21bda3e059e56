#!/usr/bin/env bash
# Restart time and memory with a big database: loads N znodes into a fresh
# Ringkeeper (and, with --zookeeper, Apache ZooKeeper) data dir, makes the
# newest snapshot cover every txn, then restarts the server --runs times and
# measures how long each start takes until it answers srvr, and its RSS;
# optionally also its RSS with --watches watches set on those znodes and
# with --sessions more sessions open. See bench/README.md, "restart.sh".
#
# Exit status: 0 when every step completed (whatever the figures); 1 when
# a server failed to start, died, or the load failed; 2 bad usage or
# something missing (binaries, python3, java, the ZooKeeper jar).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD_DIR="$ROOT/build"
OUT_DIR=
NAME=
ZKWIRE_DIR="$ROOT/tests/integration" # zkwire.py, the tests' raw wire client
ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}
ZK_CONF_DIR=${ZK_CONF_DIR:-/etc/zookeeper/conf}
SLF4J_JAR=${SLF4J_JAR:-/usr/share/java/slf4j-simple.jar}
ZK_HEAP=${ZK_HEAP:-2g}
ZK_LOG_LEVEL=${ZK_LOG_LEVEL:-error} # WARN logs a stack trace per dropped connection
PYTHON=${PYTHON:-python3}

ZNODES=1000000
VALUE_SIZE=100
RUNS=3
WITH_ZK=0
WATCHES=0         # data watches to set after the last restart (0: none)
WATCH_SESSIONS=1000
SESSIONS=0        # sessions to open on a further start (0: none)
SESSION_TIMEOUT_MS=600000 # they must outlive the measurement: maxSessionTimeout is raised to it
HOLD_WAIT_S=900   # setting the watches, opening the sessions
START_WAIT_S=300  # a restart must answer srvr within this
LOAD_WAIT_S=1800  # ringkeeper-bench's setup of the znodes
SNAP_WAIT_S=300   # the forced snapshot
STOP_WAIT_S=60    # SIGTERM, then SIGKILL after this (a snapshot may be under way)

usage() {
	cat <<EOF
usage: bench/restart.sh [--znodes N] [--value-size B] [--runs R] [--zookeeper]
                        [--watches N] [--watch-sessions N] [--sessions N]
                        [--build DIR] [--out DIR] [--name BASE]
  --znodes N      znodes to load, /rkbench/k0 .. k<N-1> (default $ZNODES)
  --value-size B  bytes per znode (default $VALUE_SIZE)
  --runs R        measured restarts per server (default $RUNS)
  --zookeeper     also measure Apache ZooKeeper (Debian's 3.8 package)
  --watches N     after the last restart, set N data watches on the znodes from
                  --watch-sessions connected sessions (ringkeeper-hold) and read
                  the RSS (default 0: no)
  --watch-sessions N  sessions holding those watches (default $WATCH_SESSIONS)
  --sessions N    then start once more and open N sessions, each left to live
                  on without its connection (ringkeeper-hold --detach: this
                  process may hold only so many descriptors), and read the
                  RSS (default 0: no); maxSessionTimeout=$SESSION_TIMEOUT_MS for that start
  --build DIR     where bin/ringkeeper, ringkeeper-bench and ringkeeper-hold are
                  (default build)
  --out DIR       also write the table to DIR/BASE.md and the figures to
                  DIR/BASE.csv
  --name BASE     those files' base name (default restart-<stamp>)
Environment: JAVA, ZK_JAR, ZK_CONF_DIR, SLF4J_JAR, ZK_HEAP ($ZK_HEAP),
ZK_LOG_LEVEL ($ZK_LOG_LEVEL), PYTHON, TMPDIR, KEEP_WORK=1.
EOF
}

while (($#)); do
	case $1 in
	--znodes) ZNODES=${2:-}; shift ;;
	--value-size) VALUE_SIZE=${2:-}; shift ;;
	--runs) RUNS=${2:-}; shift ;;
	--zookeeper) WITH_ZK=1 ;;
	--watches) WATCHES=${2:-}; shift ;;
	--watch-sessions) WATCH_SESSIONS=${2:-}; shift ;;
	--sessions) SESSIONS=${2:-}; shift ;;
	--build) BUILD_DIR=$(cd "${2:-.}" 2>/dev/null && pwd) || { echo "restart.sh: no dir '${2:-}'" >&2; exit 2; }; shift ;;
	--out) OUT_DIR=${2:-}; shift ;;
	--name) NAME=${2:-}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in "$ZNODES" "$VALUE_SIZE" "$RUNS" "$WATCHES" "$WATCH_SESSIONS" "$SESSIONS"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "restart.sh: not a whole number: '$v'" >&2; exit 2; }
done
((ZNODES >= 1 && RUNS >= 1 && WATCH_SESSIONS >= 1)) ||
	{ echo "restart.sh: --znodes, --runs and --watch-sessions must be at least 1" >&2; exit 2; }
RK_BIN=${RK_BIN:-$BUILD_DIR/bin/ringkeeper}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bin/ringkeeper-bench}
HOLD_BIN=${HOLD_BIN:-$BUILD_DIR/bin/ringkeeper-hold}


# ---- prerequisites --------------------------------------------------------

for b in "$RK_BIN" "$BENCH_BIN" $( ((WATCHES + SESSIONS > 0)) && echo "$HOLD_BIN"); do
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
		"$JAVA" "-Xmx$ZK_HEAP" "-Dorg.slf4j.simpleLogger.defaultLogLevel=$ZK_LOG_LEVEL" \
			-cp "$ZK_CONF_DIR:$ZK_JAR${SLF4J_JAR:+:$SLF4J_JAR}" \
			org.apache.zookeeper.server.ZooKeeperServerMain "$2" >>"$3" 2>&1 </dev/null &
		;;
	ringkeeper)
		"$RK_BIN" "$2" ${RK_LOG_LEVEL:+--log-level "$RK_LOG_LEVEL"} >>"$3" 2>&1 </dev/null &
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

# ---- memory with watches and sessions ----------------------------------------

# set_watches name: on the running server, WATCHES data watches (rounded up
# to a multiple of WATCH_SESSIONS) from WATCH_SESSIONS connected sessions,
# distinct znodes within a session; records "watches seconds rss hwm
# seen" in $WORK/name.watches (seen: wchs's "Total watches") and lets the
# sessions go (closeSession).
set_watches() {
	local name=$1 per deadline rc=0
	per=$(((WATCHES + WATCH_SESSIONS - 1) / WATCH_SESSIONS))
	log "   setting $((per * WATCH_SESSIONS)) watches from $WATCH_SESSIONS sessions (ringkeeper-hold)"
	"$HOLD_BIN" "127.0.0.1:$PORT" --sessions "$WATCH_SESSIONS" --watches "$per" --keys "$ZNODES" \
		--timeout 120 >"$WORK/$name-hold.out" 2>"$WORK/$name-hold.err" </dev/null &
	CHILD_PID=$!
	deadline=$((SECONDS + HOLD_WAIT_S))
	until grep -q '^ready' "$WORK/$name-hold.out"; do
		if ! kill -0 "$CHILD_PID" 2>/dev/null || ((SECONDS > deadline)); then
			log "restart.sh: setting the watches on $name failed:"
			tail -n 5 "$WORK/$name-hold.err" | sed 's/^/  /' >&2
			rc=1
			break
		fi
		sleep 0.2
	done
	if ((rc == 0)); then
		echo "$((per * WATCH_SESSIONS)) $(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' "$WORK/$name-hold.out")" \
			"$(rss_kib "$SERVER_PID" VmRSS) $(rss_kib "$SERVER_PID" VmHWM)" \
			"$(fourlw "$PORT" wchs | sed -n 's/^Total watches: *//p')" >"$WORK/$name.watches"
		log "   watches set: RSS $(($(rss_kib "$SERVER_PID" VmRSS) / 1024)) MiB"
	fi
	stop_pid "$CHILD_PID"
	CHILD_PID=
	return "$rc"
}

# open_sessions name: starts the server once more (maxSessionTimeout raised
# so the sessions outlive the measurement; logging at warn, since both log
# every session at info) and opens SESSIONS sessions left to live on
# without their connections; records "sessions seconds rss_before rss hwm
# seen" in $WORK/name.sessions (seen: mntr's zk_global_sessions).
open_sessions() {
	local name=$1 before rc
	log "   opening $SESSIONS sessions (ringkeeper-hold --detach)"
	RK_LOG_LEVEL=warn start "$name" "maxSessionTimeout=$SESSION_TIMEOUT_MS" || return 1
	before=$(rss_kib "$SERVER_PID" VmRSS)
	run_child "$HOLD_WAIT_S" "$HOLD_BIN" "127.0.0.1:$PORT" --sessions "$SESSIONS" --detach \
		--session-timeout "$SESSION_TIMEOUT_MS" --timeout 120 >"$WORK/$name-sessions.out" 2>&1
	rc=$?
	if ((rc != 0)); then
		log "restart.sh: opening the sessions on $name failed (status $rc):"
		tail -n 5 "$WORK/$name-sessions.out" | sed 's/^/  /' >&2
		stop
		return 1
	fi
	echo "$SESSIONS $(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' "$WORK/$name-sessions.out") $before" \
		"$(rss_kib "$SERVER_PID" VmRSS) $(rss_kib "$SERVER_PID" VmHWM)" \
		"$(fourlw "$PORT" mntr | sed -n 's/^zk_global_sessions[[:space:]]*//p')" >"$WORK/$name.sessions"
	log "   sessions open: RSS $(($(rss_kib "$SERVER_PID" VmRSS) / 1024)) MiB"
	stop
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
	rss_kib "$SERVER_PID" VmRSS >"$WORK/$name.empty_rss"
	log "   empty: RSS $(($(cat "$WORK/$name.empty_rss") / 1024)) MiB; loading with ringkeeper-bench's setup"
	if ! load "$name"; then
		stop
		FAILED=1
		return
	fi
	rss_kib "$SERVER_PID" VmRSS >"$WORK/$name.load_rss"
	stop
	log "   loaded in $(cat "$WORK/$name.load_s") s; forcing a snapshot"
	"force_snapshot_$name" || { FAILED=1; return; }
	: >"$WORK/$name.runs"
	for ((r = 1; r <= RUNS; r++)); do
		start "$name" || { FAILED=1; return; }
		echo "$START_S $(rss_kib "$SERVER_PID" VmRSS) $(rss_kib "$SERVER_PID" VmHWM)" \
			"$(sed -n 's/^Node count: //p' "$WORK/srvr")" >>"$WORK/$name.runs"
		log "   restart $r: $START_S s, RSS $(($(rss_kib "$SERVER_PID" VmRSS) / 1024)) MiB"
		if ((r == RUNS && WATCHES > 0)); then set_watches "$name" || FAILED=1; fi
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
	if ((SESSIONS > 0)); then open_sessions "$name" || FAILED=1; fi
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

# memory_row name label: RSS with the znodes, then with the watches and
# the sessions (each with its increase over the server just started).
memory_row() {
	local name=$1 w=() ss=() cell_w="-" cell_s="-"
	[[ -s $WORK/$name.runs ]] || return 0
	read -r -a w <"$WORK/$name.watches" 2>/dev/null
	read -r -a ss <"$WORK/$name.sessions" 2>/dev/null
	local restart_rss
	restart_rss=$(tail -n 1 "$WORK/$name.runs" | cut -d' ' -f2)
	((${#w[@]} >= 4)) && cell_w=$(awk -v n="${w[0]}" -v t="${w[1]}" -v r="${w[2]}" -v b="$restart_rss" -v seen="${w[4]:-?}" \
		'BEGIN { printf "%.0f MiB (+%.0f MiB, %.0f B/watch; %s seen, set in %s s)", r / 1024, (r - b) / 1024, (r - b) * 1024 / n, seen, t }')
	((${#ss[@]} >= 4)) && cell_s=$(awk -v n="${ss[0]}" -v t="${ss[1]}" -v b="${ss[2]}" -v r="${ss[3]}" -v seen="${ss[5]:-?}" \
		'BEGIN { printf "%.0f MiB (+%.0f MiB, %.0f B/session; %s live, opened in %s s)", r / 1024, (r - b) / 1024, (r - b) * 1024 / n, seen, t }')
	echo "| $2 | $(($(cat "$WORK/$name.empty_rss" 2>/dev/null || echo 0) / 1024)) MiB |" \
		"$(($(cat "$WORK/$name.load_rss" 2>/dev/null || echo 0) / 1024)) MiB |" \
		"$((restart_rss / 1024)) MiB | $cell_w | $cell_s |"
}

# csv_row name: the figures as one CSV line (header in CSV_HEADER).
CSV_HEADER="server,znodes,value_size,load_s,rss_empty_kib,rss_after_load_kib,restart_s_median,restart_s_runs,rss_after_restart_kib,hwm_after_restart_kib,snapshot_bytes,watches,watches_seen,watch_set_s,rss_with_watches_kib,sessions,sessions_seen,session_open_s,rss_before_sessions_kib,rss_with_sessions_kib"
csv_row() {
	local name=$1 w=() ss=() snap_b
	[[ -s $WORK/$name.runs ]] || return 0
	read -r -a w <"$WORK/$name.watches" 2>/dev/null
	read -r -a ss <"$WORK/$name.sessions" 2>/dev/null
	snap_b=$(head -n 1 "$WORK/$name.files" 2>/dev/null)
	awk -v name="$name" -v z="$ZNODES" -v vs="$VALUE_SIZE" -v load="$(cat "$WORK/$name.load_s" 2>/dev/null)" \
		-v lrss="$(cat "$WORK/$name.empty_rss" 2>/dev/null),$(cat "$WORK/$name.load_rss" 2>/dev/null)" -v snap="$snap_b" \
		-v w="${w[0]:-},${w[4]:-},${w[1]:-},${w[2]:-}" -v ss="${ss[0]:-},${ss[5]:-},${ss[1]:-},${ss[2]:-},${ss[3]:-}" '
		{ t[NR] = $1; runs = runs (NR > 1 ? ";" : "") $1; rss = $2; hwm = $3 }
		END {
			n = NR
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
			med = n % 2 ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
			printf "%s,%s,%s,%s,%s,%.2f,%s,%s,%s,%s,%s,%s\n", name, z, vs, load, lrss, med, runs, rss, hwm, snap, w, ss
		}' "$WORK/$name.runs"
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
	if ((WATCHES + SESSIONS > 0)); then
		echo
		echo "| server | RSS empty | RSS after loading | RSS after a restart | with $WATCHES watches | with $SESSIONS more sessions |"
		echo "|---|---:|---:|---:|---:|---:|"
		memory_row ringkeeper "Ringkeeper"
		((WITH_ZK)) && memory_row zookeeper "Apache ZooKeeper"
		echo
		echo "VmRSS from /proc. Watches: set after the last restart by $WATCH_SESSIONS connected sessions" \
			"(ringkeeper-hold, exists with watch=true on distinct znodes per session), increase over" \
			"the server just restarted; \"seen\": the server's wchs total. Sessions: on a further start," \
			"opened and left to live on without their connections (one process may hold only" \
			"$(ulimit -Hn) descriptors), maxSessionTimeout=$SESSION_TIMEOUT_MS, logging at warn" \
			"(Ringkeeper) / error (ZooKeeper); increase over that start; \"live\": mntr's zk_global_sessions."
	fi
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
		"build type $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || echo '?')," \
		"default --cores"
	echo "- Machine: $(machine_line "$WORK"); load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
}

# ---- main ------------------------------------------------------------------

run_server ringkeeper
((WITH_ZK)) && run_server zookeeper
if [[ -n $OUT_DIR ]]; then
	mkdir -p "$OUT_DIR" || exit 2
	NAME=${NAME:-restart-$(date '+%Y%m%d-%H%M%S')}
	report | tee "$OUT_DIR/$NAME.md"
	{
		echo "$CSV_HEADER"
		csv_row ringkeeper
		((WITH_ZK)) && csv_row zookeeper
	} >"$OUT_DIR/$NAME.csv"
else
	report
fi
exit "$FAILED"
