#!/usr/bin/env bash
# Throughput through server failures, the classic ZooKeeper curve: a steady
# load on a 3-server ensemble (Ringkeeper, or Apache ZooKeeper 3.8 with
# --target zookeeper) while a follower is SIGKILLed and restarted, then the
# leader (--faults leader), or the five failures of ZooKeeper's reliability
# figure (--faults paper); ops completed per 100 ms, how long throughput
# took to recover from each failure, how long writes were unavailable, and
# how long each election took by the servers' logs. See bench/README.md,
# "failover.sh".
#
# Exit status: 0 when the run completed (whatever the figures, goals met or
# not); 1 when the ensemble did not form, the load failed or a fault could
# not be injected; 2 bad usage or something missing.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD_DIR="$ROOT/build"
OUT_DIR=${RK_BENCH_OUT:-$ROOT/build/bench-results}
ZK_HEAP=${ZK_HEAP:-1g}
ZK_LOG_LEVEL=${ZK_LOG_LEVEL:-info} # the election lines are INFO

TARGET=ringkeeper
FAULTS=leader
DURATION=30
WARMUP=2
READ_RATIO=0
SESSIONS=24
INFLIGHT=4
THREADS=2
RATE=
VALUE_SIZE=1024
KEYS=1000
BENCH_TIMEOUT=3    # a request unanswered this long counts as lost; reconnect
SERIES_MS=100
START_WAIT_S=90    # the ensemble must elect a leader within this
STOP_WAIT_S=10     # SIGTERM, then SIGKILL after this
GOAL_ELECTION_MS=200
GOAL_UNAVAILABLE_MS=2000
RECOVERED_PCT=80   # throughput is back once its 300 ms mean is this share of before
BASELINE_MS=2000   # "before": the mean over this long before the fault
NAME=              # output files' base name; failover-<target>-<stamp> by default

usage() {
	cat <<EOF
usage: bench/failover.sh [--target ringkeeper|zookeeper] [--faults leader|paper]
                         [--quick] [--duration S] [--read-ratio R] [--sessions N]
                         [--inflight N] [--threads N] [--rate OPS] [--timeout S]
                         [--build DIR] [--out DIR] [--name BASE]
  --target T      ringkeeper (default) or zookeeper (Apache ZooKeeper 3.8)
  --faults F      leader (default): SIGKILL a follower, restart it, SIGKILL the
                  leader, restart it; paper: ZooKeeper's reliability figure, a
                  follower fails and recovers, another follower fails and
                  recovers, the leader fails (and is restarted), two followers
                  fail and recover (the quorum is lost meanwhile), another
                  leader fails (and is restarted)
  --quick         a 12 s timeline instead of $DURATION s, for a smoke check
  --duration S    the timeline: with F faults and restarts, one every S/(F+2) s
                  from S/(F+2) on, load until S; a server slow to serve again
                  after its restart stretches it
  --read-ratio R  share of getData in the load (default $READ_RATIO: all setData)
  --sessions N    client sessions, round-robin over the 3 servers (default $SESSIONS)
  --inflight N    pipelined requests per session (default $INFLIGHT)
  --threads N     ringkeeper-bench threads (default $THREADS)
  --rate OPS      open loop at OPS requests/s in total (default: closed loop)
  --timeout S     a session whose requests get no reply for S seconds reconnects
                  (default $BENCH_TIMEOUT)
  --build DIR     where bin/ringkeeper and bin/ringkeeper-bench are (default build)
  --out DIR       where the report, CSV and plot go (default build/bench-results)
  --name BASE     their base name (default failover-<target>-<stamp>)
Environment: JAVA, ZK_JAR, ZK_CONF_DIR, SLF4J_JAR, ZK_HEAP ($ZK_HEAP),
RK_CORES, RK_LOG_LEVEL, TMPDIR, KEEP_WORK=1 (keep the servers' logs and data).
EOF
}

while (($#)); do
	case $1 in
	--target)
		case ${2:-} in
		ringkeeper | zookeeper) TARGET=$2 ;;
		*) usage >&2; exit 2 ;;
		esac
		shift
		;;
	--faults)
		case ${2:-} in
		leader | paper) FAULTS=$2 ;;
		*) usage >&2; exit 2 ;;
		esac
		shift
		;;
	--name) NAME=${2:-}; shift ;;
	--quick) DURATION=12 ;;
	--duration) DURATION=${2:-}; shift ;;
	--read-ratio) READ_RATIO=${2:-}; shift ;;
	--sessions) SESSIONS=${2:-}; shift ;;
	--inflight) INFLIGHT=${2:-}; shift ;;
	--threads) THREADS=${2:-}; shift ;;
	--rate) RATE=${2:-}; shift ;;
	--timeout) BENCH_TIMEOUT=${2:-}; shift ;;
	--build) BUILD_DIR=$(cd "${2:-.}" 2>/dev/null && pwd) || { echo "failover.sh: no dir '${2:-}'" >&2; exit 2; }; shift ;;
	--out) OUT_DIR=${2:-}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in "$DURATION" "$SESSIONS" "$INFLIGHT" "$THREADS" "$BENCH_TIMEOUT"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "failover.sh: not a whole number: '$v'" >&2; exit 2; }
