"""Snapshots under load and recovery from them (README, Durability).

- SnapshotDuringLoadTest: a tree of RK_SNAP_ZNODES (default 1,000,000)
  small znodes is built with pipelined multis (1,000 creates each, one txn
  per multi), then a writer crosses the snapCount threshold at a steady
  rate while a probe process reads continuously. The snapshot (seen in the
  server log and in dataDir/snapshots) must not stall reads: no gap over
  1 s, and read p99 while it is written within 2x of p99 outside it (or
  20 ms above it, for a shared machine). After a restart the snapshot is
  loaded and every znode is back.
- SnapshotUnderWriteLoadTest: on the same tree, ringkeeper-bench sends
  setData as fast as it can for 15 s with snapCount=40000: snapshots must
  keep finishing while it runs (3 or more), and the server's RSS must not
  grow by more than 1 GiB (a snapshot in progress holds everything retired
  since its version).
- RecoveryTest: a few thousand varied txns (creates with data, null data
  and other ACLs, sequential nodes, sets, deletes, multis, failing writes,
  ephemerals of two raw sessions, one of them closed) with snapCount=200,
  SIGKILL, restart: the tree (data, ACL, every Stat field) is what the
  client read before the kill, a snapshot was loaded and the log after it
  replayed, the live session resumes and still owns its ephemerals, the
  closed one stays closed. Runs against ZooKeeper too (the snapshot file
  checks then skipped).
- RetentionTest: autopurge.purgeInterval=1 keeps at most snapRetainCount
  snapshots and drops the log segments they cover (compared with the same
  load without autopurge), and the server restarts correctly afterwards.
- CorruptSnapshotTest: a flipped byte in the newest snapshot's body, then
  in its header, then a truncated one: each is skipped with a log line and
  the older snapshot plus the log restore everything.

Snapshot files: dataDir/snapshots/snapshot.<zxid, 16 hex digits>, a 64-byte
header (magic "RKSNAPSH", version, flags, db_id, zxid, created_ms, checksum)
| body | 32-byte footer (docs/snapshots.md). Log segments:
dataDir/txnlog/log.<first zxid, 16 hex digits>, 64 MiB each
(docs/storage.md).

Run alone: /usr/bin/python3 tests/integration/run.py test_snapshot_load
(about 50 s here with the default million znodes). Knobs: RK_SNAP_ZNODES,
RK_BENCH (build/bin/ringkeeper-bench), RK_LOGDUMP
(build/bin/ringkeeper-logdump). This file is also the probe process of the
load test (--probe)."""
import array
import collections
import datetime
import glob
import json
import math
import os
import random
import re
import select
import struct
import subprocess
import sys
import time

import zkwire
from harness import ROOT, TARGET, Server, ServerTestCase, ringkeeper_only

ZNODES = int(os.environ.get("RK_SNAP_ZNODES", "1000000"))
CHILDREN_PER_PARENT = 1000
OP_GET_ACL, OP_MULTI, OP_ERROR = 6, 14, -1
MULTI_END = struct.pack(">i?i", -1, True, -1)
LOGDUMP = os.environ.get("RK_LOGDUMP", os.path.join(ROOT, "build/bin/ringkeeper-logdump"))
SNAP_NAME = re.compile(r"^snapshot\.([0-9a-f]{16})$")
SEG_NAME = re.compile(r"^log\.([0-9a-f]{16})$")
LOG_TS = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) +\w+ +(?:\[[^\]]*\] )*"
SNAP_LINE = re.compile(LOG_TS + r"snapshot at zxid 0x([0-9a-f]+): (\d+) sessions, (\d+) bytes "
                       r"in (\d+) ms$", re.M)
LOADED_LINE = re.compile(LOG_TS + r"loaded snapshot (\S+) at zxid 0x([0-9a-f]+)$", re.M)
RECOVERED_LINE = re.compile(LOG_TS + r"recovered (\d+) znodes and (\d+) sessions up to zxid "
                            r"0x([0-9a-f]+)$", re.M)
PURGED_LINE = re.compile(LOG_TS + r"purged (\d+) txn log file\(s\) before zxid 0x([0-9a-f]+)$",
                         re.M)


# ---- wire helpers ----

def multi_body(ops):
    """ops: (opcode, body) pairs as single requests would send them."""
    return b"".join(struct.pack(">i?i", op, False, -1) + b for op, b in ops) + MULTI_END


def multi_results(r):
    """[(err, result)] of a multi reply: the path for a create, the Stat
    for a setData, None otherwise."""
    out = []
    while True:
        typ, done, _ = r.int(), r.bool(), r.int()
        if done:
            return out
        if typ == OP_ERROR:
            out.append((r.int(), None))
        elif typ == zkwire.OP_CREATE:
            out.append((zkwire.ZOK, r.string()))
        elif typ == zkwire.OP_SET_DATA:
            out.append((zkwire.ZOK, r.stat()))
        else:
            out.append((zkwire.ZOK, None))


def read_acl(r):
    return tuple((r.int(), r.string(), r.string()) for _ in range(r.int()))


def stat_tuple(st):
    return tuple(st[f] for f in zkwire.STAT_FIELDS)


def read_tree(conn, root, chunk=300):
    """{path: (data, acl, Stat as a tuple)} of root and everything below it,
    read level by level with pipelined getData, getACL and getChildren2;
    each node's Stat must agree across the three replies."""
    out, level = {}, [root]
    while level:
        nxt = []
        for at in range(0, len(level), chunk):
            part = level[at:at + chunk]
            sent = []
            for p in part:
                body = zkwire.get_body(p)
                for op in (zkwire.OP_GET_DATA, OP_GET_ACL, zkwire.OP_GET_CHILDREN2):
                    sent.append(conn.send_request(op, zkwire.put_string(p) if op == OP_GET_ACL
                                                  else body))
            replies = []
            for xid in sent:
                rxid, _, err, r = conn.read_reply()
                if rxid != xid:
                    raise AssertionError("reply xid %d for request %d" % (rxid, xid))
                replies.append((err, r))
            for i, p in enumerate(part):
                (e1, r1), (e2, r2), (e3, r3) = replies[3 * i:3 * i + 3]
                if (e1, e2, e3) != (zkwire.ZOK,) * 3:
                    raise AssertionError("%s: read errors %d %d %d" % (p, e1, e2, e3))
                data, st = r1.buffer(), stat_tuple(r1.stat())
                acl, st2 = read_acl(r2), stat_tuple(r2.stat())
                kids = [r3.string() for _ in range(r3.int())]
                st3 = stat_tuple(r3.stat())
                if not st == st2 == st3:
                    raise AssertionError("%s: Stats differ between reads: %r %r %r"
                                         % (p, st, st2, st3))
                out[p] = (data, acl, st)
                nxt += [(p if p != "/" else "") + "/" + k for k in sorted(kids)]
        level = nxt
    return out


