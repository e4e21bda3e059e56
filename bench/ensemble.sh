#!/usr/bin/env bash
# Throughput through the followers of an ensemble (3 servers by default;
# --servers 1 is a standalone server): Apache ZooKeeper 3.8 (QuorumPeerMain)
# first, then Ringkeeper, from the same zoo.cfg files, one ensemble at a
# time on this machine, with ringkeeper-bench's sessions spread over the
# followers. See bench/README.md, "ensemble.sh".
#
# Exit status: 0 when every run completed (whatever the figures); 1 when an
# ensemble did not form, a server died, or ringkeeper-bench failed; 2 bad
# usage or something missing (binaries, java, the ZooKeeper jar).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BUILD_DIR="$ROOT/build"
OUT_DIR=${RK_BENCH_OUT:-$ROOT/build/bench-results}
ZK_HEAP=${ZK_HEAP:-1g}
ZK_LOG_LEVEL=${ZK_LOG_LEVEL:-info}

DURATION=10
WARMUP=2
SESSIONS=32
INFLIGHT=8
THREADS=2
VALUE_SIZE=1024
KEYS=1000
BENCH_TIMEOUT=10 # ringkeeper-bench --timeout: connect, each reply, close
START_WAIT_S=90  # the ensemble must elect a leader within this
STOP_WAIT_S=10   # SIGTERM, then SIGKILL after this
RATIOS=(1.0 0.9 0.0)
TARGETS=(zookeeper ringkeeper)
SERVERS=3
NAME= # output files' base name; ensemble-<stamp> by default

usage() {
	cat <<EOF
usage: bench/ensemble.sh [--quick] [--servers N] [--ratios R,R,...] [--duration S]
                         [--warmup S] [--sessions N] [--inflight N] [--threads N]
                         [--target T] [--build DIR] [--out DIR] [--name BASE]
  --quick        1 s warmup + 3 s measured per workload, for a smoke check
  --servers N    ensemble size, 1 to 7 (default $SERVERS); 1 runs standalone, the
                 load then on that server
  --ratios LIST  read ratios to run, comma-separated (default ${RATIOS[*]})
  --duration S   measured seconds per workload (default $DURATION)
  --warmup S     unmeasured seconds before each (default $WARMUP)
  --sessions N   client sessions, half on each follower (default $SESSIONS)
  --inflight N   pipelined requests per session (default $INFLIGHT)
  --threads N    ringkeeper-bench threads (default $THREADS)
  --target T     zookeeper, ringkeeper or both (default both)
  --build DIR    where bin/ringkeeper and bin/ringkeeper-bench are (default build)
  --out DIR      where the table, CSV and plot go (default build/bench-results)
  --name BASE    their base name (default ensemble-<stamp>)
Environment: JAVA, ZK_JAR, ZK_CONF_DIR, SLF4J_JAR, ZK_HEAP ($ZK_HEAP),
ZK_LOG_LEVEL ($ZK_LOG_LEVEL), RK_CORES, RK_LOG_LEVEL, TMPDIR, KEEP_WORK=1.
EOF
}

while (($#)); do
	case $1 in
	--quick) DURATION=3 WARMUP=1 ;;
	--duration) DURATION=${2:-}; shift ;;
	--warmup) WARMUP=${2:-}; shift ;;
	--sessions) SESSIONS=${2:-}; shift ;;
	--inflight) INFLIGHT=${2:-}; shift ;;
	--threads) THREADS=${2:-}; shift ;;
	--servers) SERVERS=${2:-}; shift ;;
	--ratios) IFS=', ' read -r -a RATIOS <<<"${2:-}"; shift ;;
	--name) NAME=${2:-}; shift ;;
	--target)
		case ${2:-} in
		both) TARGETS=(zookeeper ringkeeper) ;;
		zookeeper | ringkeeper) TARGETS=("$2") ;;
		*) usage >&2; exit 2 ;;
		esac
		shift
		;;
	--build) BUILD_DIR=$(cd "${2:-.}" 2>/dev/null && pwd) || { echo "ensemble.sh: no dir '${2:-}'" >&2; exit 2; }; shift ;;
	--out) OUT_DIR=${2:-}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in "$DURATION" "$WARMUP" "$SESSIONS" "$INFLIGHT" "$THREADS" "$SERVERS"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "ensemble.sh: not a whole number: '$v'" >&2; exit 2; }
