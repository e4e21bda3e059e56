#!/usr/bin/env bash
# The bench suite in one command: ZooKeeper's published curves, Ringkeeper
# and Apache ZooKeeper 3.8 side by side in the same run, with a do-nothing
# ceiling server for this machine's limit. Runs, one thing at a time:
#   1. throughput as the read ratio varies, 1, 3 and 5 servers (ensemble.sh)
#   2. the same load against ringkeeper-ceiling
#   3. latency percentiles per op type at a fixed offered load (open loop)
#   4. throughput over time through ZooKeeper's five failures (failover.sh)
#   5. memory with 1,000,000 znodes, watches and sessions; restart time
#      (restart.sh)
# and writes CSV for every series, PNG plots and summary.md with the ratios,
# the targets of issue 6 met or missed, and the machine. See bench/README.md,
# "suite.sh".
#
# Exit status: 0 when every part ran (whatever the figures); 1 when a part
# failed (a server did not start or died, a load failed: the summary says
# which and holds the rest); 2 bad usage or something missing.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD_DIR="$ROOT/build"
OUT_DIR=
ZK_LOG_LEVEL=${ZK_LOG_LEVEL:-info}
STOP_WAIT_S=60   # a part's script stopping its servers; then SIGKILL
START_WAIT_S=90  # a server must answer within this
QUICK=0
PARTS=(ratio ceiling latency failover memory)

# The load of parts 1, 3 and 5, as ZooKeeper's benchmark: 1 KiB values.
SESSIONS=32
INFLIGHT=8
THREADS=2
VALUE_SIZE=1024
KEYS=1000
LATENCY_READ_RATIO=0.9
LATENCY_SHARE=25 # offered load: this % of the lower closed-loop figure at that ratio
LATENCY_RATE_DEFAULT=5000 # if part 1 measured nothing to size it from

# Targets of issue 6 (ratio to Apache ZooKeeper in the same run).
T_READS=8
T_MIX=6
T_WRITES=3
T_P99=5       # ZooKeeper's p99 / Ringkeeper's, at 90% reads
T_RSS=4       # ZooKeeper's RSS / Ringkeeper's, with the znodes
T_ENSEMBLE=3  # every point of the 3-server curve
T_CEILING=2   # ceiling / Ringkeeper, reads

usage() {
	cat <<EOF
usage: bench/suite.sh [--quick] [--out DIR] [--build DIR] [--only PART,...]
  --quick      a smoke run within about 3 minutes: fewer and shorter points,
               1 and 3 servers only, memory at a smaller scale (the summary
               says so); the figures are then only an order of magnitude
  --out DIR    where summary.md, the CSV and PNG files go
               (default build/bench-results/suite-<stamp>)
  --build DIR  where bin/ringkeeper, ringkeeper-bench, ringkeeper-ceiling and
               ringkeeper-hold are (default build)
  --only LIST  run only these parts: ${PARTS[*]}
Environment: JAVA, ZK_JAR, ZK_CONF_DIR, SLF4J_JAR, ZK_HEAP (ensembles 1g,
memory 2g), RK_CORES, TMPDIR, KEEP_WORK=1 (keep the parts' workspaces),
RK_SOURCE_NOTE (said of the build's source when it is not a git checkout).
EOF
}

while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--out) OUT_DIR=${2:-}; shift ;;
	--build) BUILD_DIR=$(cd "${2:-.}" 2>/dev/null && pwd) || { echo "suite.sh: no dir '${2:-}'" >&2; exit 2; }; shift ;;
	--only)
		IFS=', ' read -r -a PARTS <<<"${2:-}"
		for p in "${PARTS[@]}"; do
			[[ " ratio ceiling latency failover memory " == *" $p "* ]] || { usage >&2; exit 2; }
		done
		shift
		;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

# ---- scale -------------------------------------------------------------------

if ((QUICK)); then
	RATIOS=(0.0 0.9 1.0)
	SIZES=(1 3)
	WARMUP=1 DURATION=2
	FAULTS=leader FAILOVER_DURATION=12 # four events two seconds apart
	LATENCY_S=3
	ZNODES=20000 WATCHES=20000 WATCH_SESSIONS=20 MEM_SESSIONS=5000 RESTART_RUNS=1
else
	RATIOS=(0.0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0)
	SIZES=(1 3 5)
	WARMUP=1 DURATION=5
	FAULTS=paper FAILOVER_DURATION=48 # ten events four seconds apart
	LATENCY_S=10
	ZNODES=1000000 WATCHES=1000000 WATCH_SESSIONS=1000 MEM_SESSIONS=100000 RESTART_RUNS=2
fi
FAILOVER_READ_RATIO=0.7 # 30% writes, as ZooKeeper's figure
FAILOVER_WRITE_PCT=$(awk -v r="$FAILOVER_READ_RATIO" 'BEGIN { printf "%d", (1 - r) * 100 + 0.5 }')
if [[ $FAULTS == paper ]]; then
	FAULT_GAP_S=$((FAILOVER_DURATION / 12)) # failover.sh: DURATION / (events + 2)
	FAULT_NAMES=("1 a follower fails and recovers" "2 another follower fails and recovers"
		"3 the leader fails (restarted)" "4 two followers fail and recover (quorum lost)"
		"5 another leader fails (restarted)")
else
	FAULT_GAP_S=$((FAILOVER_DURATION / 6))
	FAULT_NAMES=("1 a follower fails and recovers" "2 the leader fails (restarted)")
fi

# ---- prerequisites -------------------------------------------------------------