def tree_diff(want, got, limit=8):
    out = []
    for p in sorted(set(want) | set(got)):
        if p not in got:
            out.append("%s missing" % p)
        elif p not in want:
            out.append("%s not expected" % p)
        elif want[p] != got[p]:
            w, g = want[p], got[p]
            if w[0] != g[0]:
                out.append("%s data %r, actual %r" % (p, short(w[0]), short(g[0])))
            if w[1] != g[1]:
                out.append("%s acl %r, actual %r" % (p, w[1], g[1]))
            for f, a, b in zip(zkwire.STAT_FIELDS, w[2], g[2]):
                if a != b:
                    out.append("%s %s %#x, actual %#x" % (p, f, a, b))
    return out[:limit] + (["... %d more" % (len(out) - limit)] if len(out) > limit else [])


def short(v):
    return v[:16] + b"..." if isinstance(v, bytes) and len(v) > 16 else v


def resume(port, sid, passwd, timeout_ms=20000):
    """A connection resuming session sid; (conn, negotiated timeout); the
    timeout is 0 when the server refuses (it then closes the connection)."""
    c = zkwire.Conn(port)
    try:
        t, got_sid, _ = c.handshake(timeout_ms, sid, passwd)
    except EOFError:
        t, got_sid = 0, 0
    if t > 0 and got_sid != sid:
        c.close()
        raise AssertionError("resume of 0x%x answered with session 0x%x" % (sid, got_sid))
    return c, t


# ---- the server's files and log ----

def snapshot_files(data_dir):
    """[(zxid, name)] of the complete snapshot files, oldest first."""
    d = os.path.join(data_dir, "snapshots")
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    return sorted((int(m.group(1), 16), n) for n in names for m in [SNAP_NAME.match(n)] if m)


def segment_files(data_dir):
    """[(first zxid, name)] of the txn log segments, oldest first."""
    d = os.path.join(data_dir, "txnlog")
    return sorted((int(m.group(1), 16), n) for n in os.listdir(d)
                  for m in [SEG_NAME.match(n)] if m)


def dir_bytes(path):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(path, "*")))


def log_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class LogTail:
    """New text of the server log since the last read (or since creation)."""

    def __init__(self, path, from_start=False):
        self.path = path
        self.pos = 0 if from_start else os.path.getsize(path)
        self.text = ""

    def read(self):
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            chunk = f.read()
        # Only whole lines: a line being written now is read next time.
        cut = chunk.rfind(b"\n") + 1
        self.pos += cut
        self.text += chunk[:cut].decode(errors="replace")
        return self.text


def server_log(server):
    with open(server.log_path, errors="replace") as f:
        return f.read()


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))]


class ConfiguredCase(ServerTestCase):
    """ServerTestCase whose zoo.cfg gets cfg_lines appended."""

    cfg_lines = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:
            f.write("".join(line + "\n" for line in cls.cfg_lines))
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise


def configured_server(test, cfg_lines):
    """A started extra server, destroyed after the test."""
    s = Server()
    test.addCleanup(s.destroy)
    with open(s.cfg, "a") as f:
        f.write("".join(line + "\n" for line in cfg_lines))
    s.start()
    return s


# ---- a. a snapshot of a big tree while reads go on ----

LOAD_SNAP_COUNT = 16000  # first snapshot 8,000..16,000 txns after start
WRITE_RATE = 4000  # setData/s, before and while the snapshot is written
WRITE_WINDOW = 64
# The next snapshot is due LOAD_SNAP_COUNT / 2 or more txns after the zxid
# of this one: writes stop short of that, so one snapshot only is measured
# (a long snapshot then ends without writes; the report says so).
NEXT_SNAPSHOT_MARGIN = 500
AFTER_SNAPSHOT_S = 0.3  # reads go on this long after the snapshot ends
EDGE_S = 0.25  # reads this close before the snapshot count for neither window
GAP_MAX_S = 1.0
FLOOR_S = 0.020
LOAD_TIMEOUT_S = 90