done
((DURATION >= 6 && SESSIONS > 0 && INFLIGHT > 0 && THREADS > 0 && BENCH_TIMEOUT > 0)) ||
	{ echo "failover.sh: --duration must be at least 6, --sessions, --inflight, --threads and --timeout at least 1" >&2; exit 2; }
[[ $READ_RATIO =~ ^0(\.[0-9]+)?$ ]] ||
	{ echo "failover.sh: --read-ratio must be in [0, 1): the load needs writes" >&2; exit 2; }
[[ -z $RATE || $RATE =~ ^[0-9]+$ ]] || { echo "failover.sh: --rate must be a whole number of ops/s" >&2; exit 2; }
[[ -n $OUT_DIR ]] || { echo "failover.sh: --out needs a dir" >&2; exit 2; }

# ---- prerequisites --------------------------------------------------------

RK_BIN=${RK_BIN:-$BUILD_DIR/bin/ringkeeper}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bin/ringkeeper-bench}
for b in "$RK_BIN" "$BENCH_BIN"; do
	if [[ ! -x $b && ($b == "$BENCH_BIN" || $TARGET == ringkeeper) ]]; then
		log "failover.sh: $b is missing; build first:"
		log "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j\$(nproc)"
		exit 2
	fi
done
if ! "$BENCH_BIN" --help | grep -q -- --reconnect; then
	log "failover.sh: $BENCH_BIN has no --reconnect; rebuild it"
	exit 2
fi
if [[ $TARGET == zookeeper ]]; then
	find_zookeeper || exit 2
fi

bench_workspace failover

now_ms() { date +%s%3N; }

utc_ms() { # unix ms -> "2024-01-02 03:04:05.678" (UTC, as the servers log)
	date -u -d "@$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))" '+%F %T.%3N'
}

# ---- the faults ------------------------------------------------------------