RK_BIN=${RK_BIN:-$BUILD_DIR/bin/ringkeeper}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bin/ringkeeper-bench}
CEILING_BIN=${CEILING_BIN:-$BUILD_DIR/bin/ringkeeper-ceiling}
HOLD_BIN=${HOLD_BIN:-$BUILD_DIR/bin/ringkeeper-hold}
for b in "$RK_BIN" "$BENCH_BIN" "$CEILING_BIN" "$HOLD_BIN"; do
	if [[ ! -x $b ]]; then
		log "suite.sh: $b is missing; build first:"
		log "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j\$(nproc)"
		exit 2
	fi
done
find_zookeeper || exit 2
command -v gnuplot >/dev/null || log "suite.sh: no gnuplot (apt-get install gnuplot-nox, or tools/deps.sh): no PNG plots"
export RK_BIN BENCH_BIN HOLD_BIN JAVA ZK_JAR ZK_CONF_DIR SLF4J_JAR

STAMP=$(date '+%Y%m%d-%H%M%S')
OUT_DIR=${OUT_DIR:-$ROOT/build/bench-results/suite-$STAMP}
RAW="$OUT_DIR/raw"
mkdir -p "$RAW" || exit 2
bench_workspace suite
T_START=$SECONDS
MACHINE_START=$(machine_ticks)
OURS_START=$(our_ticks)
# What the servers were built from: the build's source tree, a git
# checkout (commit, and whether it had changes) or not.
SRC_DIR=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null)
if GIT_AT_START=$(git -C "${SRC_DIR:-$ROOT}" rev-parse --short HEAD 2>/dev/null); then
	[[ -n $(git -C "${SRC_DIR:-$ROOT}" status --porcelain --untracked-files=no 2>/dev/null) ]] &&
		GIT_AT_START+=" (+ uncommitted changes)"
	GIT_AT_START="commit $GIT_AT_START"
else
	GIT_AT_START="built from ${SRC_DIR:-?}${RK_SOURCE_NOTE:+ ($RK_SOURCE_NOTE)}"
fi
FAILED_PARTS=()

# ---- running the parts -----------------------------------------------------------

elapsed() { printf '%d:%02d' $(((SECONDS - T_START) / 60)) $(((SECONDS - T_START) % 60)); }
progress() { log "[suite $(elapsed)] $*"; }

# sub name cmd...: runs one of the bench scripts with its report in
# raw/name.out and its progress lines shown indented as they come; returns
# its status. On Ctrl-C the trap stops it (CHILD_PID), and it its servers.
sub() {
	local name=$1 rc
	shift
	"$@" >"$RAW/$name.out" 2>"$RAW/$name.log" </dev/null &
	CHILD_PID=$!
	tail -n +1 -s 0.2 -f --pid="$CHILD_PID" "$RAW/$name.log" 2>/dev/null | sed -u 's/^/      /' >&2
	wait "$CHILD_PID"
	rc=$?
	CHILD_PID=
	((rc == 0)) || log "suite.sh: $name exited $rc (its output: ${RAW#"$ROOT"/}/$name.out, .log)"
	return "$rc"
}

part_failed() { FAILED_PARTS+=("$1"); }

wants() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }

# Part 1: every size through ensemble.sh, both servers.
run_ratio() {
	local n
	for n in "${SIZES[@]}"; do
		progress "1/5 throughput vs read ratio: $( ((n == 1)) && echo standalone || echo "$n servers"), ${#RATIOS[@]} ratios x ${WARMUP}+${DURATION} s, ZooKeeper then Ringkeeper"
		sub "ratio-n$n" "$ROOT/bench/ensemble.sh" --servers "$n" --ratios "$(IFS=,; echo "${RATIOS[*]}")" \
			--warmup "$WARMUP" --duration "$DURATION" --sessions "$SESSIONS" --inflight "$INFLIGHT" \
			--threads "$THREADS" --build "$BUILD_DIR" --out "$RAW" --name "ratio-n$n" ||
			part_failed "throughput, $n servers"
	done
}

# Part 2: ZooKeeper's reliability figure, both servers.
run_failover() {
	local t
	for t in zookeeper ringkeeper; do
		progress "4/5 throughput through failures: $t, 3 servers, $FAILOVER_WRITE_PCT% writes, ${#FAULT_NAMES[@]} faults ($FAULTS), events $FAULT_GAP_S s apart"
		sub "failover-$t" "$ROOT/bench/failover.sh" --target "$t" --faults "$FAULTS" \
			--duration "$FAILOVER_DURATION" --read-ratio "$FAILOVER_READ_RATIO" \
			--build "$BUILD_DIR" --out "$RAW" --name "failover-$t" || part_failed "failover, $t"
		cp "$RAW/failover-$t.csv" "$OUT_DIR/failover-$t.csv" 2>/dev/null
		cp "$RAW/failover-$t-events.csv" "$OUT_DIR/failover-$t-events.csv" 2>/dev/null
		cp "$RAW/failover-$t-recovery.csv" "$OUT_DIR/failover-$t-recovery.csv" 2>/dev/null
	done
}

# Part 4: restart.sh with the memory steps, both servers.
run_memory() {
	progress "5/5 memory and restart: $ZNODES znodes of 100 bytes, $WATCHES watches, $MEM_SESSIONS sessions; Ringkeeper then ZooKeeper$( ((QUICK)) && echo " (--quick: scaled down)")"
	sub memory "$ROOT/bench/restart.sh" --zookeeper --znodes "$ZNODES" --value-size 100 \
		--runs "$RESTART_RUNS" --watches "$WATCHES" --watch-sessions "$WATCH_SESSIONS" \
		--sessions "$MEM_SESSIONS" --build "$BUILD_DIR" --out "$RAW" --name memory ||
		part_failed "memory and restart"
	cp "$RAW/memory.csv" "$OUT_DIR/memory.csv" 2>/dev/null
}