def probe_main(port, parents, children, out_path):
    """The probe process: one raw session, getData on random children, one
    at a time, until stdin closes (or 150 s); saves (send time, latency)
    pairs in seconds to out_path and prints a JSON summary."""
    rng = random.Random(7)
    samples = array.array("d")
    err_text = None
    c = zkwire.session(port, 30000)
    print("ready", flush=True)
    stop_at = time.monotonic() + 150
    stdin = sys.stdin.fileno()
    n = 0
    try:
        while True:
            if n % 32 == 0 and (select.select([stdin], [], [], 0)[0]
                                or time.monotonic() > stop_at):
                break
            n += 1
            p = rng.randrange(parents)
            body = zkwire.get_body("/load/p%d/c%d" % (p, rng.randrange(children[p])))
            wall, t0 = time.time(), time.perf_counter()
            c.send_request(zkwire.OP_GET_DATA, body)
            _, _, err, _ = c.read_reply()
            samples.append(wall)
            samples.append(time.perf_counter() - t0)
            if err != zkwire.ZOK:
                err_text = "getData error %d" % err
                break
    except Exception as e:  # reported to the test, which fails on it
        err_text = repr(e)
    with open(out_path, "wb") as f:
        samples.tofile(f)
    print(json.dumps({"reads": len(samples) // 2, "error": err_text}), flush=True)


class TempWatch:
    """Polls dataDir/snapshots for the temporary file of a snapshot being
    written: when it appeared, its zxid, and its size over time."""

    def __init__(self, snap_dir):
        self.dir = snap_dir
        self.first_seen = self.zxid = self.name = None
        self.sizes = []  # (wall time, bytes)

    def poll(self):
        if self.name is None:
            try:
                names = [n for n in os.listdir(self.dir) if n.endswith(".tmp")]
            except FileNotFoundError:
                return
            if not names:
                return
            self.name, self.first_seen = min(names), time.time()
            self.zxid = int(self.name.split(".")[1], 16)
        try:
            self.sizes.append((time.time(), os.path.getsize(os.path.join(self.dir, self.name))))
        except FileNotFoundError:
            pass  # renamed into place


def children_of(znodes):
    parents = max(1, math.ceil(znodes / CHILDREN_PER_PARENT))
    return [min(CHILDREN_PER_PARENT, znodes - i * CHILDREN_PER_PARENT) for i in range(parents)]


def build_tree(test, children):
    """/load/p<i>/c<j> with one-byte data: the parents in multis of 1,000,
    then one multi of creates per parent, 8 of them in flight. Returns the
    last zxid."""
    c = test.raw(30000)
    test.assertEqual(c.create("/load")[0], zkwire.ZOK)
    tail = zkwire.put_buffer(b"v") + zkwire.put_acl(zkwire.OPEN_ACL_UNSAFE) + struct.pack(">i", 0)
    head = struct.pack(">i?i", zkwire.OP_CREATE, False, -1)

    def creates(paths):
        return b"".join(head + zkwire.put_string(p) + tail for p in paths) + MULTI_END

    bodies = [creates("/load/p%d" % i for i in range(at, min(at + 1000, len(children))))
              for at in range(0, len(children), 1000)]
    last = pipeline_multis(test, c, bodies)
    return pipeline_multis(test, c, (creates("/load/p%d/c%d" % (i, j) for j in range(n))
                                     for i, n in enumerate(children)), window=8, last=last)


def pipeline_multis(test, c, bodies, window=1, last=0):
    """Sends the multis, window in flight; each must succeed (a failed multi
    answers OP_ERROR results). Returns the highest zxid."""
    inflight = collections.deque()
    bodies = iter(bodies)
    while True:
        while len(inflight) < window:
            body = next(bodies, None)
            if body is None:
                break
            inflight.append(c.send_request(OP_MULTI, body))
        if not inflight:
            return last
        xid, zxid, err, r = c.read_reply()
        test.assertEqual(xid, inflight.popleft())
        test.assertEqual(err, zkwire.ZOK)
        typ, _, op_err = r.int(), r.bool(), r.int()
        test.assertEqual(typ, zkwire.OP_CREATE, "multi %d failed: first result type %d err %d"
                         % (xid, typ, r.int() if typ == OP_ERROR else op_err))
        last = max(last, zxid)


@ringkeeper_only
class SnapshotDuringLoadTest(ConfiguredCase):
    cfg_lines = ("snapCount=%d" % LOAD_SNAP_COUNT,)

    def test_reads_flow_while_a_big_tree_is_snapshotted(self):
        server = self.server
        children = children_of(ZNODES)
        t0 = time.monotonic()
        last_zxid = build_tree(self, children)
        build_s = time.monotonic() - t0
        print("\n  load: %d znodes under %d parents built in %.1f s (%.0f znodes/s), "
              "zxid 0x%x" % (ZNODES, len(children), build_s, ZNODES / build_s, last_zxid),
              flush=True)
        self.assertLess(last_zxid, LOAD_SNAP_COUNT // 2 - 1000,
                        "the build took too many txns to leave a window before the snapshot")
        self.assertEqual(snapshot_files(server.data_dir), [], "a snapshot during the build")

        out_path = os.path.join(server.dir, "probe.bin")
        probe = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--probe",
                                  str(server.port), json.dumps(children), out_path],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: probe.poll() is None and probe.kill())
        ready, _, _ = select.select([probe.stdout], [], [], 15)
        self.assertTrue(ready and probe.stdout.readline().strip() == "ready",
                        "the probe did not start")
        time.sleep(0.3)  # the probe's first reads warm it up; they count as base
        snap, writes, write_s = self.write_across_snapshot()
        time.sleep(0.05)
        probe.stdin.close()
        try:
            summary = json.loads(probe.stdout.readline() or "{}")
            probe.wait(15)
        except (subprocess.TimeoutExpired, ValueError) as e:
            self.fail("the probe did not finish: %r" % e)
        self.assertIsNone(summary.get("error"), "probe: %s" % summary.get("error"))
        samples = array.array("d")
        with open(out_path, "rb") as f:
            samples.frombytes(f.read())
        reads = list(zip(samples[0::2], samples[1::2]))
        self.check_reads(reads, snap, writes, write_s)
        self.check_restart(snap, children)

    def write_across_snapshot(self):
        """setData at WRITE_RATE, WRITE_WINDOW in flight, until the first
        snapshot is logged (or its zxid + NEXT_SNAPSHOT_MARGIN short of the
        next one is reached), then AFTER_SNAPSHOT_S more of reads. Returns
        the snapshot (start and end wall times, zxid, ms, bytes, when its
        temp file was first and last seen, when writes stopped)
        and the writes and the seconds they took."""
        server = self.server
        c = self.raw(30000)
        self.assertEqual(c.create("/load/w", b"")[0], zkwire.ZOK)
        tail = LogTail(server.log_path)
        body = zkwire.set_body("/load/w", b"x" * 32)
        inflight = collections.deque()
        sent = acked = top = 0
        snap, temp = None, TempWatch(os.path.join(server.data_dir, "snapshots"))
        cap = LOAD_SNAP_COUNT * 4  # no bound until the snapshot's zxid is known
        capped_at = None
        t0 = time.monotonic()
        next_check = t0
        stop_at = t0 + LOAD_TIMEOUT_S
        while time.monotonic() < stop_at:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.01
                temp.poll()
                if temp.zxid is not None:
                    cap = temp.zxid + LOAD_SNAP_COUNT // 2 - NEXT_SNAPSHOT_MARGIN
                if snap is None:
                    m = SNAP_LINE.search(tail.read())
                    if m:
                        end = log_ts(m.group(1))
                        snap = dict(zxid=int(m.group(2), 16), sessions=int(m.group(3)),
                                    bytes=int(m.group(4)), ms=int(m.group(5)), end=end,
                                    start=end - int(m.group(5)) / 1000)
                        break
            due = int((now - t0) * WRITE_RATE)
            while sent < due and len(inflight) < WRITE_WINDOW and top < cap:
                inflight.append(c.send_request(zkwire.OP_SET_DATA, body))
                sent += 1
            if inflight:
                xid, zxid, err, _ = c.read_reply()
                self.assertEqual((xid, err), (inflight.popleft(), zkwire.ZOK))
                acked, top = acked + 1, max(top, zxid)
                if top >= cap and capped_at is None:
                    capped_at = time.time()
            else:
                time.sleep(0.002)
        while inflight:
            xid, _, err, _ = c.read_reply()
            self.assertEqual((xid, err), (inflight.popleft(), zkwire.ZOK))
            acked += 1
        write_s = time.monotonic() - t0
        self.assertIsNotNone(snap, "no snapshot logged after %d writes in %.0f s (snapCount "
                             "%d)" % (acked, LOAD_TIMEOUT_S, LOAD_SNAP_COUNT))
        snap.update(tmp_seen=temp.first_seen, tmp_last=temp.sizes[-1] if temp.sizes else None,
                    writes_stopped=capped_at)
        time.sleep(AFTER_SNAPSHOT_S)
        return snap, acked, write_s

    def check_reads(self, reads, snap, writes, write_s):
        start, end = snap["start"], snap["end"]
        self.assertGreater(len(reads), 100, "the probe hardly read")
        done = sorted(w + lat for w, lat in reads)
        if done[0] > start or done[-1] < end:
            self.fail("the probe's reads do not span the snapshot (%.3f..%.3f, reads %.3f.."
                      "%.3f)" % (start, end, done[0], done[-1]))
        # Longest time without a completed read across the snapshot.
        gap_max = max((b - a for a, b in zip(done, done[1:]) if b >= start and a <= end),
                      default=0.0)
        during = sorted(lat for w, lat in reads if w <= end and w + lat >= start)
        base = sorted(lat for w, lat in reads if w + lat < start - EDGE_S)
        p99_base, p99_snap = percentile(base, 0.99), percentile(during, 0.99)
        notes = []
        if snap["tmp_seen"]:
            notes.append("temp file seen %.0f ms after its start" % (
                (snap["tmp_seen"] - start) * 1000))
        if snap["tmp_last"]:
            t, size = snap["tmp_last"]
            notes.append("temp file last seen %.0f ms before its end, %.0f%% written" % (
                (end - t) * 1000, 100 * size / (snap["bytes"] + 96)))
        if snap["writes_stopped"]:
            notes.append("writes stopped %.0f ms into it (next snapshot due)" % (
                (snap["writes_stopped"] - start) * 1000))
        print("  load: snapshot at zxid 0x%x: %d bytes (%.0f MB/s), %d sessions, %d ms; %s"
              % (snap["zxid"], snap["bytes"], snap["bytes"] / max(snap["ms"], 1) / 1e3,
                 snap["sessions"], snap["ms"], "; ".join(notes)), flush=True)
        print("  load: %d setData in %.1f s (%.0f/s)" % (writes, write_s, writes / write_s),
              flush=True)
        print("  load: getData before the snapshot: %d reads, p50 %.2f ms, p99 %.2f ms, max "
              "%.2f ms" % (len(base), percentile(base, 0.5) * 1e3, p99_base * 1e3,
                           base[-1] * 1e3 if base else float("nan")), flush=True)
        print("  load: getData during the snapshot: %d reads, p50 %.2f ms, p99 %.2f ms, max "
              "%.2f ms; longest gap between reads %.1f ms"
              % (len(during), percentile(during, 0.5) * 1e3, p99_snap * 1e3,
                 during[-1] * 1e3 if during else float("nan"), gap_max * 1e3), flush=True)
        self.assertGreater(len(base), 1000, "too few reads before the snapshot")
        self.assertTrue(during, "no read overlapped the snapshot")
        self.assertLessEqual(gap_max, GAP_MAX_S, "reads stalled during the snapshot")
        bound = max(2 * p99_base, p99_base + FLOOR_S)
        self.assertLessEqual(p99_snap, bound, "read p99 during the snapshot %.2f ms, before "
                             "it %.2f ms" % (p99_snap * 1e3, p99_base * 1e3))

    def check_restart(self, snap, children):
        """A clean restart loads that snapshot (or a newer one) and has every znode."""
        server = self.server
        files = snapshot_files(server.data_dir)
        self.assertIn(snap["zxid"], [z for z, _ in files])
        self.assertEqual(os.path.getsize(os.path.join(server.data_dir, "snapshots",
                                                      "snapshot.%016x" % snap["zxid"])),
                         snap["bytes"] + 96)
        tail = LogTail(server.log_path)
        t0 = time.monotonic()
        server.restart()
        restart_s = time.monotonic() - t0
        text = tail.read()
        loaded = LOADED_LINE.search(text)
        rec = RECOVERED_LINE.search(text)
        self.assertTrue(loaded and rec, "no loaded/recovered line:\n" + text[-2000:])
        self.assertGreaterEqual(int(loaded.group(3), 16), snap["zxid"])
        # The root, /zookeeper's nodes, /load, its parents, /load/w and the children.
        self.assertGreaterEqual(int(rec.group(2)), ZNODES + len(children) + 2)
        print("  load: restart (snapshot of %d znodes + log) answered in %.2f s"
              % (int(rec.group(2)), restart_s), flush=True)
        c = self.raw()
        sent = [c.send_request(zkwire.OP_EXISTS, zkwire.get_body("/load/p%d" % i))
                for i in range(len(children))]
        total = 0
        for xid in sent:
            rxid, _, err, r = c.read_reply()
            self.assertEqual((rxid, err), (xid, zkwire.ZOK))
            total += r.stat()["numChildren"]
        self.assertEqual(total, ZNODES)


# ---- a2. snapshots under a saturating write load ----

BENCH = os.environ.get("RK_BENCH", os.path.join(ROOT, "build/bin/ringkeeper-bench"))
WL_ZNODES = ZNODES
WL_SNAP_COUNT = 40000  # a snapshot every 20,000..40,000 txns
WL_DURATION_S = 15
WL_SNAPSHOTS_MIN = 3  # completed while the load runs (it writes 1M txns or more)
WL_RSS_GROWTH_MAX = 1 << 30


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@ringkeeper_only
class SnapshotUnderWriteLoadTest(ConfiguredCase):
    """As many setData as ringkeeper-bench can send (32 sessions x 8 in
    flight) for WL_DURATION_S on a tree of WL_ZNODES: snapshots keep coming
    about every snapCount txns, and the memory a snapshot holds while it is
    written (everything retired since its version) stays bounded."""

    cfg_lines = ("snapCount=%d" % WL_SNAP_COUNT,)

    def test_snapshots_keep_up_with_a_saturating_write_load(self):
        server = self.server
        build_tree(self, children_of(WL_ZNODES))
        pid = server.proc.pid
        rss0 = rss_bytes(pid)
        cmd = [BENCH, server.hosts, "--read-ratio", "0", "--sessions", "32", "--inflight", "8",
               "--threads", "2", "--value-size", "100", "--keys", "1000", "--prefix", "/wl",
               "--duration", str(WL_DURATION_S), "--warmup", "0", "--timeout", "10"]
        bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: bench.poll() is None and bench.kill())
        deadline = time.monotonic() + WL_DURATION_S + 60
        peak = rss0
        while bench.poll() is None and time.monotonic() < deadline:
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.1)
        load_end = time.time()
        self.assertIsNotNone(bench.poll(), "ringkeeper-bench did not finish")
        out = bench.stdout.read()
        self.assertEqual(bench.returncode, 0, out[-2000:])
        rate = re.search(r"total ([0-9.]+) ops/s", out)
        snaps = [(log_ts(ts), int(z, 16), int(ms)) for ts, z, _, _, ms
                 in SNAP_LINE.findall(server_log(server))]
        during = [s for s in snaps if s[0] <= load_end]
        txns = int(float(rate.group(1)) * WL_DURATION_S) if rate else 0
        print("\n  write load: %s setData/s for %d s (about %d txns) on %d znodes; snapshots "
              "finished during it: %d (%s ms), after it: %d (%s ms); server RSS %.0f MiB "
              "before, peak %.0f MiB"
              % (rate.group(1) if rate else "?", WL_DURATION_S, txns, WL_ZNODES, len(during),
                 ", ".join(str(ms) for _, _, ms in during) or "-", len(snaps) - len(during),
                 ", ".join(str(ms) for _, _, ms in snaps[len(during):]) or "-",
                 rss0 / 2**20, peak / 2**20), flush=True)
        self.assertGreaterEqual(len(during), WL_SNAPSHOTS_MIN,
                                "snapCount=%d, about %d txns written, %d snapshots finished "
                                "while the load ran (durations %s ms)"
                                % (WL_SNAP_COUNT, txns, len(during),
                                   [ms for _, _, ms in snaps]))
        self.assertLessEqual(peak - rss0, WL_RSS_GROWTH_MAX,
                             "server RSS grew from %.0f to %.0f MiB under the write load"
                             % (rss0 / 2**20, peak / 2**20))