done
((SERVERS >= 1 && SERVERS <= 7)) || { echo "ensemble.sh: --servers must be 1 to 7" >&2; exit 2; }
((${#RATIOS[@]} > 0)) || { echo "ensemble.sh: --ratios needs at least one ratio" >&2; exit 2; }
for r in "${RATIOS[@]}"; do
	[[ $r =~ ^(0(\.[0-9]+)?|1(\.0*)?)$ ]] || { echo "ensemble.sh: not a read ratio in [0, 1]: '$r'" >&2; exit 2; }
done
((DURATION > 0 && SESSIONS > 0 && INFLIGHT > 0 && THREADS > 0)) ||
	{ echo "ensemble.sh: --duration, --sessions, --inflight and --threads must be at least 1" >&2; exit 2; }
[[ -n $OUT_DIR ]] || { echo "ensemble.sh: --out needs a dir" >&2; exit 2; }

# ---- prerequisites --------------------------------------------------------

RK_BIN=${RK_BIN:-$BUILD_DIR/bin/ringkeeper}
BENCH_BIN=${BENCH_BIN:-$BUILD_DIR/bin/ringkeeper-bench}
for b in "$RK_BIN" "$BENCH_BIN"; do
	if [[ ! -x $b ]]; then
		log "ensemble.sh: $b is missing; build first:"
		log "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j\$(nproc)"
		exit 2
	fi
done
if [[ " ${TARGETS[*]} " == *" zookeeper "* ]]; then
	find_zookeeper || exit 2
fi

bench_workspace ensemble

# ---- one workload ------------------------------------------------------------

# run_bench name ratio hosts: appends the CSV line to $CSV_OUT, writes the
# parsed figures to $WORK/<name>-<ratio>.fig; returns the bench's status.
run_bench() {
	local name=$1 ratio=$2 hosts=$3 out="$WORK/$1-$2.csv" err="$WORK/$1-$2.err" rc
	timeout -k 5 $((WARMUP + DURATION + 4 * BENCH_TIMEOUT + 30)) \
		"$BENCH_BIN" "$hosts" --sessions "$SESSIONS" --inflight "$INFLIGHT" \
		--threads "$THREADS" --read-ratio "$ratio" --value-size "$VALUE_SIZE" \
		--keys "$KEYS" --duration "$DURATION" --warmup "$WARMUP" \
		--timeout "$BENCH_TIMEOUT" --csv-header >"$out" 2>"$err" </dev/null &
	CHILD_PID=$!
	wait "$CHILD_PID"
	rc=$?
	CHILD_PID=
	if ((rc != 0)) || [[ $(wc -l <"$out") -lt 2 ]]; then
		if ((rc == 124)); then
			log "ensemble.sh: ringkeeper-bench against $name (read ratio $ratio) timed out:"
		else
			log "ensemble.sh: ringkeeper-bench against $name (read ratio $ratio) exited $rc:"
		fi
		sed 's/^/  /' "$err" | tail -n 10 >&2
		((rc == 3)) || return 1 # status 3: completed with error replies; keep the figures
		rc=1
	fi
	[[ -s $CSV_OUT ]] || sed -n 1p "$out" | sed 's/^/server,ensemble_size,/' >"$CSV_OUT"
	sed -n 2p "$out" | sed "s/^/$name,$SERVERS,/" >>"$CSV_OUT"
	# ops/s, read p50, read p99, write p50, write p99, errors, by column name.
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		NR == 2 { print $c["ops_per_s"], $c["read_p50_us"], $c["read_p99_us"],
			$c["write_p50_us"], $c["write_p99_us"], $c["read_errors"] + $c["write_errors"] }' \
		"$out" >"$WORK/$name-$ratio.fig"
	return "$rc"
}

# ---- one ensemble ------------------------------------------------------------

ensemble_died() { # name: 0 (and says which) if a server has exited
	local i
	for ((i = 1; i <= ENS_N; i++)); do
		if ! kill -0 "${ENS_PIDS[i]}" 2>/dev/null; then
			log "ensemble.sh: $1 server $i exited; $ENS_DIR/s$i/server.log ends:"
			tail -n 20 "$ENS_DIR/s$i/server.log" | sed 's/^/  /' >&2
			return 0
		fi
	done
	return 1
}

ensemble_label() { # "3-server ensemble" or "standalone server"
	((SERVERS == 1)) && echo "standalone server" || echo "$SERVERS-server ensemble"
}

# run_target name: start the ensemble, every workload through its
# followers, RSS and data-dir sizes, stop.
FAILED=0
run_target() {
	local name=$1 ratio i leader followers hosts f
	log "== $name: $(ensemble_label)"
	if ! ens_setup "$WORK/$name" "$name" "$SERVERS"; then
		log "ensemble.sh: no free ports found"
		FAILED=1
		return
	fi
	for ((i = 1; i <= ENS_N; i++)); do ens_start "$i"; done
	if ! ens_wait_quorum "$START_WAIT_S"; then
		FAILED=1
		ens_stop_all
		return
	fi
	leader=$ENS_LEADER
	mapfile -t followers < <(ens_load_servers)
	hosts=
	for f in "${followers[@]}"; do hosts+="${hosts:+,}127.0.0.1:${ENS_PORT[f]}"; done
	if ((SERVERS == 1)); then
		log "   load on the server ($hosts)"
	else
		log "   leader: server $leader; load on followers ${followers[*]} ($hosts)"
	fi
	fourlw "${ENS_PORT[leader]}" srvr | sed -n 's/^Zookeeper version: \([^,]*\).*/\1/p' |
		sed 's/-[$]{.*//' | head -n 1 >"$WORK/$name.version"
	: >"$WORK/$name.notes"
	for ratio in "${RATIOS[@]}"; do
		log "   read ratio $ratio: ${WARMUP}s warmup + ${DURATION}s"
		run_bench "$name" "$ratio" "$hosts" || FAILED=1
		if ensemble_died "$name"; then
			echo "a server died during the read-ratio-$ratio run" >>"$WORK/$name.notes"
			FAILED=1
			break
		fi
		if ((SERVERS > 1)) && [[ $(ens_mode "$leader") != leader ]]; then
			echo "server $leader no longer leads after the read-ratio-$ratio run" \
				"(modes: $(for ((i = 1; i <= ENS_N; i++)); do printf '%s ' "$(ens_mode "$i")"; done))" \
				>>"$WORK/$name.notes"
			log "ensemble.sh: $name: $(tail -n 1 "$WORK/$name.notes")"
			break
		fi
	done
	for ((i = 1; i <= ENS_N; i++)); do
		printf '%s %s %s\n' "$i" "$(rss_kib "${ENS_PIDS[i]}" VmRSS)" "$(rss_kib "${ENS_PIDS[i]}" VmHWM)"
	done >"$WORK/$name.rss"
	echo "$leader" >"$WORK/$name.leader"
	ens_stop_all
	du -sk "$ENS_DIR"/s*/data | awk '{ s += $1 } END { print s }' >"$WORK/$name.du"
}

# ---- the report ------------------------------------------------------------

fig() { # name ratio: "ops r_p50 r_p99 w_p50 w_p99 errors" or nothing
	cat "$WORK/$1-$2.fig" 2>/dev/null
}

ops_cell() { # name ratio: "123,456" (", N errors") or "failed"
	fig "$1" "$2" | awk '
		function grp(n,   s) { n = sprintf("%.0f", n); s = "";
			while (length(n) > 3) { s = "," substr(n, length(n) - 2) s; n = substr(n, 1, length(n) - 3) }
			return n s }
		{ printf "%s%s", grp($1), ($6 > 0 ? sprintf(" (%d errors)", $6) : ""); found = 1 }
		END { if (!found) printf "failed" }'
}

lat_cell() { # name ratio: "0.21 / 1.30 ms", per op type for a mix
	fig "$1" "$2" | awk -v r="$2" '
		function ms(us) { return sprintf("%.2f", us / 1000) }
		{ if (r == 1) printf "%s / %s ms", ms($2), ms($3)
		  else if (r == 0) printf "%s / %s ms", ms($4), ms($5)
		  else printf "get %s / %s, set %s / %s ms", ms($2), ms($3), ms($4), ms($5)
		  found = 1 }
		END { if (!found) printf "-" }'
}

ratio_cell() { # rk-ops zk-ops
	awk -v k="$1" -v z="$2" 'BEGIN { if (z > 0 && k > 0) printf "%.2fx", k / z; else printf "-" }'
}

label() { # ratio
	case $1 in
	1.0) echo "100% getData" ;;
	0.0) echo "100% setData" ;;
	*) awk -v r="$1" 'BEGIN { printf "%d%% getData, %d%% setData", r * 100 + 0.5, (1 - r) * 100 + 0.5 }' ;;
	esac
}