# bench_csv out ratio hosts [extra args]: one closed- or open-loop run of
# ringkeeper-bench with the suite's load; its CSV (header + line) in out.
bench_csv() {
	local out=$1 ratio=$2 hosts=$3 rc
	shift 3
	timeout -k 5 $((WARMUP + DURATION + LATENCY_S + 90)) \
		"$BENCH_BIN" "$hosts" --sessions "$SESSIONS" --inflight "$INFLIGHT" --threads "$THREADS" \
		--read-ratio "$ratio" --value-size "$VALUE_SIZE" --keys "$KEYS" --warmup "$WARMUP" \
		--timeout 10 --csv-header "$@" >"$out" 2>"$out.err" </dev/null &
	CHILD_PID=$!
	wait "$CHILD_PID"
	rc=$?
	CHILD_PID=
	if ((rc != 0)); then
		log "suite.sh: ringkeeper-bench against $hosts (read ratio $ratio) exited $rc:"
		tail -n 5 "$out.err" | sed 's/^/  /' >&2
	fi
	[[ $(wc -l <"$out") -ge 2 ]] || return 1
	((rc == 0 || rc == 3))
}

# Part 5: the ceiling server, the same load at every ratio.
# start_ceiling: ringkeeper-ceiling on a free port (CEILING_PORT), as
# SERVER_PID; 1 if it does not answer srvr.
start_ceiling() {
	local deadline
	CEILING_PORT=$(free_port) || return 1
	"$CEILING_BIN" --port "$CEILING_PORT" --value-size "$VALUE_SIZE" >>"$RAW/ceiling.log" 2>&1 </dev/null &
	SERVER_PID=$!
	deadline=$((SECONDS + 10))
	until fourlw "$CEILING_PORT" srvr | grep -q '^Mode:'; do
		if ((SECONDS > deadline)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
			log "suite.sh: ringkeeper-ceiling did not answer on port $CEILING_PORT"
			stop_pid "$SERVER_PID"
			SERVER_PID=
			return 1
		fi
		sleep 0.05
	done
}

run_ceiling() {
	local ratio port
	progress "2/5 ceiling: ringkeeper-ceiling, ${#RATIOS[@]} ratios x ${WARMUP}+${DURATION} s"
	start_ceiling || { part_failed "ceiling"; return; }
	port=$CEILING_PORT
	for ratio in "${RATIOS[@]}"; do
		log "      read ratio $ratio"
		bench_csv "$WORK/ceiling-$ratio.csv" "$ratio" "127.0.0.1:$port" --duration "$DURATION" ||
			part_failed "ceiling, read ratio $ratio"
	done
	stop_pid "$SERVER_PID"
	SERVER_PID=
}

# latency_rate: LATENCY_SHARE% of the lower of the two servers' standalone
# closed-loop ops/s at LATENCY_READ_RATIO from part 1, so both run below
# saturation; a default if part 1 did not run.
latency_rate() {
	awk -F, -v r="$LATENCY_READ_RATIO" -v share="$LATENCY_SHARE" -v dflt="$LATENCY_RATE_DEFAULT" '
		NR > 1 && $1 != "ceiling" && $2 == 1 && $3 + 0 == r + 0 && $4 > 0 { if (min == "" || $4 < min) min = $4 }
		END { if (min == "") print dflt; else printf "%.0f\n", min * share / 100 }' "$OUT_DIR/throughput.csv" 2>/dev/null ||
		echo "$LATENCY_RATE_DEFAULT"
}

# Part 3: open loop at a fixed rate, each server standalone, then the
# ceiling: the latency this machine and load generator add by themselves.
run_latency() {
	local t rate ZK_HEAP=${ZK_HEAP:-1g}
	rate=$(latency_rate)
	echo "$rate" >"$WORK/latency.rate"
	for t in zookeeper ringkeeper; do
		progress "3/5 latency: $t standalone, open loop at $rate ops/s, $(awk -v r="$LATENCY_READ_RATIO" 'BEGIN { print r * 100 }')% reads, ${LATENCY_S} s"
		ens_setup "$WORK/latency-$t" "$t" 1 || { part_failed "latency, $t"; continue; }
		ens_start 1
		if ! ens_wait_quorum "$START_WAIT_S"; then
			part_failed "latency, $t"
			ens_stop_all
			continue
		fi
		bench_csv "$WORK/latency-$t.csv" "$LATENCY_READ_RATIO" "127.0.0.1:${ENS_PORT[1]}" \
			--duration "$LATENCY_S" --rate "$rate" --inflight 64 || part_failed "latency, $t"
		ens_stop_all
	done
	progress "3/5 latency: the ceiling, the same"
	if start_ceiling; then
		bench_csv "$WORK/latency-ceiling.csv" "$LATENCY_READ_RATIO" "127.0.0.1:$CEILING_PORT" \
			--duration "$LATENCY_S" --rate "$rate" --inflight 64 || part_failed "latency, ceiling"
		stop_pid "$SERVER_PID"
		SERVER_PID=
	else
		part_failed "latency, ceiling"
	fi
}

# ---- the series as CSV ---------------------------------------------------------------

# throughput.csv: target,servers,read_ratio and the bench's figures, from
# part 1's per-size files and part 5's runs.
COLS="ops_per_s,reads_per_s,writes_per_s,read_p50_us,read_p99_us,read_p999_us,write_p50_us,write_p99_us,write_p999_us,read_errors,write_errors"
pick_cols() { # prefix: the bench CSV on stdin -> prefix,COLS per data line
	awk -F, -v pre="$1" -v cols="$COLS" '
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; n = split(cols, k, ","); next }
		{ line = pre; for (i = 1; i <= n; i++) line = line "," $c[k[i]]; print line }'
}