# ---- b. recovery from a snapshot plus the log ----

OPEN_RW = [(15, "world", "anyone")]  # all but ADMIN
READ_ONLY_ACL = [(1, "world", "anyone")]


class Model:
    """What the acknowledged writes made of the nodes this test owns:
    {path: [data, version, ephemeral owner]}, plus failing writes' errors."""

    def __init__(self):
        self.nodes = {}
        self.fixed = set()  # the base and its directories: never set or deleted


class Planner:
    """Plans requests for one session that are valid (or fail in a known
    way) against the model as the earlier planned ones leave it; names of
    sequential nodes come from replies, so they are used from the next
    round on."""

    def __init__(self, rng, model, owner, tag, dirs):
        self.rng, self.model, self.owner, self.tag, self.dirs = rng, model, owner, tag, dirs
        self.n = 0

    def data(self):
        r = self.rng.random()
        if r < 0.05:
            return None
        if r < 0.10:
            return b""
        n = self.rng.randrange(1, 100) if r < 0.85 else self.rng.randrange(100, 5000)
        return self.rng.randbytes(n)

    def own(self):
        """This session's nodes not touched yet this round: all leaves."""
        return [p for p, v in self.model.nodes.items()
                if v[2] == self.owner and p not in self.busy and p not in self.model.fixed]

    def round(self, n):
        """n requests: [(opcode, body, expect)] where expect(err, r) checks
        a reply and applies it to the model."""
        self.busy = set()
        return [self.plan() for _ in range(n)]

    def plan(self):
        rng, m = self.rng, self.model
        kind = rng.choices(("create", "seq", "set", "delete", "multi", "bad"),
                           (30, 12, 30, 12, 8, 8))[0]
        mine = self.own()
        if kind in ("set", "delete", "multi") and not mine:
            kind = "create"
        if kind == "create":
            self.n += 1
            path = "%s/%s%d" % (rng.choice(self.dirs), self.tag, self.n)
            data, acl = self.data(), OPEN_RW if rng.random() < 0.2 else zkwire.OPEN_ACL_UNSAFE
            m.nodes[path] = [data, 0, self.owner]
            self.busy.add(path)
            return (zkwire.OP_CREATE, zkwire.create_body(path, data, self.flags(), acl),
                    self.expect_ok(path))
        if kind == "seq":
            parent = rng.choice(self.dirs)
            data = self.data()
            return (zkwire.OP_CREATE,
                    zkwire.create_body(parent + "/s-", data, self.flags() | zkwire.SEQUENTIAL),
                    self.expect_seq(parent, data))
        if kind == "set":
            path = rng.choice(mine)
            node = m.nodes[path]
            version = node[1] if rng.random() < 0.7 else -1
            node[0], node[1] = self.data(), node[1] + 1
            return (zkwire.OP_SET_DATA, zkwire.set_body(path, node[0], version),
                    self.expect_ok(path))
        if kind == "delete":
            path = rng.choice(mine)
            version = m.nodes.pop(path)[1]
            if rng.random() < 0.3:
                version = -1
            self.busy.add(path)
            return (zkwire.OP_DELETE, zkwire.delete_body(path, version), self.expect_ok(path))
        if kind == "multi":
            return self.plan_multi(mine)
        return self.plan_bad(mine)

    def plan_multi(self, mine):
        """A create, a setData and maybe a delete, or (one in four) the same
        plus a check with a stale version: then nothing applies."""
        rng, m = self.rng, self.model
        self.n += 1
        path_c = "%s/%sm%d" % (rng.choice(self.dirs), self.tag, self.n)
        path_s = rng.choice(mine)
        data_c, data_s = self.data(), self.data()
        ops = [(zkwire.OP_CREATE, zkwire.create_body(path_c, data_c, self.flags())),
               (zkwire.OP_SET_DATA, zkwire.set_body(path_s, data_s, m.nodes[path_s][1]))]
        failing = rng.random() < 0.25
        if failing:
            ops.append((13, zkwire.delete_body(path_s, m.nodes[path_s][1] + 5)))  # check
        else:
            m.nodes[path_c] = [data_c, 0, self.owner]
            m.nodes[path_s] = [data_s, m.nodes[path_s][1] + 1, self.owner]
        self.busy.update((path_c, path_s))

        def expect(err, r, zxid):
            res = multi_results(r) if err == zkwire.ZOK else None
            if failing:
                want = [zkwire.ZOK, zkwire.ZOK, zkwire.ZBADVERSION]
                return ([e for e, _ in res] == want, "failing multi answered %r" % res)
            return (res is not None and [e for e, _ in res] == [zkwire.ZOK] * 2
                    and res[0][1] == path_c, "multi answered %d %r" % (err, res))
        return OP_MULTI, multi_body(ops), expect

    def plan_bad(self, mine):
        rng, m = self.rng, self.model
        if mine and rng.random() < 0.5:
            path = rng.choice(mine)
            return (zkwire.OP_SET_DATA, zkwire.set_body(path, b"stale", m.nodes[path][1] + 3),
                    self.expect_err(zkwire.ZBADVERSION))
        if mine and rng.random() < 0.5:
            return (zkwire.OP_CREATE, zkwire.create_body(rng.choice(mine), b"again"),
                    self.expect_err(zkwire.ZNODEEXISTS))
        return (zkwire.OP_DELETE, zkwire.delete_body(self.dirs[0] + "/never"),
                self.expect_err(zkwire.ZNONODE))

    def flags(self):
        return zkwire.EPHEMERAL if self.owner else 0

    @staticmethod
    def expect_ok(path):
        return lambda err, r, zxid: (err == zkwire.ZOK, "%s: error %d" % (path, err))

    @staticmethod
    def expect_err(want):
        return lambda err, r, zxid: (err == want, "error %d, want %d" % (err, want))

    def expect_seq(self, parent, data):
        def expect(err, r, zxid):
            if err != zkwire.ZOK:
                return False, "%s/s-: error %d" % (parent, err)
            name = r.string()
            if not re.fullmatch(re.escape(parent) + r"/s-\d{10}", name or "") or \
                    name in self.model.nodes:
                return False, "sequential create answered %r" % name
            self.model.nodes[name] = [data, 0, self.owner]
            return True, ""
        return expect