rss_cell() { # name: "leader 123 MiB, followers 45 / 67 MiB (peak ...)"
	local f="$WORK/$1.rss" leader
	[[ -s $f ]] || { printf 'n/a'; return; }
	leader=$(cat "$WORK/$1.leader")
	awk -v l="$leader" '
		function mib(k) { return sprintf("%.0f", k / 1024) }
		$1 == l { lr = mib($2); lh = mib($3); next }
		{ fr = fr (fr == "" ? "" : " / ") mib($2); fh = fh (fh == "" ? "" : " / ") mib($3) }
		END { if (fr == "") printf "%s MiB (peak %s)", lr, lh
			else printf "leader %s MiB (peak %s), followers %s MiB (peak %s)", lr, lh, fr, fh }' "$f"
}

report() {
	local ratio zk rk t
	echo "| workload | Ringkeeper ops/s | ZooKeeper ops/s | ratio | Ringkeeper p50 / p99 | ZooKeeper p50 / p99 |"
	echo "|---|---:|---:|---:|---:|---:|"
	for ratio in "${RATIOS[@]}"; do
		zk=$(fig zookeeper "$ratio" | awk '{ print $1 }')
		rk=$(fig ringkeeper "$ratio" | awk '{ print $1 }')
		echo "| $(label "$ratio") | $(ops_cell ringkeeper "$ratio") | $(ops_cell zookeeper "$ratio")" \
			"| $(ratio_cell "${rk:-0}" "${zk:-0}") | $(lat_cell ringkeeper "$ratio") | $(lat_cell zookeeper "$ratio") |"
	done
	echo
	echo "Load: ringkeeper-bench, $SESSIONS sessions x $INFLIGHT in flight on $THREADS threads," \
		"$( ((SERVERS == 1)) && echo "connected to the one server" ||
			echo "connected to the $((SERVERS - 1)) followers only (round-robin)")," \
		"$VALUE_SIZE-byte values over $KEYS keys," \
		"${WARMUP} s warmup + ${DURATION} s measured per workload; ratio = Ringkeeper / ZooKeeper." \
		"Each is a $(ensemble_label) on 127.0.0.1 from the same zoo.cfg (tickTime=2000," \
		"initLimit=10, syncLimit=5, forceSync default), run one after the other; clients and" \
		"servers share the machine."
	echo
	for t in "${TARGETS[@]}"; do
		case $t in
		zookeeper)
			echo "- Apache ZooKeeper $(cat "$WORK/zookeeper.version" 2>/dev/null || echo '?')," \
				"QuorumPeerMain, -Xmx$ZK_HEAP, $("$JAVA" -version 2>&1 | head -n 1);" \
				"RSS after the runs: $(rss_cell zookeeper); data dirs $(cat "$WORK/zookeeper.du" 2>/dev/null || echo '?') KiB"
			;;
		ringkeeper)
			echo "- Ringkeeper $(cat "$WORK/ringkeeper.version" 2>/dev/null || echo '?')," \
				"commit $GIT_AT_START at the start, build type" \
				"$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || echo '?')," \
				"${RK_CORES:+--cores $RK_CORES, }binary built $(date -r "$RK_BIN" '+%Y-%m-%d %H:%M');" \
				"RSS after the runs: $(rss_cell ringkeeper); data dirs $(cat "$WORK/ringkeeper.du" 2>/dev/null || echo '?') KiB"
			;;
		esac
		[[ -s $WORK/$t.notes ]] && sed "s/^/- $t: /" "$WORK/$t.notes"
	done
	echo "- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
		"$(awk '/^MemTotal:/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)," \
		"$(uname -sr); data dirs on $(df -hT "$WORK" | awk 'NR == 2 { print $1 ", " $2 }');" \
		"other processes kept $(others_busy) of the CPUs busy during the runs"
}