# The timeline: one action per event, P apart (P = DURATION / (events + 2)).
#   kf   SIGKILL a follower (one not killed before, if there is one)
#   kff  SIGKILL two followers at once (with 3 servers: the quorum is lost)
#   kl   SIGKILL the leader
#   r    restart every server killed since the last restart (same data dir)
# A kill waits until every running server serves again (leader or follower)
# so that each fault hits a whole ensemble; the load stops 2P after the
# last event, once all serve again.
case $FAULTS in
leader) ACTIONS=(kf r kl r) ;;
paper) ACTIONS=(kf r kf r kl r kff r kl r) ;;
esac
EVENTS=${#ACTIONS[@]}

# Events, by number 1..EVENTS: EV_ACTION, EV_WHAT, EV_SERVER (ids,
# space-separated), EV_MS (unix ms when done); each happens only once the
# one before it has.
EV_ACTION=()
for ((k = 1; k <= EVENTS; k++)); do EV_ACTION[k]=${ACTIONS[k - 1]}; done
EV_WHAT=()
EV_SERVER=()
EV_MS=()
REJOIN_MS=() # by restart event: when every server served again after it
GONE_MS=()   # by kill event: when the killed processes had been reaped
PENDING=     # restart event after which not every server serves yet
DOWN=()      # servers killed and not restarted yet
KILLED=" "   # servers ever killed, to pick "another" follower

is_kill() { [[ ${EV_ACTION[$1]} == k* ]]; }

poll_rejoin() {
	[[ -n $PENDING ]] || return 0
	if ens_all_serving; then
		REJOIN_MS[PENDING]=$(now_ms)
		PENDING=
	fi
}

bench_alive() { kill -0 "$CHILD_PID" 2>/dev/null; }

# wait_until ms: sleeps until the unix time ms, watching restarted servers
# rejoin; 1 if the load ended first.
wait_until() {
	local left
	while :; do
		bench_alive || return 1
		left=$(($1 - $(now_ms)))
		((left > 0)) || return 0
		poll_rejoin
		left=$(($1 - $(now_ms)))
		((left > 0)) || return 0
		sleep "$(awk -v l="$left" 'BEGIN { printf "%.3f", (l > 100 ? 100 : l) / 1000 }')"
	done
}

current_leader() {
	local i
	for ((i = 1; i <= ENS_N; i++)); do
		[[ -n ${ENS_PIDS[i]:-} && $(ens_mode "$i") == leader ]] && { echo "$i"; return 0; }
	done
	return 1
}

# pick_followers n: n running followers, those never killed first.
pick_followers() {
	local f fresh=() old=()
	for f in $(ens_followers); do
		if [[ $KILLED == *" $f "* ]]; then old+=("$f"); else fresh+=("$f"); fi
	done
	f=("${fresh[@]}" "${old[@]}")
	((${#f[@]} >= $1)) || return 1
	echo "${f[@]:0:$1}"
}

# fault k: does event k now; 1 if it could not (no follower, no leader).
fault() {
	local k=$1 s i killed
	case ${EV_ACTION[k]} in
	kf | kff)
		local n=1 what="SIGKILL follower"
		[[ ${EV_ACTION[k]} == kff ]] && n=2 what="SIGKILL 2 followers"
		s=$(pick_followers "$n") || { log "failover.sh: not $n follower(s) to kill"; return 1; }
		;;
	kl)
		local what="SIGKILL leader"
		s=$(current_leader) || { log "failover.sh: no leader to kill"; return 1; }
		;;
	r)
		local what="restart"
		s=${DOWN[*]}
		;;
	esac
	EV_MS[k]=$(now_ms)
	if [[ ${EV_ACTION[k]} == r ]]; then
		for i in $s; do ens_start "$i"; done
		DOWN=()
		PENDING=$k
	else
		for i in $s; do ens_kill "$i"; done
		GONE_MS[k]=$(now_ms)
		read -r -a killed <<<"$s"
		DOWN+=("${killed[@]}")
		for i in $s; do KILLED+="$i "; done
	fi
	EV_WHAT[k]=$what
	EV_SERVER[k]=$s
	log "   $(printf '%6.2f s' "$(awk -v t="$((EV_MS[k] - T0_MS))" 'BEGIN { print t / 1000 }')"): $what (server ${s// /, })"
	return 0
}

# ---- the run ---------------------------------------------------------------

# wait_rejoin: waits (bounded by START_WAIT_S) until every server serves
# again after the last restart; 1 if they do not or the load ends first.
wait_rejoin() {
	local deadline=$((SECONDS + START_WAIT_S)) k=$PENDING
	[[ -n $PENDING ]] && log "   waiting for every server to serve again"
	while [[ -n $PENDING ]] && ((SECONDS < deadline)) && bench_alive; do
		poll_rejoin
		sleep 0.1
	done
	[[ -z $PENDING ]] && return 0
	log "failover.sh: the servers did not all serve again within ${START_WAIT_S} s after event $k" \
		"(modes: $(for ((i = 1; i <= ENS_N; i++)); do printf '%s ' "$(ens_mode "$i")"; done))"
	return 1
}

# timeline: the events, P apart; 1 if one could not happen.
timeline() {
	local k p_ms=$1 at=$((T0_MS + $1))
	for ((k = 1; k <= EVENTS; k++)); do
		wait_until "$at" || return 1
		if is_kill "$k"; then wait_rejoin || return 1; fi
		fault "$k" || return 1
		at=$((EV_MS[k] + p_ms))
	done
	wait_until $((EV_MS[EVENTS] + 2 * p_ms)) && wait_rejoin
}

# The load runs until this script stops it (SIGTERM: ringkeeper-bench then
# ends its measured window and reports), so a server slow to rejoin
# stretches the timeline instead of cutting the faults short: a fault only
# hits once every server serves again (else the figures would measure the
# rejoin).
FAILED=0
run() {
	local i hosts="" rc deadline p_ms=$((DURATION * 1000 / (EVENTS + 2)))
	log "== $TARGET: 3-server ensemble; faults ($FAULTS): ${ACTIONS[*]}, one every" \
		"$(awk -v p="$p_ms" 'BEGIN { printf "%.1f", p / 1000 }') s" \
		"(kf: SIGKILL a follower, kff: two, kl: the leader, r: restart them)"
	ens_setup "$WORK/$TARGET" "$TARGET" 3 || { log "failover.sh: no free ports found"; return 1; }
	for ((i = 1; i <= ENS_N; i++)); do
		ens_start "$i"
		hosts+="${hosts:+,}127.0.0.1:${ENS_PORT[i]}"
	done
	ens_wait_quorum "$START_WAIT_S" || return 1
	fourlw "${ENS_PORT[ENS_LEADER]}" srvr | sed -n 's/^Zookeeper version: \([^,]*\).*/\1/p' |
		sed 's/-[$]{.*//' | head -n 1 >"$WORK/version"
	log "   leader: server $ENS_LEADER; load on all three ($hosts)"
	local bound_s=$((DURATION + (EVENTS / 2 + 1) * START_WAIT_S))
	# --foreground: timeout then passes our SIGTERM to the bench alone; by
	# default it also signals its process group, and the bench, taking the
	# second SIGTERM as "kill now", died without its report (status 143).
	timeout --foreground -k 10 $((WARMUP + bound_s + 4 * BENCH_TIMEOUT + 120)) \
		"$BENCH_BIN" "$hosts" --reconnect --series "$WORK/series.csv" --series-ms "$SERIES_MS" \
		--sessions "$SESSIONS" --inflight "$INFLIGHT" --threads "$THREADS" \
		--read-ratio "$READ_RATIO" --value-size "$VALUE_SIZE" --keys "$KEYS" \
		--duration "$bound_s" --warmup "$WARMUP" --timeout "$BENCH_TIMEOUT" \
		${RATE:+--rate "$RATE"} >"$WORK/bench.out" 2>"$WORK/bench.err" </dev/null &
	CHILD_PID=$!
	deadline=$((SECONDS + 120))
	until T0_MS=$(sed -n 's/.*measuring from unix_ms=\([0-9]*\).*/\1/p' "$WORK/bench.err" 2>/dev/null) &&
		[[ -n $T0_MS ]]; do
		if ! bench_alive || ((SECONDS > deadline)); then
			log "failover.sh: ringkeeper-bench did not start its load; it said:"
			tail -n 10 "$WORK/bench.err" | sed 's/^/  /' >&2
			return 1
		fi
		sleep 0.05
	done
	timeline "$p_ms" || FAILED=1
	bench_alive && kill -TERM "$CHILD_PID"
	wait "$CHILD_PID"
	rc=$?
	CHILD_PID=
	if ((rc != 0 && rc != 3)); then # 3: some replies were errors, as expected here
		log "failover.sh: ringkeeper-bench exited $rc:"
		tail -n 10 "$WORK/bench.err" | sed 's/^/  /' >&2
		return 1
	fi
	# The series holds whole intervals; the figures end where it does.
	MEASURED_MS=$(awk -v w="$SERIES_MS" 'END { printf "%.0f", (NR - 1) * w }' "$WORK/series.csv")
	[[ -s $WORK/series.csv && -n $MEASURED_MS ]] || { log "failover.sh: ringkeeper-bench wrote no series"; return 1; }
	return 0
}

# ---- the figures -------------------------------------------------------------

offset_ms() { echo $(($1 - T0_MS)); } # unix ms -> ms since the load's measured start
secs() { awk -v t="$1" 'BEGIN { printf "%.2f", t / 1000 }'; } # ms -> "1.23"

event_label() { # k: "SIGKILL leader (s2)"
	local s=${EV_SERVER[$1]}
	echo "${EV_WHAT[$1]} (s${s// /+s})"
}

# Phases between the events: mean writes/s, reads/s and errors/s.
phases() {
	local bounds=(0) names=("all up") k
	for ((k = 1; k <= EVENTS; k++)); do
		[[ -n ${EV_MS[k]:-} ]] || break
		bounds+=("$(offset_ms "${EV_MS[k]}")")
		names+=("after $(event_label "$k")")
	done
	bounds+=("$MEASURED_MS")
	echo "| phase | from | to | setData/s | getData/s | errors/s |"
	echo "|---|---:|---:|---:|---:|---:|"
	for ((k = 0; k + 1 < ${#bounds[@]}; k++)); do
		awk -F, -v a="${bounds[k]}" -v b="${bounds[k + 1]}" -v name="${names[k]}" -v w="$SERIES_MS" '
			NR > 1 && $1 >= a - w / 2 && $1 < b - w / 2 { r += $3; wr += $4; e += $5; n++ }
			END { s = n * w / 1000; if (s <= 0) s = 1
				printf "| %s | %.1f s | %.1f s | %.0f | %.0f | %.0f |\n", name, a / 1000, b / 1000, wr / s, r / s, e / s }' \
			"$WORK/series.csv"
	done
}

# unavailable from_off to_off [clip]: "gap_ms from_ms to_ms", the longest
# stretch without a successful setData that ends after from_off and starts
# before to_off (the window's end counts if writes never came back); ms
# since the measured start; with clip, only its part within the window
# counts (so a stretch that starts just before the next fault is that
# fault's). Exact to the microsecond when longer than an interval: the
# series has each interval's first and last successful setData.
unavailable() {
	awk -F, -v kill="$1" -v restart="$2" -v clip="${3:-0}" -v end="$MEASURED_MS" '
		function gap(a, b) {
			if (clip) { a = a < kill ? kill : a; b = b > restart ? restart : b }
			if (b > kill && a < restart && b - a > best) { best = b - a; from = a; to = b } }
		NR > 1 && $6 != "" { gap(prev, $6 + 0); prev = $7 + 0 }
		END { gap(prev, end); printf "%.0f %.0f %.0f\n", best, from, to }' "$WORK/series.csv"
}

# recovery from_off restart_off to_off: "baseline low_pct recovered_ms
# errors" for a fault at from_off, restarted at restart_off, whose window
# ends at to_off (the next fault, or the end). Throughput at an instant is
# the mean of completed ops over the 300 ms centred on it; baseline is the
# mean over BASELINE_MS before the fault; low_pct the lowest throughput in
# the window, as a share of the baseline; recovered_ms how long after the
# fault throughput, having fallen below RECOVERED_PCT% of the baseline
# before the restart, first came back to it (0: it did not fall below
# before the restart; "-": it had not come back by to_off); errors
# completed in the window. A dip the restart causes shows in low_pct and
# in the plot, not in recovered_ms.
recovery() {
	awk -F, -v k="$1" -v r="$2" -v e="$3" -v w="$SERIES_MS" -v pct="$RECOVERED_PCT" -v bl="$BASELINE_MS" '
		NR > 1 { t[n] = $1; ops[n] = $3 + $4; err[n] = $5; n++ }
		END {
			for (i = 0; i < n; i++) if (t[i] >= k - bl && t[i] + w <= k) { b += ops[i]; nb++ }
			base = nb ? b / nb : 0
			low = -1; dipped = 0; rec = ""; seen = 0
			for (i = 0; i < n && t[i] < e; i++) {
				if (t[i] + w <= k) continue
				errs += err[i]
				if (i < 1 || i + 1 >= n) continue
				seen = 1
				a = (ops[i - 1] + ops[i] + ops[i + 1]) / 3
				if (low < 0 || a < low) low = a
				if (rec != "") continue
				if (a < base * pct / 100) { if (dipped || t[i] < r) dipped = 1 }
				else if (dipped) rec = sprintf("%.0f", t[i] + w / 2 - k)
			}
			if (base <= 0 || !seen) { printf "0 - - %d\n", errs; exit }
			if (!dipped) rec = 0
			else if (rec == "") rec = "-"
			printf "%.0f %.0f %s %d\n", base * 1000 / w, 100 * low / base, rec, errs
		}' "$WORK/series.csv"
}

# recovery_table: one row per fault; also written to $WORK/recovery.csv.
recovery_table() {
	local k j to from gap base low rec errs restart
	echo "| fault | at | ops/s before | lowest | throughput back to ${RECOVERED_PCT}% | writes unavailable | errors |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "event,what,servers,t_ms,baseline_ops_s,lowest_pct,recovered_ms,write_gap_ms,errors" >"$WORK/recovery.csv"
	for ((k = 1; k <= EVENTS; k++)); do
		if [[ -z ${EV_MS[k]:-} ]] || ! is_kill "$k"; then continue; fi
		to=$MEASURED_MS
		for ((j = k + 1; j <= EVENTS; j++)); do
			if [[ -n ${EV_MS[j]:-} ]] && is_kill "$j"; then to=$(offset_ms "${EV_MS[j]}"); break; fi
		done
		from=$(offset_ms "${EV_MS[k]}")
		restart=$to
		[[ -n ${EV_MS[k + 1]:-} ]] && restart=$(offset_ms "${EV_MS[k + 1]}")
		read -r base low rec errs < <(recovery "$from" "$restart" "$to")
		read -r gap _ < <(unavailable "$from" "$to" clip)
		echo "| $(event_label "$k") | $(secs "$from") s | $base | $low% |" \
			"$([[ $rec == - ]] && echo "not by the next fault" || echo "$rec ms") | $gap ms | $errs |"
		echo "$k,${EV_WHAT[k]},${EV_SERVER[k]// /+},$from,$base,$low,${rec/-/},$gap,$errs" >>"$WORK/recovery.csv"
	done
}

# log_ms since_ms pattern: the first line of any server's log matching the
# extended regex at or after since_ms, as "unix_ms server line".
log_ms() {
	local since i line
	since=$(utc_ms "$1")
	for ((i = 1; i <= ENS_N; i++)); do
		grep -E "$2" "$ENS_DIR/s$i/server.log" 2>/dev/null |
			awk -v s="$since" -v i="$i" 'substr($0, 1, 23) >= s { print substr($0, 1, 23) "\t" i "\t" $0; exit }'
	done | sort | head -n 1 | {
		IFS=$'\t' read -r ts i line || exit 0
		printf '%s %s %s\n' "$(date -u -d "$ts" +%s%3N)" "$i" "$line"
	}
}

# Log lines that mark the election, per server: the loss noticed, the
# leader elected, the leader serving.
case $TARGET in
ringkeeper)
	RE_NOTICED='looking for a leader'
	RE_ELECTED='zab: elected leader'
	RE_SERVING='serving clients as leader'
	RE_EXCERPT='zab: |serving clients as|signal|ringkeeper serving'
	;;
zookeeper)
	RE_NOTICED='Exception when following the leader|Peer state changed: looking'
	RE_ELECTED='Peer state changed: leading$'
	RE_SERVING='Peer state changed: leading - broadcast'
	RE_EXCERPT='Peer state changed|LEADER ELECTION TOOK|Exception when following|Snapshot loaded'
	;;
esac

vs_goal() { # ms goal_ms: "  (goal: under G ms: met|not met)"
	awk -v v="$1" -v g="$2" 'BEGIN { printf "   (goal: at most %d ms: %s)", g, (v <= g ? "met" : "NOT met") }'
}

# leader_kill k: writes unavailable and the election by the logs, after
# the leader's SIGKILL at event k (restarted at the next event, if any).
leader_kill() {
	local k=$1 i kill_off restart_off gap from to noticed elected serving n_ms e_ms s_ms=
	kill_off=$(offset_ms "${EV_MS[k]}")
	restart_off=$(offset_ms "${EV_MS[k + 1]:-$((T0_MS + MEASURED_MS))}")
	read -r gap from to < <(unavailable "$kill_off" "$restart_off")
	echo "After the SIGKILL of the leader (server ${EV_SERVER[k]}, at $(awk -v t="$kill_off" 'BEGIN { printf "%.3f", t / 1000 }') s):"
	echo
	echo "- writes unavailable for **$gap ms**: the longest stretch without a successful setData," \
		"from $((from - kill_off)) to $((to - kill_off)) ms after the SIGKILL$(vs_goal "$gap" "$GOAL_UNAVAILABLE_MS")"
	echo "$k $gap" >>"$WORK/leader_kills"
	noticed=$(log_ms "${EV_MS[k]}" "$RE_NOTICED")
	elected=$(log_ms "${EV_MS[k]}" "$RE_ELECTED")
	serving=$(log_ms "${EV_MS[k]}" "$RE_SERVING")
	if [[ -n $noticed ]]; then
		n_ms=${noticed%% *}
		echo "- loss of the leader noticed $((n_ms - EV_MS[k])) ms after the SIGKILL" \
			"(server $(echo "$noticed" | cut -d' ' -f2), \"$(grep -oE "$RE_NOTICED" <<<"$noticed" | head -n 1)\")"
		if [[ -n $elected ]]; then
			e_ms=${elected%% *}
			echo "- new leader, server $(echo "$elected" | cut -d' ' -f2), elected $((e_ms - n_ms)) ms after that" \
				"(\"${RE_ELECTED%$}\")$(vs_goal $((e_ms - n_ms)) "$GOAL_ELECTION_MS")"
		fi
		if [[ -n $serving ]]; then
			s_ms=${serving%% *}
			echo "- and serving clients $((s_ms - n_ms)) ms after the loss was noticed" \
				"($((s_ms - EV_MS[k])) ms after the SIGKILL; \"$RE_SERVING\")$(vs_goal $((s_ms - n_ms)) "$GOAL_ELECTION_MS")"
		fi
	else
		echo "- no \"$RE_NOTICED\" line in the logs after the SIGKILL: no election figures"
	fi
	echo
	echo "The servers' log lines around it (UTC; SIGKILL at $(utc_ms "${EV_MS[k]}")):"
	echo
	echo '```'
	for ((i = 1; i <= ENS_N; i++)); do
		grep -E "$RE_EXCERPT" "$ENS_DIR/s$i/server.log" 2>/dev/null |
			awk -v a="$(utc_ms "$((EV_MS[k] - 1000))")" -v b="$(utc_ms "$((${s_ms:-${EV_MS[k]}} + 1000))")" -v i="$i" \
				'{ t = substr($0, 1, 23) } t >= a && t <= b { print t " s" i " " substr($0, 25) }'
	done | sort | sed 's/\[QuorumPeer\[myid=[0-9]*\][^]]*\] //; s/org\.apache\.zookeeper\.server\.quorum\.//' |
		cut -c 1-200 | head -n 40
	echo '```'
	echo
}

report() {
	local k
	echo "### $TARGET: throughput through server failures"
	echo
	echo "Load: ringkeeper-bench --reconnect, $SESSIONS sessions x $INFLIGHT in flight on $THREADS threads" \
		"over all 3 servers, $(awk -v r="$READ_RATIO" 'BEGIN { printf "%.0f%% getData, %.0f%% setData", r * 100, (1 - r) * 100 }')," \
		"$VALUE_SIZE-byte values over $KEYS keys, ${RATE:+open loop at $RATE ops/s, }${WARMUP} s warmup +" \
		"$(awk -v t="$MEASURED_MS" 'BEGIN { printf "%.1f", t / 1000 }') s measured; a session whose connection fails counts its requests as errors" \
		"(CONNECTIONLOSS) and opens a new session on the next server; a request unanswered for" \
		"$BENCH_TIMEOUT s counts as a failed connection."
	echo
	echo "Events (s since the measured start):"
	for ((k = 1; k <= EVENTS; k++)); do
		[[ -n ${EV_MS[k]:-} ]] || continue
		printf -- '- %6.2f s: %s' "$(secs "$(offset_ms "${EV_MS[k]}")")" "$(event_label "$k")"
		if [[ -n ${GONE_MS[k]:-} ]]; then
			printf '; the process was gone (reaped) %d ms later' $((GONE_MS[k] - EV_MS[k]))
		elif [[ -n ${REJOIN_MS[k]:-} ]]; then
			printf '; every server served again (srvr answers leader or follower) %s s later' \
				"$(secs $((REJOIN_MS[k] - EV_MS[k])))"
		elif [[ ${EV_ACTION[k]} == r ]]; then
			printf '; not every server served again by the end of the run'
		fi
		echo
	done
	echo
	phases
	echo
	echo "Recovery from each fault: throughput at an instant is the mean of completed ops over the" \
		"300 ms centred on it; \"back\" when, having fallen below ${RECOVERED_PCT}% of its mean over the" \
		"$((BASELINE_MS / 1000)) s before the fault (before the restart), it first reaches that again (0 ms: it" \
		"did not fall below); lowest: the lowest throughput until the next fault (a restart's dip included); writes" \
		"unavailable: the longest stretch without a successful setData within that window."
	echo
	recovery_table
	echo
	: >"$WORK/leader_kills"
	for ((k = 1; k <= EVENTS; k++)); do
		[[ -n ${EV_MS[k]:-} && ${EV_ACTION[k]} == kl ]] && leader_kill "$k"
	done
	[[ -s $WORK/leader_kills ]] || echo "The leader was not killed; no election figures."
}

# series_text: the time series, one line per interval, with a bar.
series_text() {
	local marks="" k
	for ((k = 1; k <= EVENTS; k++)); do
		[[ -n ${EV_MS[k]:-} ]] && marks+="$(offset_ms "${EV_MS[k]}"):$(event_label "$k");"
	done
	echo "    t (s)  setData/s  getData/s  errors"
	awk -F, -v w="$SERIES_MS" -v marks="$marks" '
		BEGIN { n = split(marks, m, ";"); for (i = 1; i < n; i++) { split(m[i], p, ":"); at[i] = p[1]; what[i] = p[2] } }
		NR > 1 { t[NR] = $1; wr[NR] = $4; r[NR] = $3; e[NR] = $5; s = $3 + $4; if (s > max) max = s; last = NR }
		END {
			for (j = 2; j <= last; j++) {
				note = ""
				for (i = 1; i < n; i++) if (at[i] >= t[j] && at[i] < t[j] + w) note = note "  <- " what[i]
				bar = ""; len = max > 0 ? int(40 * (wr[j] + r[j]) / max + 0.5) : 0
				for (i = 0; i < len; i++) bar = bar "#"
				printf "%9.1f %10.0f %10.0f %7d  %-40s%s\n", t[j] / 1000, wr[j] * 1000 / w, r[j] * 1000 / w, e[j], bar, note
			}
		}' "$WORK/series.csv"
}

# plot png: ops/s over time with the events marked.
plot() {
	local png=$1 k x arrows="" curves
	if ! command -v gnuplot >/dev/null; then
		log "failover.sh: no gnuplot (apt-get install gnuplot-nox); no plot"
		return 0
	fi
	for ((k = 1; k <= EVENTS; k++)); do
		[[ -n ${EV_MS[k]:-} ]] || continue
		x=$(awk -v t="$(offset_ms "${EV_MS[k]}")" 'BEGIN { print t / 1000 }')
		arrows+="set arrow from $x, graph 0 to $x, graph 1 nohead dt 2 lc rgb 'gray40'"$'\n'
		arrows+="set label '$(event_label "$k")' at $x, graph 0.97 rotate by 90 right offset -0.8,0 font ',9'"$'\n'
	done
	local data="'$WORK/series.csv' every ::1 using (\$1/1000)" scale="*1000/$SERIES_MS"
	curves="plot $data:(\$4$scale) with lines lw 2 title 'setData'"
	[[ $READ_RATIO =~ ^0(\.0*)?$ ]] || curves+=", $data:(\$3$scale) with lines lw 2 title 'getData'"
	curves+=", $data:5 axes x1y2 with impulses lw 2 lc rgb 'red' title 'errors (right axis)'"
	gnuplot <<GP 2>"$WORK/gnuplot.err" || { log "failover.sh: gnuplot failed:"; sed 's/^/  /' "$WORK/gnuplot.err" >&2; return 0; }
set terminal png size 1000,540
set output "$png"
set datafile separator ","
set title "$TARGET, 3 servers: throughput through failures ($SESSIONS sessions x $INFLIGHT in flight, read ratio $READ_RATIO)"
set xlabel "time (s)"
set ylabel "ops/s (per ${SERIES_MS} ms, scaled)"
set yrange [0:*]
set key top right
set grid
$arrows
set y2label "errors per ${SERIES_MS} ms"
set y2range [0:*]
set y2tics
set ytics nomirror
$curves
GP
	echo "Plot: ${png#"$ROOT"/}"
}

# ---- main ------------------------------------------------------------------

mkdir -p "$OUT_DIR" || exit 2
STAMP=$(date '+%Y%m%d-%H%M%S')
BASE="$OUT_DIR/${NAME:-failover-$TARGET-$STAMP}"
GIT_AT_START=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] &&
	GIT_AT_START+=" (+ uncommitted changes)"
MACHINE_START=$(machine_ticks)
OURS_START=$(our_ticks)
T0_MS=
MEASURED_MS=

run || exit 1
ens_stop_all

series_text
echo
{
	report
	echo
	echo "Client side (ringkeeper-bench):"
	echo
	echo '```'
	grep -E '^(total|reads|writes|read errors|write errors|reconnects|longest)' "$WORK/bench.out"
	echo '```'
	echo
	if [[ $TARGET == zookeeper ]]; then
		echo "- Apache ZooKeeper $(cat "$WORK/version" 2>/dev/null),"  \
			"QuorumPeerMain, -Xmx$ZK_HEAP, $("$JAVA" -version 2>&1 | head -n 1)"
	else
		echo "- Ringkeeper $(cat "$WORK/version" 2>/dev/null), commit $GIT_AT_START at the start, build type" \
			"$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || echo '?')," \
			"${RK_CORES:+--cores $RK_CORES, }binary built $(date -r "$RK_BIN" '+%Y-%m-%d %H:%M')"
	fi
	echo "- zoo.cfg: tickTime=2000, initLimit=10, syncLimit=5, defaults otherwise; servers and load on 127.0.0.1"
	echo "- Machine: $(machine_line "$WORK"); other processes kept $(others_busy) of the CPUs busy during the run"
} | tee "$BASE.md"
cp "$WORK/series.csv" "$BASE.csv"
cp "$WORK/recovery.csv" "$BASE-recovery.csv"
{
	echo "t_ms,unix_ms,event,server"
	for ((k = 1; k <= EVENTS; k++)); do
		[[ -n ${EV_MS[k]:-} ]] && echo "$(offset_ms "${EV_MS[k]}"),${EV_MS[k]},${EV_WHAT[k]},${EV_SERVER[k]// /+}"
	done
} >"$BASE-events.csv"
cp "$WORK/bench.err" "$BASE-client.log"
echo
echo "CSV: ${BASE#"$ROOT"/}.csv (series), ${BASE#"$ROOT"/}-events.csv, ${BASE#"$ROOT"/}-recovery.csv;" \
	"client log ${BASE#"$ROOT"/}-client.log"
plot "$BASE.png"
exit "$FAILED"