def run_round(test, conn, requests, window=32):
    """Sends the planned requests pipelined and checks each reply; returns
    the highest zxid."""
    inflight = collections.deque()
    reqs = iter(requests)
    top = 0
    while True:
        while len(inflight) < window:
            req = next(reqs, None)
            if req is None:
                break
            inflight.append((conn.send_request(req[0], req[1]), req[2]))
        if not inflight:
            return top
        xid, zxid, err, r = conn.read_reply()
        want_xid, expect = inflight.popleft()
        test.assertEqual(xid, want_xid)
        ok, why = expect(err, r, zxid)
        test.assertTrue(ok, why)
        top = max(top, zxid)


def varied_load(test, port, base, rounds, seed, closed_tail=20, keep_live=True):
    """Writes under base from three raw sessions: a persistent writer, a
    live session with ephemerals (kept open unless keep_live is false) and
    one with ephemerals that is closed at the end, followed by closed_tail
    more writes. Returns the model, the live and closed sessions' (id,
    password), the closed session's close zxid and the highest zxid."""
    rng = random.Random(seed)
    model = Model()
    w = zkwire.session(port, 20000)
    test.addCleanup(w.close)
    live = zkwire.session(port, 20000)
    test.addCleanup(live.close)
    gone = zkwire.session(port, 20000)
    test.addCleanup(gone.close)
    dirs = ["%s/d%d" % (base, i) for i in range(8)]
    fixed = [(base, b"root", zkwire.OPEN_ACL_UNSAFE), (base + "/ro", b"read-only", READ_ONLY_ACL)]
    fixed += [(d, b"dir", zkwire.OPEN_ACL_UNSAFE) for d in dirs]
    run_round(test, w, [(zkwire.OP_CREATE, zkwire.create_body(p, data, 0, acl),
                         Planner.expect_ok(p)) for p, data, acl in fixed])
    for p, data, _ in fixed:
        model.nodes[p] = [data, 0, 0]
        model.fixed.add(p)
    planners = [(w, Planner(rng, model, 0, "n", dirs)),
                (live, Planner(rng, model, live.session_id, "live", dirs)),
                (gone, Planner(rng, model, gone.session_id, "gone", dirs))]
    for rnd in range(rounds):
        for conn, planner in planners:
            if conn is gone and rnd >= (rounds + 1) // 2:
                continue  # it writes in the first half only
            run_round(test, conn, planner.round(60 if conn is w else 20))
    ended = [gone] if keep_live else [gone, live]
    close_zxid = 0
    for conn in ended:
        xid = conn.send_request(zkwire.OP_CLOSE)
        rxid, close_zxid, err, _ = conn.read_reply()
        test.assertEqual((rxid, err), (xid, zkwire.ZOK))
        for p in [p for p, v in model.nodes.items() if v[2] == conn.session_id]:
            del model.nodes[p]
    tail = [(zkwire.OP_SET_DATA, zkwire.set_body(base, b"tail%d" % i, i),
             Planner.expect_ok(base)) for i in range(closed_tail)]
    if closed_tail:
        model.nodes[base] = [b"tail%d" % (closed_tail - 1), closed_tail, 0]
    top = max(close_zxid, run_round(test, w, tail))
    return (model, (live.session_id, live.passwd), (gone.session_id, gone.passwd), close_zxid,
            top)