# plot png: ops/s against the read ratio, one line per server.
plot() {
	local png=$1 dat="$WORK/plot.dat" ratio
	if ! command -v gnuplot >/dev/null; then
		log "ensemble.sh: no gnuplot (apt-get install gnuplot-nox); no plot"
		return 0
	fi
	for ratio in "${RATIOS[@]}"; do
		printf '%s %s %s\n' "$(awk -v r="$ratio" 'BEGIN { print r * 100 }')" \
			"$(fig ringkeeper "$ratio" | awk '{ print $1 }' | grep . || echo NaN)" \
			"$(fig zookeeper "$ratio" | awk '{ print $1 }' | grep . || echo NaN)"
	done >"$dat"
	gnuplot <<EOF 2>"$WORK/gnuplot.err" || { log "ensemble.sh: gnuplot failed:"; sed 's/^/  /' "$WORK/gnuplot.err" >&2; return 0; }
set terminal png size 900,540
set output "$png"
set title "$(ensemble_label)$( ((SERVERS > 1)) && echo ", clients on the followers"): $SESSIONS sessions x $INFLIGHT in flight, ${VALUE_SIZE}-byte values"
set xlabel "reads (% of ops)"
set ylabel "ops/s"
set xrange [-5:105]
set logscale y
set key top left
set grid
plot "$dat" using 1:2 with linespoints lw 2 pt 7 title "Ringkeeper", \
     "$dat" using 1:3 with linespoints lw 2 pt 5 title "Apache ZooKeeper"
EOF
	echo "Plot: ${png#"$ROOT"/}"
}

# ---- main ------------------------------------------------------------------

mkdir -p "$OUT_DIR" || exit 2
STAMP=$(date '+%Y%m%d-%H%M%S')
NAME=${NAME:-ensemble-$STAMP}
CSV_OUT="$OUT_DIR/$NAME.csv"
: >"$CSV_OUT"
GIT_AT_START=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] &&
	GIT_AT_START+=" (+ uncommitted changes)"
MACHINE_START=$(machine_ticks)
OURS_START=$(our_ticks)

for t in "${TARGETS[@]}"; do
	run_target "$t"
done

report | tee "$OUT_DIR/$NAME.md"
echo
echo "CSV: ${CSV_OUT#"$ROOT"/}"
plot "$OUT_DIR/$NAME.png"
exit "$FAILED"
