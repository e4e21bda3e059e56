"""Durability under SIGKILL: several raw sessions write under load (creates
of unique and sequential nodes, setData with expected versions, deletes,
multis, and some writes that must fail), pipelined; the server is SIGKILLed
at a random moment of the load and restarted on the same data dir, round
after round. After each restart:

- every acknowledged write is there exactly once, as acknowledged (data,
  versions, czxid/mzxid/pzxid from the replies), and nothing else is;
- the writes sent but not answered before the kill (outcome unknown) are
  applied whole or not at all, and, since one session's writes are logged in
  its order, as a prefix of that session's unanswered writes;
- sequential names acknowledged are never handed out again;
- zxids never go backwards: every zxid acknowledged is new, a session
  created after the restart (with lastZxidSeen = the highest acknowledged
  zxid) is accepted and its first reply's zxid is at least that zxid, and
  the next round's writes all carry larger zxids.

Each session owns one parent, /crash/wN, so the outcome of every write is
known when it is sent (and each reply is checked against it); what a round
ends with becomes, once checked, the next round's starting point, so a later
restart that loses an earlier round's write fails too.

RK_CRASH_SEED=N replays a seed (the ops and kill delays; where the kill
lands in the load still depends on timing). RK_CRASH_ROUNDS=N sets the
rounds (default 24); RK_CRASH_LONG=1 is the long mode: 300 rounds, more
sessions, longer load phases, a fresh data dir every 30 rounds."""
import collections
import os
import random
import shutil
import struct
import threading
import time

import zkwire
from harness import ServerTestCase