def model_diff(model, tree, limit=8):
    """Where the tree's paths, data, versions and ephemeral owners differ
    from the model's."""
    out = []
    for p in sorted(set(model.nodes) | set(tree)):
        if p not in tree:
            out.append("%s missing" % p)
        elif p not in model.nodes:
            out.append("%s not expected" % p)
        else:
            want, got = model.nodes[p], [tree[p][0], tree[p][2][4], tree[p][2][7]]
            if want != got:
                out.append("%s: [data, version, owner] %r, actual %r"
                           % (p, [short(want[0])] + want[1:], [short(got[0])] + got[1:]))
    return out[:limit] + (["... %d more" % (len(out) - limit)] if len(out) > limit else [])


class RecoveryTest(ConfiguredCase):
    cfg_lines = ("snapCount=200",)
    ROUNDS = 25  # 25 x (60 + 20 + 20 in the first half) + ~110 ~ 2,900 txns

    def test_sigkill_recovers_from_snapshot_and_log(self):
        server = self.server
        base = self.path
        t0 = time.monotonic()
        model, live, gone, close_zxid, top = varied_load(self, server.port, base, self.ROUNDS,
                                                         seed=1)
        reader = self.raw()
        before = read_tree(reader, base)
        reader.close()
        diff = model_diff(model, before)
        self.assertEqual(diff, [], "the acknowledged writes and the tree read disagree")
        ephemerals = sorted(p for p, v in before.items() if v[2][7] == live[0])
        self.assertTrue(ephemerals)
        self.assertTrue(any(re.search(r"/s-\d{10}$", p) for p in ephemerals))
        load_s = time.monotonic() - t0
        taken = SNAP_LINE.findall(server_log(server))
        tail = LogTail(server.log_path)
        server.restart(kill=True)
        after_text = tail.read()
        c = self.raw()
        after = read_tree(c, base)
        self.assertEqual(tree_diff(before, after), [], "the tree after SIGKILL and restart")
        note = ""
        if TARGET == "ringkeeper":
            loaded = LOADED_LINE.search(after_text)
            self.assertIsNotNone(loaded, "no snapshot loaded:\n" + after_text[-2000:])
            snap_zxid = int(loaded.group(3), 16)
            files = snapshot_files(server.data_dir)
            self.assertGreaterEqual(len(files), 5, "few snapshots with snapCount=200")
            self.assertEqual(snap_zxid, files[-1][0], "not the newest snapshot")
            self.assertLess(snap_zxid, top, "the snapshot holds every txn: no log replayed")
            note = ("%d snapshots written (%d logged before the kill), loaded 0x%x, then the "
                    "log up to 0x%x; the closed session's close 0x%x %s it"
                    % (len(files), len(taken), snap_zxid, top, close_zxid,
                       "is in" if close_zxid <= snap_zxid else "came after"))
        print("\n  recovery: %d znodes, %d txns in %.1f s; %s"
              % (len(before), top, load_s, note), flush=True)
        self.check_sessions(base, live, gone, ephemerals)

    def check_sessions(self, base, live, gone, ephemerals):
        port = self.server.port
        conn, t = resume(port, live[0], live[1][:15] + bytes([live[1][15] ^ 1]))
        conn.close()
        self.assertEqual(t, 0, "a resume with a wrong password was accepted")
        conn, t = resume(port, gone[0], gone[1])
        conn.close()
        self.assertEqual(t, 0, "the closed session 0x%x was resumed" % gone[0])
        conn, t = resume(port, live[0], live[1])
        self.addCleanup(conn.close)
        self.assertGreater(t, 0, "the live session 0x%x was not resumed" % live[0])
        for p in ephemerals:
            err, st = conn.exists(p)
            self.assertEqual((err, st and st["ephemeralOwner"]), (zkwire.ZOK, live[0]), p)
        # It still owns them: it may delete one and make another.
        self.assertEqual(conn.call(zkwire.OP_DELETE, zkwire.delete_body(ephemerals[0]))[0],
                         zkwire.ZOK)
        err, made = conn.create(base + "/d0/after-restart", b"", zkwire.EPHEMERAL)
        self.assertEqual(err, zkwire.ZOK)
        self.assertEqual(conn.close_session(), zkwire.ZOK)
        c = self.raw()
        for p in ephemerals[1:] + [made]:
            self.assertEqual(c.exists(p)[0], zkwire.ZNONODE, p + " outlived its session")