write_throughput_csv() {
	local n f ratio
	{
		echo "target,servers,read_ratio,$COLS"
		for n in "${SIZES[@]}"; do
			f="$RAW/ratio-n$n.csv"
			[[ -s $f ]] || continue
			awk -F, -v cols="$COLS" '
				NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; n = split(cols, k, ","); next }
				{ line = $1 "," $2 "," sprintf("%.1f", $c["read_ratio"]); for (i = 1; i <= n; i++) line = line "," $c[k[i]]; print line }' "$f"
		done
		for ratio in "${RATIOS[@]}"; do
			f="$WORK/ceiling-$ratio.csv"
			[[ -s $f ]] && pick_cols "ceiling,1,$ratio" <"$f"
		done
	} >"$OUT_DIR/throughput.csv"
}

write_latency_csv() {
	local t
	{
		echo "target,offered_ops_s,read_ratio,$COLS"
		for t in ringkeeper zookeeper ceiling; do
			[[ -s $WORK/latency-$t.csv ]] && pick_cols "$t,$(cat "$WORK/latency.rate"),$LATENCY_READ_RATIO" <"$WORK/latency-$t.csv"
		done
	} >"$OUT_DIR/latency.csv"
}

# ---- figures out of the CSV ------------------------------------------------------------

# tp target servers ratio column: one figure from throughput.csv, or nothing.
tp() {
	awk -F, -v t="$1" -v n="$2" -v r="$3" -v col="$4" '
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$1 == t && $2 == n && $3 + 0 == r + 0 { print $c[col]; exit }' "$OUT_DIR/throughput.csv" 2>/dev/null
}

lat() { # target column: from latency.csv
	awk -F, -v t="$1" -v col="$2" '
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$1 == t { print $c[col]; exit }' "$OUT_DIR/latency.csv" 2>/dev/null
}

mem() { # server column: from memory.csv
	awk -F, -v t="$1" -v col="$2" '
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$1 == t { print $c[col]; exit }' "$OUT_DIR/memory.csv" 2>/dev/null
}

grp() { # 1234567.8 -> 1,234,568
	awk -v x="$1" 'BEGIN { if (x == "") { printf "-"; exit } n = sprintf("%.0f", x); s = ""
		while (length(n) > 3) { s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3) }
		printf "%s%s", n, s }'
}

ratio_of() { # a b: "a/b" with two decimals, or "-"
	awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'
}

server_name() { # ringkeeper -> Ringkeeper
	case $1 in
	ringkeeper) echo Ringkeeper ;;
	zookeeper) echo "Apache ZooKeeper" ;;
	ceiling) echo "ceiling (does nothing)" ;;
	esac
}

ms() { awk -v u="$1" 'BEGIN { if (u == "") printf "-"; else printf "%.2f", u / 1000 }'; }

label() { # ratio -> "90% reads"
	awk -v r="$1" 'BEGIN { printf "%d%% reads", r * 100 + 0.5 }'
}

# ---- plots -------------------------------------------------------------------------------

plot_ratio() {
	local png="$OUT_DIR/throughput.png" n dat="$WORK/ratio.dat" lines=() t color
	command -v gnuplot >/dev/null && [[ -s $OUT_DIR/throughput.csv ]] || return 0
	# One block per (target, size): "read% ops/s".
	: >"$dat"
	local idx=0
	for t in ringkeeper zookeeper ceiling; do
		for n in "${SIZES[@]}"; do
			[[ $t == ceiling && $n != 1 ]] && continue
			awk -F, -v t="$t" -v n="$n" 'NR > 1 && $1 == t && $2 == n { printf "%g %s\n", $3 * 100, $4 }' \
				"$OUT_DIR/throughput.csv" | sort -n >"$WORK/ratio-$t-$n.dat"
			[[ -s $WORK/ratio-$t-$n.dat ]] || continue
			case $n in 1) color="#1b9e77" ;; 3) color="#d95f02" ;; *) color="#7570b3" ;; esac
			case $t in
			ringkeeper) lines+=("'$WORK/ratio-$t-$n.dat' using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '$color' title 'Ringkeeper, $( ((n == 1)) && echo "1 server" || echo "$n servers")'") ;;
			zookeeper) lines+=("'$WORK/ratio-$t-$n.dat' using 1:2 with linespoints lw 2 dt 2 pt 6 ps 1.2 lc rgb '$color' title 'ZooKeeper, $( ((n == 1)) && echo "1 server" || echo "$n servers")'") ;;
			ceiling) lines+=("'$WORK/ratio-$t-$n.dat' using 1:2 with linespoints lw 2 dt 3 pt 2 lc rgb 'black' title 'ceiling (do-nothing server)'") ;;
			esac
			idx=$((idx + 1))
		done
	done
	((idx)) || return 0
	gnuplot <<EOF 2>"$WORK/gnuplot-ratio.err" || { log "suite.sh: gnuplot failed:"; sed 's/^/  /' "$WORK/gnuplot-ratio.err" >&2; }
set terminal pngcairo size 1100,600 font ",11" noenhanced
set output "$png"
set title "Throughput as the read-write ratio varies\n$VALUE_SIZE-byte values, $SESSIONS sessions x $INFLIGHT requests in flight on the non-leader servers (log scale)"
set xlabel "Percentage of read requests"
set ylabel "Operations per second"
set xrange [-3:103]
set xtics 0,10,100
set logscale y
set format y "%.0s%c"
set grid
set key outside right center
plot $(IFS=,; echo "${lines[*]}")
EOF
}