LONG = os.environ.get("RK_CRASH_LONG", "") not in ("", "0")
ROUNDS = int(os.environ.get("RK_CRASH_ROUNDS", "300" if LONG else "24"))
SEED = int(os.environ.get("RK_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
SESSIONS = 8 if LONG else 6
KILL_S = (0.02, 3.0) if LONG else (0.02, 1.5)  # the kill comes this long into the load
WINDOWS = (1, 2, 8, 32, 64)  # requests in flight per session, drawn per round
CHILDREN_MAX = 120  # per parent; past it a session only sets and deletes
SESSION_TIMEOUT_MS = 4000
IO_TIMEOUT_S = 10.0
JOIN_S = 30.0
OPS_MAX = 200000  # per session per round, a bound the kill always comes before
# Restarts slow down as the log grows (until snapshots), so the long mode
# starts over on an empty data dir every ROUNDS_PER_DIR rounds.
ROUNDS_PER_DIR = 30

ROOT = "/crash"
OP_CHECK, OP_MULTI, OP_CREATE2, OP_ERROR = 13, 14, 15, -1
ZRUNTIMEINCONSISTENCY = -2
WIRE_ERRORS = (OSError, EOFError, ValueError, struct.error)


# ---- the model: one session's parent and its children ----

class Node:
    __slots__ = ("data", "version", "czxid", "mzxid")

    def __init__(self, data, version, czxid, mzxid):
        self.data, self.version, self.czxid, self.mzxid = data, version, czxid, mzxid

    def copy(self):
        return Node(self.data, self.version, self.czxid, self.mzxid)


class State:
    """A parent's children plus what its Stat says about them. creates is
    ZooKeeper's sequence counter (children ever created); the reported
    cversion is creates + deletes. A zxid of None is not known: set by a
    write whose reply never came."""

    def __init__(self, creates=0, pzxid=None):
        self.creates, self.pzxid, self.children = creates, pzxid, {}
        self.deletes = 0

    @property
    def cversion(self):
        return self.creates + self.deletes

    def copy(self):
        s = State(self.creates, self.pzxid)
        s.deletes = self.deletes
        s.children = {k: v.copy() for k, v in self.children.items()}
        return s

    def diff(self, other, limit=6):
        """What differs from other (the actual tree); a None field matches."""
        out = []
        if self.cversion != other.cversion:
            out.append("cversion %d, actual %d" % (self.cversion, other.cversion))
        if self.pzxid is not None and self.pzxid != other.pzxid:
            out.append("pzxid %#x, actual %#x" % (self.pzxid, other.pzxid))
        for name in sorted(set(self.children) | set(other.children)):
            want, got = self.children.get(name), other.children.get(name)
            if want is None or got is None:
                out.append("%s %s" % (name, "missing" if got is None else "not expected"))
                continue
            for f in Node.__slots__:
                w, g = getattr(want, f), getattr(got, f)
                if w is not None and w != g:
                    fmt = "%s.%s %#x, actual %#x" if f.endswith("zxid") else "%s.%s %r, actual %r"
                    out.append(fmt % (name, f, short(w), short(g)))
        return out[:limit] + (["... %d more" % (len(out) - limit)] if len(out) > limit else [])


def short(v):
    return v[:16] + b"..." if isinstance(v, bytes) and len(v) > 16 else v


class Prim:
    """One op: create (name is the prefix when seq), set, delete or check."""
    __slots__ = ("kind", "name", "data", "seq", "version")

    def __init__(self, kind, name, data=b"", seq=False, version=-1):
        self.kind, self.name, self.data, self.seq, self.version = kind, name, data, seq, version

    def wire(self, parent, in_multi):
        path = parent + "/" + self.name
        if self.kind == "create":
            flags = zkwire.SEQUENTIAL if self.seq else 0
            op = zkwire.OP_CREATE if in_multi else OP_CREATE2
            return op, zkwire.create_body(path, self.data, flags)
        if self.kind == "set":
            return zkwire.OP_SET_DATA, zkwire.set_body(path, self.data, self.version)
        if self.kind == "delete":
            return zkwire.OP_DELETE, zkwire.delete_body(path, self.version)
        return OP_CHECK, zkwire.delete_body(path, self.version)  # same layout

    def apply(self, st, zxid):
        """Applies to st; returns (err, result) as the server must answer."""
        node = st.children.get(self.name)
        if self.kind == "create":
            name = self.name + ("%010d" % st.creates if self.seq else "")
            if name in st.children:
                return zkwire.ZNODEEXISTS, None
            st.children[name] = Node(self.data, 0, zxid, zxid)
            st.creates += 1
            st.pzxid = zxid
            return zkwire.ZOK, name
        if node is None:
            return zkwire.ZNONODE, None
        if self.version not in (-1, node.version):
            return zkwire.ZBADVERSION, None
        if self.kind == "set":
            node.data, node.version, node.mzxid = self.data, node.version + 1, zxid
            return zkwire.ZOK, node.version
        if self.kind == "delete":
            del st.children[self.name]
            st.deletes += 1
            st.pzxid = zxid
        return zkwire.ZOK, None


class Write:
    """One request: a single op or a multi. expect is the reply the model
    says it gets: (err, result) or, for a multi, (ZOK, [(err, result)...])."""
    __slots__ = ("prims", "multi", "expect", "zxid")

    def __init__(self, prims, multi):
        self.prims, self.multi, self.expect, self.zxid = prims, multi, None, None

    def apply(self, st, zxid):
        if not self.multi:
            return self.prims[0].apply(st, zxid)
        scratch = st.copy()
        results = []
        for i, p in enumerate(self.prims):
            err, res = p.apply(scratch, zxid)
            if err != zkwire.ZOK:  # nothing applies; ZooKeeper's per-op report
                results = [(zkwire.ZOK, None)] * i + [(err, None)]
                results += [(ZRUNTIMEINCONSISTENCY, None)] * (len(self.prims) - i - 1)
                return zkwire.ZOK, results
            results.append((err, res))
        st.__dict__.update(scratch.__dict__)
        return zkwire.ZOK, results

    def wire(self, parent):
        if not self.multi:
            return self.prims[0].wire(parent, False)
        body = b""
        for p in self.prims:
            op, b = p.wire(parent, True)
            body += struct.pack(">i?i", op, False, -1) + b
        return OP_MULTI, body + struct.pack(">i?i", -1, True, -1)


def read_result(write, err, r):
    """The reply as the model writes it, plus a problem with its Stats (or None)."""
    if write.multi:
        if err != zkwire.ZOK:
            return (err, None), None
        results = []
        while True:
            typ, done, _ = r.int(), r.bool(), r.int()  # type, done, err
            if done:
                return (err, results), None
            if typ == OP_ERROR:
                results.append((r.int(), None))
            elif typ == zkwire.OP_CREATE:
                results.append((zkwire.ZOK, r.string().rsplit("/", 1)[1]))
            elif typ == zkwire.OP_SET_DATA:
                results.append((zkwire.ZOK, r.stat()["version"]))
            else:
                results.append((zkwire.ZOK, None))
    if err != zkwire.ZOK:
        return (err, None), None
    kind = write.prims[0].kind
    if kind == "create":
        name = r.string().rsplit("/", 1)[1]
        st = r.stat()
        want = (write.zxid, write.zxid, 0, len(write.prims[0].data))
        got = (st["czxid"], st["mzxid"], st["version"], st["dataLength"])
        return (err, name), None if got == want else "create stat %r, want %r" % (got, want)
    if kind == "set":
        st = r.stat()
        bad = None if st["mzxid"] == write.zxid else "set mzxid %#x" % st["mzxid"]
        return (err, st["version"]), bad
    return (err, None), None


# ---- the load ----

class Session(threading.Thread):
    """One raw session writing under ROOT/wN, window requests in flight. It
    plans each write against the state all earlier ones leave (pred), sends
    until it is stopped or the connection dies, and sorts its writes into
    acked (reply read) and unknown (sent, or being sent, without a reply)."""

    def __init__(self, index, port, start, rng, window, tag):
        super().__init__(daemon=True)
        self.index, self.port, self.rng, self.window, self.tag = index, port, rng, window, tag
        self.parent = "%s/w%d" % (ROOT, index)
        self.pred = start.copy()
        self.stop = threading.Event()
        self.acked, self.unknown, self.problems = [], [], []
        self.names = 0

    def run(self):
        try:
            conn = zkwire.Conn(self.port, io_timeout=IO_TIMEOUT_S)
        except OSError:
            return  # killed before we connected: nothing sent
        inflight = collections.deque()
        try:
            if conn.handshake(SESSION_TIMEOUT_MS)[0] <= 0:
                self.problems.append("session refused")
                return
            for _ in range(OPS_MAX):
                while (len(inflight) < self.window and not self.stop.is_set()
                       and not self.problems):
                    w = self.plan()
                    inflight.append((conn.xid + 1, w))
                    conn.send_request(*w.wire(self.parent))
                if not inflight:
                    break
                xid, zxid, err, r = conn.read_reply()
                want_xid, w = inflight.popleft()
                w.zxid = zxid
                self.check(w, xid, want_xid, err, r)
                self.acked.append(w)
        except WIRE_ERRORS:
            pass  # the kill
        finally:
            self.unknown = [w for _, w in inflight]
            conn.close()

    def check(self, w, xid, want_xid, err, r):
        try:
            got, bad = read_result(w, err, r)
        except (ValueError, struct.error, IndexError) as e:
            got, bad = None, "unreadable reply: %r" % e
        if xid != want_xid:
            bad = "reply xid %d, want %d" % (xid, want_xid)
        elif got != w.expect:
            bad = "reply %r, model says %r" % (got, w.expect)
        elif self.acked and w.zxid <= self.acked[-1].zxid:
            bad = "zxid %#x after %#x" % (w.zxid, self.acked[-1].zxid)
        if bad:
            self.problems.append("%s write %d %s: %s"
                                 % (self.parent, len(self.acked), describe(w), bad))

    # What to send next; weights in the comments' order.
    def plan(self):
        rng, st = self.rng, self.pred
        names = list(st.children)
        kind = rng.choices(("create", "seq", "set", "delete", "multi", "bad"),
                           (25, 12, 25, 15, 16, 7))[0]
        if len(names) >= CHILDREN_MAX and kind in ("create", "seq"):
            kind = "delete"
        if not names and kind in ("set", "delete"):
            kind = "create"
        if kind == "multi":
            w = Write(self.plan_multi(rng.randint(2, 5), rng.random() < 0.2), True)
        elif kind == "bad":
            w = Write([self.plan_bad(names)], False)
        else:
            w = Write([self.plan_prim(kind, st, names)], False)
        w.expect = w.apply(st, None)
        return w

    def plan_prim(self, kind, st, names):
        rng = self.rng
        if kind == "create":
            self.names += 1
            return Prim("create", "u%s-%d" % (self.tag, self.names), self.data())
        if kind == "seq":
            return Prim("create", "s-", self.data(), seq=True)
        name = rng.choice(names)
        version = st.children[name].version if rng.random() < 0.9 else -1
        if kind == "set":
            return Prim("set", name, self.data(), version=version)
        return Prim(kind, name, version=version)  # delete, check

    def plan_multi(self, n, failing):
        """n ops, each valid on the state the earlier ones leave; with
        failing, one more that fails there, so the multi must change nothing."""
        scratch, prims = self.pred.copy(), []
        bad_at = self.rng.randrange(n + 1) if failing else -1
        for i in range(n + failing):
            names = list(scratch.children)
            if i == bad_at:
                prims.append(self.plan_bad(names, scratch))
                continue
            kind = self.rng.choice(("create", "seq", "set", "delete", "check")
                                   if names else ("create", "seq"))
            p = self.plan_prim(kind, scratch, names)
            p.apply(scratch, None)
            prims.append(p)
        return prims

    def plan_bad(self, names, st=None):
        """An op that must fail: a stale version, a missing node, an existing one."""
        st, rng = st or self.pred, self.rng
        if names and rng.random() < 0.7:
            name = rng.choice(names)
            stale = st.children[name].version + rng.randint(1, 3)
            return Prim(rng.choice(("set", "delete", "check")), name, b"stale", version=stale)
        if names and rng.random() < 0.5:
            return Prim("create", rng.choice(names), b"again")
        return Prim(rng.choice(("set", "delete")), "never-created", b"x")

    def data(self):
        rng = self.rng
        r = rng.random()
        n = rng.randrange(0, 64) if r < 0.7 else (
            rng.randrange(64, 1024) if r < 0.97 else rng.randrange(8192, 65536))
        return rng.randbytes(n)


def describe(w):
    ps = ["%s %s%s v%d" % (p.kind, p.name, "*" if p.seq else "", p.version) for p in w.prims]
    return ("multi[%s]" % ", ".join(ps)) if w.multi else ps[0]


# ---- reading the tree back ----

def read_state(conn, parent):
    """The parent's children and Stats as the server has them, pipelined."""
    err, r = conn.call(zkwire.OP_GET_CHILDREN2, zkwire.get_body(parent))
    if err != zkwire.ZOK:
        raise AssertionError("%s: getChildren2 error %d" % (parent, err))
    names = [r.string() for _ in range(r.int())]
    pst = r.stat()
    creates = (pst["cversion"] + pst["numChildren"]) // 2
    st = State(creates, pst["pzxid"])
    st.deletes = pst["cversion"] - creates
    if pst["numChildren"] != len(names):
        raise AssertionError("%s: numChildren %d, %d names" % (parent, pst["numChildren"],
                                                                len(names)))
    xids = [conn.send_request(zkwire.OP_GET_DATA, zkwire.get_body(parent + "/" + n))
            for n in names]
    for xid, name in zip(xids, names):
        rxid, _, err, r = conn.read_reply()
        if rxid != xid or err != zkwire.ZOK:
            raise AssertionError("%s/%s: getData xid %d err %d" % (parent, name, rxid, err))
        data = r.buffer() or b""
        s = r.stat()
        st.children[name] = Node(data, s["version"], s["czxid"], s["mzxid"])
    return st


def session_after(port, zxid_seen):
    """A new session that says it has seen zxid_seen, and the zxid of its
    first reply; None when the server refuses it (ZooKeeper closes the
    connection of a client that has seen a newer zxid than the server)."""
    c = zkwire.Conn(port, io_timeout=IO_TIMEOUT_S)
    try:
        c.send_frame(zkwire.connect_request(SESSION_TIMEOUT_MS, zxid=zxid_seen))
        r = zkwire.Reader(c.recv_frame())
        r.int()
        if r.int() <= 0:
            return None
        c.xid += 1
        c.send_frame(struct.pack(">ii", c.xid, zkwire.OP_EXISTS) + zkwire.get_body("/"))
        _, zxid, err, _ = c.read_reply()
        if err != zkwire.ZOK:
            raise AssertionError("exists / after restart: error %d" % err)
        return c, zxid
    except EOFError:
        return None
    except Exception:
        c.close()
        raise


class CrashTest(ServerTestCase):
    def test_sigkill_under_load_keeps_acknowledged_writes(self):
        print("\n  crash: seed %d (RK_CRASH_SEED=%d replays), %d rounds, %d sessions"
              % (SEED, SEED, ROUNDS, SESSIONS), flush=True)
        rng = random.Random(SEED)
        totals = collections.Counter()
        t_start = time.monotonic()
        for rnd in range(ROUNDS):
            if rnd % ROUNDS_PER_DIR == 0:
                states = self.fresh_data_dir(wipe=rnd > 0)
            states = self.round(rnd, rng, states, totals)
        print("  crash: %d rounds in %.1f s: %d writes acknowledged, %d unanswered "
              "(%d of them applied), %d multis acknowledged, log files %.0f MiB"
              % (ROUNDS, time.monotonic() - t_start, totals["acked"], totals["unknown"],
                 totals["applied"], totals["multis"], self.log_mib()), flush=True)
        c = self.raw()
        self.assertEqual(self.children(c, "/"), self.root_children)
        self.assertEqual(self.children(c, ROOT), sorted("w%d" % i for i in range(SESSIONS)))
        self.assertGreater(totals["acked"], ROUNDS)  # the load did run

    def fresh_data_dir(self, wipe):
        """The parents on a new log (with wipe, after a clean stop the data
        dir is emptied); returns their states."""
        if wipe:
            self.server.stop()
            shutil.rmtree(self.server.data_dir)
            os.mkdir(self.server.data_dir)
            self.server.start()
        c = zkwire.session(self.server.port)
        try:
            self.assertEqual(c.create(ROOT)[0], zkwire.ZOK)
            for i in range(SESSIONS):
                self.assertEqual(c.create("%s/w%d" % (ROOT, i))[0], zkwire.ZOK)
            states = [read_state(c, "%s/w%d" % (ROOT, i)) for i in range(SESSIONS)]
            self.root_children = self.children(c, "/")
        finally:
            c.close()
        self.zxid_max, self.zxids, self.seq_names = 0, set(), set()
        return states

    def round(self, rnd, rng, states, totals):
        """Load, SIGKILL, restart, check; returns the states read back."""
        windows = [rng.choice(WINDOWS) for _ in range(SESSIONS)]
        sessions = [Session(i, self.server.port, states[i],
                            random.Random("%d:%d:%d" % (SEED, rnd, i)), windows[i], rnd)
                    for i in range(SESSIONS)]
        kill_s = rng.uniform(*KILL_S)
        for s in sessions:
            s.start()
        time.sleep(kill_s)
        proc = self.server.proc
        self.assertIsNone(proc.poll(), "round %d: server exited by itself before the kill:\n%s"
                          % (rnd, self.server.log_tail()))
        self.server.stop(kill=True)
        self.assertEqual(proc.returncode, -9)
        for s in sessions:
            s.stop.set()
        for s in sessions:
            s.join(JOIN_S)
        self.assertFalse(any(s.is_alive() for s in sessions), "round %d: a session hung" % rnd)
        problems = [p for s in sessions for p in s.problems]
        self.assertEqual(problems, [], "round %d, seed %d" % (rnd, SEED))
        self.check_zxids(rnd, sessions)

        t0 = time.monotonic()
        self.server.start()
        restart_ms = (time.monotonic() - t0) * 1000
        conn = self.raw()
        after, applied = [], 0
        for s in sessions:
            actual = read_state(conn, s.parent)
            applied += self.match(rnd, s, states[s.index], actual)
            after.append(actual)
        conn.close()
        # zxids go on from the highest acknowledged one.
        got = session_after(self.server.port, self.zxid_max)
        self.assertIsNotNone(got, "round %d: after the restart a session that saw zxid %#x "
                             "(acknowledged) is refused (seed %d)" % (rnd, self.zxid_max, SEED))
        got[0].close()
        first_zxid = got[1]
        self.assertGreaterEqual(first_zxid, self.zxid_max,
                                "round %d: first reply after restart has zxid %#x, but %#x "
                                "was acknowledged (seed %d)"
                                % (rnd, first_zxid, self.zxid_max, SEED))
        acked = sum(len(s.acked) for s in sessions)
        unknown = sum(len(s.unknown) for s in sessions)
        totals.update(acked=acked, unknown=unknown, applied=applied,
                      multis=sum(w.multi for s in sessions for w in s.acked))
        print("  round %2d: kill at %4.0f ms, windows %s: %5d acked, %3d unanswered, %3d "
              "applied; restart %4.0f ms, zxid %#x"
              % (rnd, kill_s * 1000, ",".join(map(str, windows)), acked, unknown, applied,
                 restart_ms, first_zxid), flush=True)
        return after

    def check_zxids(self, rnd, sessions):
        """Acknowledged zxids are new and above everything acknowledged
        before the previous restart; acknowledged sequential names are new."""
        floor = self.zxid_max
        for s in sessions:
            for w in s.acked:
                self.assertGreater(w.zxid, floor, "round %d: %s acknowledged at zxid %#x, "
                                   "not above %#x from before the restart (seed %d)"
                                   % (rnd, describe(w), w.zxid, floor, SEED))
                self.assertNotIn(w.zxid, self.zxids, "round %d: zxid %#x acknowledged twice"
                                 % (rnd, w.zxid))
                self.zxids.add(w.zxid)
                self.zxid_max = max(self.zxid_max, w.zxid)
                results = w.expect[1] if w.multi else [w.expect]
                for p, (err, res) in zip(w.prims, results):
                    if p.seq and res is not None:  # a failed multi reports ZOK, no name
                        name = s.parent + "/" + res
                        self.assertNotIn(name, self.seq_names,
                                         "round %d: sequential name %s acknowledged twice"
                                         % (rnd, name))
                        self.seq_names.add(name)

    def match(self, rnd, s, start, actual):
        """The actual state must be start + the acked writes + a prefix of
        the unknown ones; returns that prefix's length."""
        st = start.copy()
        for w in s.acked:
            w.apply(st, w.zxid)
        acked_st = st.copy()
        if not st.diff(actual):
            return 0
        for k, w in enumerate(s.unknown, 1):
            w.apply(st, None)
            if not st.diff(actual):
                return k
        self.fail("round %d, seed %d: %s after restart is neither its %d acknowledged "
                  "writes nor those plus a prefix of its %d unanswered ones (window %d)\n"
                  "  against the acknowledged writes: %s\n  against all sent: %s\n"
                  "  unanswered: %s"
                  % (rnd, SEED, s.parent, len(s.acked), len(s.unknown), s.window,
                     "; ".join(acked_st.diff(actual)), "; ".join(st.diff(actual)),
                     "; ".join(describe(w) for w in s.unknown[:8])))

    @staticmethod
    def children(conn, path):
        err, r = conn.call(zkwire.OP_GET_CHILDREN2, zkwire.get_body(path))
        assert err == zkwire.ZOK, err
        return sorted(r.string() for _ in range(r.int()))

    def log_mib(self):
        d = os.path.join(self.server.data_dir, "txnlog")
        try:
            return sum(os.stat(os.path.join(d, f)).st_blocks * 512
                       for f in os.listdir(d)) / (1 << 20)
        except OSError:
            return 0