# ---- c. retention ----

BIG = 200 * 1024  # bytes per setData: 64 MiB segments fill in ~320 writes
RETAIN = 4
RETENTION_WRITES = 1000


def big_writes(test, port, n, seed, first=True):
    """n setData of BIG bytes on /big (created when first), 8 in flight,
    and every 50th a create of a small node; returns {path: (data,
    version)} as acknowledged."""
    rng = random.Random(seed)
    c = zkwire.session(port)
    test.addCleanup(c.close)
    if first:
        test.assertEqual(c.create("/big", b"")[0], zkwire.ZOK)
    err, got = c.get("/big")
    test.assertEqual(err, zkwire.ZOK)
    version = got[1]["version"]
    want = {}

    def reqs():
        for i in range(n):
            if i % 50 == 0:
                path = "/big-%d-%d" % (seed, i)
                yield (zkwire.OP_CREATE, zkwire.create_body(path, b"small %d" % i),
                       Planner.expect_ok(path))
                want[path] = (b"small %d" % i, 0)
            data = rng.randbytes(BIG)
            yield (zkwire.OP_SET_DATA, zkwire.set_body("/big", data, version + i),
                   Planner.expect_ok("/big"))
            want["/big"] = (data, version + i + 1)
    run_round(test, c, reqs(), window=8)
    return want


def check_values(test, port, want):
    c = zkwire.session(port)
    test.addCleanup(c.close)
    for path, (data, version) in want.items():
        err, got = c.get(path)
        test.assertEqual(err, zkwire.ZOK, path)
        test.assertEqual((got[0] == data, got[1]["version"]), (True, version), path)