# plot_failover: both servers, one panel each, total ops/s per 100 ms with
# the faults numbered as in ZooKeeper's figure and restarts dotted.
# fault_legend: the numbered faults on two lines, then what the marks mean.
fault_legend() {
	local n=${#FAULT_NAMES[@]} h
	h=$(((n + 1) / 2))
	(IFS=';'; printf '%s' "${FAULT_NAMES[*]:0:h}" | sed 's/;/; /g')
	((n > h)) && printf '\\n%s' "$(IFS=';'; printf '%s' "${FAULT_NAMES[*]:h}" | sed 's/;/; /g')"
	printf '\\n%s' "red lines: the faults (SIGKILL); dotted: the restarts"
}

plot_failover() {
	local png="$OUT_DIR/failover.png" t rows=0 panels=""
	command -v gnuplot >/dev/null || return 0
	for t in ringkeeper zookeeper; do [[ -s $OUT_DIR/failover-$t.csv ]] && rows=$((rows + 1)); done
	((rows)) || return 0
	for t in ringkeeper zookeeper; do
		[[ -s $OUT_DIR/failover-$t.csv ]] || continue
		local marks="" fault=0
		while IFS=, read -r t_ms _ what _; do
			local x
			x=$(awk -v t="$t_ms" 'BEGIN { print t / 1000 }')
			if [[ $what == SIGKILL* ]]; then
				fault=$((fault + 1))
				marks+="set arrow from $x, graph 0 to $x, graph 1 nohead lw 1.5 lc rgb 'red'"$'\n'
				marks+="set label '$fault' at $x, graph 0.92 offset 0.7,0 font ',12' tc rgb 'red'"$'\n'
			else
				marks+="set arrow from $x, graph 0 to $x, graph 1 nohead dt 3 lc rgb 'gray30'"$'\n'
			fi
		done < <(tail -n +2 "$OUT_DIR/failover-$t-events.csv")
		panels+="unset arrow; unset label"$'\n'"$marks"
		panels+="set title '$( [[ $t == ringkeeper ]] && echo Ringkeeper || echo 'Apache ZooKeeper 3.8')'"$'\n'
		panels+="plot '$OUT_DIR/failover-$t.csv' every ::1 using (\$1/1000):((\$3+\$4)*10) with lines lw 1.5 lc rgb '#1f78b4' notitle"$'\n'
	done
	gnuplot <<EOF 2>"$WORK/gnuplot-failover.err" || { log "suite.sh: gnuplot failed:"; sed 's/^/  /' "$WORK/gnuplot-failover.err" >&2; }
set terminal pngcairo size 1000,$((300 * rows + 110)) font ",11" noenhanced
set output "$png"
set datafile separator ","
set multiplot layout $rows,1 title "Throughput through failures, 3 servers, $FAILOVER_WRITE_PCT% writes\n$(fault_legend)" font ",10"
set xlabel "Seconds since the start of the load"
set ylabel "Operations per second"
set yrange [0:*]
set format y "%.0s%c"
set grid
$panels
unset multiplot
EOF
}

plot_latency() {
	local png="$OUT_DIR/latency.png" dat="$WORK/latency.dat"
	command -v gnuplot >/dev/null && [[ $(wc -l <"$OUT_DIR/latency.csv" 2>/dev/null) -ge 2 ]] || return 0
	{
		for t in ringkeeper zookeeper ceiling; do
			[[ -n $(lat "$t" ops_per_s) ]] || continue
			local name
			name=$(server_name "$t" | sed 's/Apache //; s/ (does nothing)//')
			echo "\"$name getData\" $(ms "$(lat "$t" read_p50_us)") $(ms "$(lat "$t" read_p99_us)") $(ms "$(lat "$t" read_p999_us)")"
			echo "\"$name setData\" $(ms "$(lat "$t" write_p50_us)") $(ms "$(lat "$t" write_p99_us)") $(ms "$(lat "$t" write_p999_us)")"
		done
	} >"$dat"
	gnuplot <<EOF 2>"$WORK/gnuplot-latency.err" || { log "suite.sh: gnuplot failed:"; sed 's/^/  /' "$WORK/gnuplot-latency.err" >&2; }
set terminal pngcairo size 1100,500 font ",10" noenhanced
set output "$png"
set title "Latency at $(grp "$(cat "$WORK/latency.rate")") ops/s offered, $(label "$LATENCY_READ_RATIO"), standalone (open loop)"
set ylabel "ms (log scale)"
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set grid ytics
set yrange [0.01:*]
set xrange [-0.6:$(($(wc -l <"$dat") - 1)).6]
plot "$dat" using 2:xtic(1) title "p50" lc rgb '#a6cee3', '' using 3 title "p99" lc rgb '#1f78b4', '' using 4 title "p99.9" lc rgb '#08306b'
EOF
}

# ---- the summary ---------------------------------------------------------------------------

# verdict ok: "met" or "**missed**"
verdict() { (($1)) && echo "met" || echo "**missed**"; }

# ge a b: 1 if a >= b (floats), else 0; 0 if either is missing.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "" && b != "" && a != "-" && b != "-" && a + 0 >= b + 0) ? 1 : 0 }'; }

# target_row text figure ok why: one row of the targets table; a figure
# with a "-" where a number should be was not measured.
target_row() {
	if [[ -z $2 || $2 == -* || $2 == *"(- vs -"* || $2 == *" -x"* ]]; then
		echo "| $1 | not measured | - | a part failed or did not run |"
	elif (($3)); then
		echo "| $1 | $2 | met | |"
	else
		echo "| $1 | $2 | **missed** | $4 |"
	fi
}

targets() {
	local rk zk x c why busy
	busy="; other processes kept $BUSY of the CPUs busy"
	echo "| target (ratio to Apache ZooKeeper, same run) | this run | | why, when missed |"
	echo "|---|---|---|---|"
	rk=$(tp ringkeeper 1 1.0 ops_per_s) zk=$(tp zookeeper 1 1.0 ops_per_s) c=$(tp ceiling 1 1.0 ops_per_s)
	x=$(ratio_of "$rk" "$zk")
	if (($(ge "$(ratio_of "$c" "$zk")" "$T_READS"))); then
		why="Ringkeeper reached $(ratio_of "$rk" "$c") of the do-nothing ceiling ($(grp "$c")/s)$busy"
	else
		why="out of reach here: even the do-nothing ceiling is only $(ratio_of "$c" "$zk")x ZooKeeper, the load generator sharing the 2 cores$busy"
	fi
	target_row "standalone reads >= ${T_READS}x" "${x}x ($(grp "$rk") vs $(grp "$zk") getData/s)" "$(ge "$x" "$T_READS")" "$why"
	rk=$(tp ringkeeper 1 0.9 ops_per_s) zk=$(tp zookeeper 1 0.9 ops_per_s)
	x=$(ratio_of "$rk" "$zk")
	why="a read behind its session's pending setData waits, and the session's later requests wait behind it (ZooKeeper's order), so the mix goes at the pace of write latency: setData p50 $(ms "$(tp ringkeeper 1 0.9 write_p50_us)") vs $(ms "$(tp zookeeper 1 0.9 write_p50_us)") ms (a 4 KiB O_DSYNC write: $SYNC_MS ms)$busy"
	target_row "standalone 90% reads >= ${T_MIX}x" "${x}x ($(grp "$rk") vs $(grp "$zk") ops/s)" "$(ge "$x" "$T_MIX")" "$why"
	rk=$(tp ringkeeper 1 0.0 ops_per_s) zk=$(tp zookeeper 1 0.0 ops_per_s)
	x=$(ratio_of "$rk" "$zk")
	why="setData p50 $(ms "$(tp ringkeeper 1 0.0 write_p50_us)") vs $(ms "$(tp zookeeper 1 0.0 write_p50_us)") ms with $((SESSIONS * INFLIGHT)) in flight (a 4 KiB O_DSYNC write: $SYNC_MS ms)$busy"
	target_row "standalone writes >= ${T_WRITES}x" "${x}x ($(grp "$rk") vs $(grp "$zk") setData/s)" "$(ge "$x" "$T_WRITES")" "$why"
	local rr rw zr zw
	rr=$(lat ringkeeper read_p99_us) rw=$(lat ringkeeper write_p99_us) zr=$(lat zookeeper read_p99_us) zw=$(lat zookeeper write_p99_us)
	local okr okw
	okr=$(ge "$(ratio_of "$zr" "$rr")" "$T_P99") okw=$(ge "$(ratio_of "$zw" "$rw")" "$T_P99")
	why="p99 getData / setData: Ringkeeper $(ms "$rr") / $(ms "$rw") ms, ZooKeeper $(ms "$zr") / $(ms "$zw") ms; the do-nothing ceiling's own p99 at this rate: $(ms "$(lat ceiling read_p99_us)") ms$busy"
	target_row "standalone p99 at 90% reads <= 1/${T_P99} of ZooKeeper's (each op type, open loop)" \
		"$( [[ -n $rr && -n $zr ]] && echo "getData 1/$(ratio_of "$zr" "$rr"), setData 1/$(ratio_of "$zw" "$rw")" || echo -)" \
		"$((okr && okw))" "$why"
	rk=$(mem ringkeeper rss_after_restart_kib) zk=$(mem zookeeper rss_after_restart_kib)
	x=$(ratio_of "$zk" "$rk")
	why="Ringkeeper: $(per_znode ringkeeper); ZooKeeper (JVM, -Xmx${ZK_HEAP:-2g}): $(per_znode zookeeper)"
	target_row "RSS with $(grp "$ZNODES") znodes <= 1/${T_RSS} of ZooKeeper's$( ((QUICK)) && echo " (quick: fewer znodes)")" \
		"$( [[ -n $rk && -n $zk ]] && echo "1/${x} ($((rk / 1024)) vs $((zk / 1024)) MiB)" || echo -)" "$(ge "$x" "$T_RSS")" "$why"
	local worst="" wr=""
	for x in "${RATIOS[@]}"; do
		local r
		r=$(ratio_of "$(tp ringkeeper 3 "$x" ops_per_s)" "$(tp zookeeper 3 "$x" ops_per_s)")
		[[ $r == - ]] && continue
		if [[ -z $worst ]] || (($(ge "$worst" "$r"))); then worst=$r wr=$x; fi
	done
	why="lowest at $(label "${wr:-0}"): $(grp "$(tp ringkeeper 3 "${wr:-0}" ops_per_s)") vs $(grp "$(tp zookeeper 3 "${wr:-0}" ops_per_s)") ops/s; three servers and the load share 2 cores$busy"
	target_row "3 servers: every point of the read-ratio curve >= ${T_ENSEMBLE}x" \
		"$( [[ -n $worst ]] && echo "lowest ${worst}x at $(label "$wr")" || echo -)" "$(ge "$worst" "$T_ENSEMBLE")" "$why"
	rk=$(tp ringkeeper 1 1.0 ops_per_s) c=$(tp ceiling 1 1.0 ops_per_s)
	x=$(ratio_of "$c" "$rk")
	why="Ringkeeper reached $(ratio_of "$rk" "$c") of the ceiling, which answers from one canned buffer$busy"
	target_row "standalone reads within ${T_CEILING}x of the ceiling" \
		"$( [[ $x != - ]] && echo "ceiling ${x}x Ringkeeper ($(grp "$c") vs $(grp "$rk"))" || echo -)" \
		"$(awk -v x="$x" -v t="$T_CEILING" 'BEGIN { print (x != "-" && x + 0 <= t) ? 1 : 0 }')" "$why"
	echo
	echo "Other processes kept $BUSY of the CPUs busy during the run (from /proc/stat, less what the" \
		"suite started): every figure above carries that noise."
}

# per_znode server: "E MiB empty + B bytes per znode" from memory.csv.
per_znode() {
	awk -v e="$(mem "$1" rss_empty_kib)" -v r="$(mem "$1" rss_after_restart_kib)" -v n="$ZNODES" \
		'BEGIN { if (e == "" || r == "") printf "-"; else printf "%.0f MiB empty + %.0f bytes per znode", e / 1024, (r - e) * 1024 / n }'
}

ratio_table() {
	local r n head="| reads |" sep="|---:|"
	for n in "${SIZES[@]}"; do
		head+=" Ringkeeper $( ((n == 1)) && echo standalone || echo "$n") | ZooKeeper $( ((n == 1)) && echo standalone || echo "$n") | ratio |"
		sep+="---:|---:|---:|"
	done
	echo "$head ceiling | Ringkeeper / ceiling |"
	echo "$sep---:|---:|"
	for r in "${RATIOS[@]}"; do
		local row
		row="| $(awk -v r="$r" 'BEGIN { printf "%d%%", r * 100 + 0.5 }') |"
		for n in "${SIZES[@]}"; do
			local rk zk
			rk=$(tp ringkeeper "$n" "$r" ops_per_s) zk=$(tp zookeeper "$n" "$r" ops_per_s)
			row+=" $(grp "$rk") | $(grp "$zk") | $(ratio_of "$rk" "$zk")x |"
		done
		local c
		c=$(tp ceiling 1 "$r" ops_per_s)
		row+=" $(grp "$c") | $(ratio_of "$(tp ringkeeper 1 "$r" ops_per_s)" "$c") |"
		echo "$row"
	done
}

failover_table() {
	local t
	echo "| fault | Ringkeeper: back to 80% after | writes unavailable | ZooKeeper: back to 80% after | writes unavailable |"
	echo "|---|---:|---:|---:|---:|"
	local i
	for ((i = 0; i < ${#FAULT_NAMES[@]}; i++)); do
		local row="| ${FAULT_NAMES[i]} |"
		for t in ringkeeper zookeeper; do
			local line
			line=$(awk -F, -v k=$((i + 2)) 'NR == k' "$OUT_DIR/failover-$t-recovery.csv" 2>/dev/null)
			if [[ -z $line ]]; then
				row+=" - | - |"
			else
				IFS=, read -r _ _ _ _ _ _ rec gap _ <<<"$line"
				row+=" $([[ -z $rec ]] && echo "not by the next fault" || echo "$(grp "$rec") ms") | $(grp "$gap") ms |"
			fi
		done
		echo "$row"
	done
	echo
	echo "Recovery: from the SIGKILL until throughput (completed ops, 300 ms mean), having fallen below" \
		"80% of its mean over the 2 s before (before the restart), is back to that (0: it did not fall" \
		"below; a dip when the server comes back shows in the plot)." \
		"Writes unavailable: the longest stretch without a successful setData from the fault to the" \
		"next one. Each server's own report, with the election by its logs: raw/failover-<server>.out."
}

latency_table() {
	local t
	echo "| server | offered | achieved | getData p50 / p99 / p99.9 | setData p50 / p99 / p99.9 |"
	echo "|---|---:|---:|---:|---:|"
	for t in ringkeeper zookeeper ceiling; do
		[[ -n $(lat "$t" ops_per_s) ]] || continue
		echo "| $(server_name "$t") | $(grp "$(cat "$WORK/latency.rate")") ops/s |" \
			"$(grp "$(lat "$t" ops_per_s)") ops/s |" \
			"$(ms "$(lat "$t" read_p50_us)") / $(ms "$(lat "$t" read_p99_us)") / $(ms "$(lat "$t" read_p999_us)") ms |" \
			"$(ms "$(lat "$t" write_p50_us)") / $(ms "$(lat "$t" write_p99_us)") / $(ms "$(lat "$t" write_p999_us)") ms |"
	done
	echo
	echo "ringkeeper-bench --rate: requests issued on a fixed schedule whatever the replies," \
		"$SESSIONS sessions, latency from each request's scheduled time (no coordinated omission);" \
		"the rate is ${LATENCY_SHARE}% of the lower standalone closed-loop figure at" \
		"$(label "$LATENCY_READ_RATIO") in part 1, so below both servers' saturation; ${LATENCY_S} s measured." \
		"The ceiling's row is what this machine and load generator add by themselves: a server's" \
		"tail can be no shorter."
}

memory_table() {
	local t
	echo "| server | RSS empty | RSS after loading | RSS after a restart | restart time (median) | with $(grp "$WATCHES") watches | with $(grp "$MEM_SESSIONS") sessions |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for t in ringkeeper zookeeper; do
		[[ -n $(mem "$t" restart_s_median) ]] || continue
		echo "| $([[ $t == ringkeeper ]] && echo Ringkeeper || echo 'Apache ZooKeeper') |" \
			"$(($(mem "$t" rss_empty_kib) / 1024)) MiB | $(($(mem "$t" rss_after_load_kib) / 1024)) MiB | $(($(mem "$t" rss_after_restart_kib) / 1024)) MiB |" \
			"$(mem "$t" restart_s_median) s | $(awk -v w="$(mem "$t" rss_with_watches_kib)" -v b="$(mem "$t" rss_after_restart_kib)" \
				'BEGIN { if (w == "") printf "-"; else printf "%.0f MiB (+%.0f)", w / 1024, (w - b) / 1024 }') |" \
			"$(awk -v s="$(mem "$t" rss_with_sessions_kib)" -v b="$(mem "$t" rss_before_sessions_kib)" \
				'BEGIN { if (s == "") printf "-"; else printf "%.0f MiB (+%.0f)", s / 1024, (s - b) / 1024 }') |"
	done
	echo
	echo "$(grp "$ZNODES") znodes of 100 bytes created by ringkeeper-bench's setup; restart: until the" \
		"server answers srvr, on a snapshot holding every txn (ZooKeeper writes a snapshot at start-up," \
		"within its time), $RESTART_RUNS run(s). Watches: $WATCH_SESSIONS connected sessions, exists" \
		"with a watch on distinct znodes, after the last restart. Sessions: on a fresh start, left to" \
		"live on without their connections, since this machine allows $(ulimit -Hn) descriptors per" \
		"process; maxSessionTimeout raised so they outlive the reading. (+N): MiB over the server just" \
		"started. Apache ZooKeeper standalone, -Xmx${ZK_HEAP:-2g}. Details: raw/memory.out."
	((QUICK)) && echo && echo "**--quick: scaled down** from 1,000,000 znodes, 1,000,000 watches and 100,000 sessions."
}

summary() {
	local t
	echo "# Ringkeeper and Apache ZooKeeper 3.8: bench/suite.sh$( ((QUICK)) && echo " --quick")"
	echo
	((QUICK)) && echo "**--quick run**: few, short points, 1 and 3 servers, memory scaled down; read the order of magnitude only." && echo
	echo "- Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(elapsed) min:s; Ringkeeper $GIT_AT_START," \
		"build type $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || echo '?')"
	echo "- Apache ZooKeeper: $(basename "$(readlink -f "$ZK_JAR")" .jar), Debian's package, default settings" \
		"(forceSync on), $("$JAVA" -version 2>&1 | head -n 1)"
	echo "- Machine: $(machine_line "$WORK"); a 4 KiB O_DSYNC write takes $SYNC_MS ms there (median, dd);" \
		"servers and load generator on the same machine, over 127.0.0.1; other processes kept $BUSY" \
		"of the CPUs busy during the run"
	((${#FAILED_PARTS[@]})) && echo "- **Failed:** $(IFS=';'; echo "${FAILED_PARTS[*]}") (see raw/*.log)"
	echo
	echo "## Targets"
	echo
	targets
	echo
	echo "## 1. Throughput as the read ratio varies"
	echo
	[[ -s $OUT_DIR/throughput.png ]] && echo "![throughput vs read ratio](throughput.png)" && echo
	ratio_table
	echo
	echo "ops/s; ratio = Ringkeeper / ZooKeeper. Load: ringkeeper-bench, $SESSIONS sessions x $INFLIGHT" \
		"requests in flight on $THREADS threads, $VALUE_SIZE-byte getData/setData over $KEYS znodes," \
		"${WARMUP} s warmup + ${DURATION} s per point, sessions on the followers only (all on the one" \
		"server standalone); ensembles of 127.0.0.1 servers from one zoo.cfg (tickTime=2000, defaults" \
		"otherwise), one at a time. Ceiling: ringkeeper-ceiling, a server that answers every request" \
		"with a canned reply (bench/ceiling.c), the same load. Per-point latencies: throughput.csv."
	echo
	echo "## 2. Throughput through failures"
	echo
	[[ -s $OUT_DIR/failover.png ]] && echo "![throughput through failures](failover.png)" && echo
	failover_table
	echo
	echo "Load: ringkeeper-bench --reconnect, 24 sessions x 4 in flight over all three servers," \
		"$FAILOVER_WRITE_PCT% setData, closed loop; faults are SIGKILLs" \
		"$FAULT_GAP_S s apart, each restart $FAULT_GAP_S s after its fault, and a fault waits until every" \
		"server serves again (a slow restart stretches the timeline)."
	((QUICK)) && echo && echo "**--quick**: a follower and the leader only (failover.sh --faults leader), not ZooKeeper's five faults."
	echo
	echo "## 3. Latency at a fixed offered load"
	echo
	[[ -s $OUT_DIR/latency.png ]] && echo "![latency](latency.png)" && echo
	latency_table
	echo
	echo "## 4. Memory and restart"
	echo
	memory_table
	echo
	echo "## Files"
	echo
	echo "throughput.csv (every point, both servers and the ceiling), failover-<server>.csv (ops per" \
		"100 ms), -events.csv, -recovery.csv, latency.csv, memory.csv; the parts' own reports and" \
		"logs in raw/."
}

# ---- main -----------------------------------------------------------------------------------

progress "bench suite$( ((QUICK)) && echo " (--quick)"): parts ${PARTS[*]}; output in ${OUT_DIR#"$ROOT"/}"
wants ratio && run_ratio
wants ceiling && run_ceiling
write_throughput_csv
wants latency && run_latency
write_latency_csv
wants failover && run_failover
wants memory && run_memory
progress "plots and summary"
BUSY=$(others_busy)
SYNC_MS=$(sync_write_ms "$WORK")
plot_ratio
plot_failover
plot_latency
summary >"$OUT_DIR/summary.md"
progress "done in $(elapsed): ${OUT_DIR#"$ROOT"/}/summary.md"
echo
sed -n '/^## Targets/,/^## 1\./p' "$OUT_DIR/summary.md" | sed '$d'
((${#FAILED_PARTS[@]} == 0))