@ringkeeper_only
class RetentionTest(ConfiguredCase):
    cfg_lines = ("snapCount=40", "autopurge.purgeInterval=1",
                 "autopurge.snapRetainCount=%d" % RETAIN)

    def test_autopurge_keeps_retain_count_snapshots_and_drops_covered_log(self):
        # The same load without autopurge first, for its log.
        plain = configured_server(self, ("snapCount=40",))
        big_writes(self, plain.port, RETENTION_WRITES, seed=3)
        plain.stop()
        plain_segs = segment_files(plain.data_dir)
        plain_snaps = snapshot_files(plain.data_dir)
        plain_bytes = dir_bytes(os.path.join(plain.data_dir, "txnlog"))
        plain.destroy()

        server = self.server
        want = big_writes(self, server.port, RETENTION_WRITES, seed=3)
        server.stop()
        text = server_log(server)
        taken = sorted(int(z, 16) for _, z, *_ in SNAP_LINE.findall(text))
        purged = PURGED_LINE.findall(text)
        snaps = snapshot_files(server.data_dir)
        segs = segment_files(server.data_dir)
        left = os.listdir(os.path.join(server.data_dir, "snapshots"))
        print("\n  retention: without autopurge %d snapshots, %d log segments (%.0f MiB); with "
              "it %d snapshots taken, %d kept, %d segments left (%.0f MiB) after %d purges "
              "of %d files"
              % (len(plain_snaps), len(plain_segs), plain_bytes / 2**20, len(taken),
                 len(snaps), len(segs), dir_bytes(os.path.join(server.data_dir, "txnlog"))
                 / 2**20, len(purged), sum(int(n) for _, n, _ in purged)), flush=True)
        self.assertGreater(len(plain_snaps), RETAIN, "too few snapshots to test retention")
        self.assertGreater(len(plain_segs), 2, "the load did not fill several segments")
        self.assertGreater(len(taken), 2 * RETAIN)
        self.assertLessEqual(len(snaps), RETAIN)
        self.assertEqual([z for z, _ in snaps], taken[-len(snaps):], "not the newest kept")
        self.assertEqual(sorted(left), sorted(n for _, n in snaps), "other files left")
        self.assertLess(len(segs), len(plain_segs), "no log segment was purged")
        self.assertTrue(purged, "no purge logged")
        self.assertNotEqual(segs[0][0], 1, "the first segment is still there")
        # What is left still reaches back to the oldest kept snapshot.
        self.assertLessEqual(segs[0][0], snaps[0][0] + 1)
        p = subprocess.run([LOGDUMP, os.path.join(server.data_dir, "txnlog")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr)

        tail = LogTail(server.log_path)
        server.start()
        loaded = LOADED_LINE.search(tail.read())
        self.assertIsNotNone(loaded)
        self.assertEqual(int(loaded.group(3), 16), snaps[-1][0])
        check_values(self, server.port, want)
        # And once more after purging under a SIGKILL. A kill between a
        # snapshot's rename and its retention leaves one file more, which
        # the next snapshot's retention removes.
        want.update(big_writes(self, server.port, 200, seed=4, first=False))
        server.restart(kill=True)
        self.assertLessEqual(len(snapshot_files(server.data_dir)), RETAIN + 1)
        check_values(self, server.port, want)
        want.update(big_writes(self, server.port, 100, seed=5, first=False))
        server.restart()
        self.assertLessEqual(len(snapshot_files(server.data_dir)), RETAIN)
        check_values(self, server.port, want)


# ---- d. a corrupt newest snapshot ----

@ringkeeper_only
class CorruptSnapshotTest(ConfiguredCase):
    cfg_lines = ("snapCount=100",)

    def test_corrupt_newest_snapshot_is_skipped(self):
        server = self.server
        print("", flush=True)
        for rnd, (how, damage) in enumerate((("a flipped body byte", flip_body),
                                             ("a flipped header byte", flip_header),
                                             ("cut in half", cut_half))):
            base = "%s-%d" % (self.path, rnd)
            # Live sessions closed: one left open would expire 20 s after
            # a restart, changing an earlier round's tree.
            varied_load(self, server.port, base, 6, seed=10 + rnd, closed_tail=5,
                        keep_live=False)
            c = self.raw()
            before = {b: read_tree(c, b) for b in ["%s-%d" % (self.path, i)
                                                   for i in range(rnd + 1)]}
            c.close()
            server.stop(kill=True)
            files = snapshot_files(server.data_dir)
            self.assertGreaterEqual(len(files), 2, "round %d: fewer than two snapshots" % rnd)
            newest = os.path.join(server.data_dir, "snapshots", files[-1][1])
            at = damage(newest)
            tail = LogTail(server.log_path)
            server.start()
            text = tail.read()
            warn = re.search(r"WARN .*snapfile: %s is corrupt at offset (\d+)"
                             % re.escape(newest), text)
            self.assertIsNotNone(warn, "round %d (%s): no log line names the corrupt "
                                 "snapshot:\n%s" % (rnd, how, text[-2000:]))
            loaded = LOADED_LINE.search(text)
            self.assertIsNotNone(loaded, "round %d: no snapshot loaded" % rnd)
            self.assertEqual(int(loaded.group(3), 16), files[-2][0],
                             "round %d: not the older snapshot" % rnd)
            c = self.raw()
            for b, tree in before.items():
                self.assertEqual(tree_diff(tree, read_tree(c, b)), [],
                                 "round %d (%s): %s after the restart" % (rnd, how, b))
            c.close()
            print("  corrupt: newest snapshot %s %s (at %d; refused at offset %s), loaded "
                  "%s, %d nodes the same" % (files[-1][1], how, at, warn.group(1),
                                             files[-2][1], sum(map(len, before.values()))),
                  flush=True)


def flip(path, at):
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x40]))
    return at


def flip_body(path):
    return flip(path, 64 + (os.path.getsize(path) - 96) // 2)


def flip_header(path):
    return flip(path, 24)  # the zxid


def cut_half(path):
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    return size // 2


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--probe":
    probe_main(int(sys.argv[2]), len(json.loads(sys.argv[3])), json.loads(sys.argv[3]),
               sys.argv[4])
