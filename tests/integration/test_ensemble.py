"""Replication as clients see it, on local ensembles (harness.Cluster):
reads and writes through followers and observers, watches across servers,
the leader SIGKILLed under write load (3 and 5 servers), followers that
come back through DIFF, SNAP or TRUNC, sessions that move to another server
or expire with theirs, zkCli.sh on a follower, and the seed's three-server
layout. Every test ends with the servers agreeing: the same tree read
through each of them (and, on Ringkeeper, the same `hash` line: zxid and
digest).

The tests that read Ringkeeper's logs do only that part on Ringkeeper;
everything else runs unchanged on Apache ZooKeeper (RK_TARGET=zookeeper),
which checks the tests themselves."""
import collections
import mmap
import os
import random
import re
import signal
import socket
import struct
import threading
import time
import unittest

from kazoo.client import KazooClient
from kazoo.exceptions import (ConnectionClosedError, ConnectionLoss, KazooException,
                              NodeExistsError, SessionExpiredError)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import EventType, KazooState
from kazoo.recipe.watchers import DataWatch

import zkwire
from harness import (TARGET, TEST_TIMEOUT_S, Cluster, _server_died, _test_timed_out,
                     close_quietly, wait_until)
from test_zkcli import ZkCli, CONNECTED

HASH_LINE = re.compile(r"^([0-9a-f]+): (-?\d+)\n$")
SESSION_MS = 4000  # the largest a 200 ms tick allows (maxSessionTimeout = 20 ticks)
# kazoo's default reconnect backoff grows to an hour; an election is short.
FAST_RETRY = dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5)
CONVERGE_S = 30
WALK_BATCH = 256  # requests in flight while walking a tree
OP_SET_WATCHES, XID_SET_WATCHES = 101, -8
DATA_CHANGED, SYNC_CONNECTED = 3, 3


def strings(paths):
    return struct.pack(">i", len(paths)) + b"".join(zkwire.put_string(p) for p in paths)


# ---- reading what a server holds ----

def read_tree(port, host="127.0.0.1"):
    """Every znode below / except /zookeeper, as server host:port has it:
    {path: (data, Stat tuple)}; None when it serves no session now."""
    try:
        c = zkwire.Conn(port, host=host, io_timeout=10.0)
    except OSError:
        return None
    try:
        if c.handshake(10000)[0] <= 0:
            return None
        tree, level = {}, ["/"]
        while level:
            children = []
            for at in range(0, len(level), WALK_BATCH):
                batch = level[at:at + WALK_BATCH]
                for path in batch:
                    c.send_request(zkwire.OP_GET_DATA, zkwire.get_body(path))
                    c.send_request(zkwire.OP_GET_CHILDREN2, zkwire.get_body(path))
                for path in batch:
                    _, _, err, r = c.read_reply()
                    _, _, err2, r2 = c.read_reply()
                    if err or err2:  # deleted while we walk: the next walk sees it
                        continue
                    tree[path] = (r.buffer(), tuple(r.stat().values()))
                    base = path.rstrip("/") + "/"
                    children += [base + r2.string() for _ in range(r2.int())]
            level = sorted(p for p in children if p != "/zookeeper")
        c.close_session()
        return tree
    except (OSError, EOFError, ValueError):
        return None
    finally:
        c.close()


def tree_diff(a, b, limit=8):
    out = []
    for p in sorted(set(a) | set(b)):
        if p not in a or p not in b:
            out.append("%s only on %s" % (p, "the first" if p in a else "the second"))
        elif a[p] != b[p]:
            out.append("%s: %r != %r" % (p, a[p], b[p]))
    return out[:limit] + (["... %d more" % (len(out) - limit)] if len(out) > limit else [])


def hash_line(cluster, i):
    """(zxid, digest) from Ringkeeper's `hash`, or None."""
    m = HASH_LINE.match(cluster.fourlw(i, "hash"))
    return (int(m.group(1), 16), int(m.group(2))) if m else None


def connected_port(zk):
    """The client port kazoo's socket is connected to (kazoo keeps it in a
    private attribute; None if that changes)."""
    try:
        return zk._connection._socket.getpeername()[1]
    except (AttributeError, OSError):
        return None


def in_txn_log(member, needle):
    """Whether a txn log file under member's data dir (Ringkeeper's
    txnlog/log.*, ZooKeeper's version-2/log.*) holds these bytes."""
    for d, _, files in os.walk(member.data_dir):
        for name in files:
            if not name.startswith("log."):
                continue
            try:
                with open(os.path.join(d, name), "rb") as f, \
                        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    if m.find(needle) >= 0:
                        return True
            except (OSError, ValueError):  # gone, or empty
                pass
    return False


def snapshot_files(member):
    """Names of the snapshot files under member's data dir (Ringkeeper's
    snapshots/snapshot.*, ZooKeeper's version-2/snapshot.*)."""
    return {name for _, _, files in os.walk(member.data_dir) for name in files
            if name.startswith("snapshot.")}


def freeze(member):
    """SIGSTOP the server and wait until every thread of it has stopped (a
    signal is delivered asynchronously: a thread on another CPU can still
    ack a proposal right after kill() returns)."""
    pid = member.proc.pid
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
            states = []
            for t in tasks:
                with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            return all(st in "tT" for st in states)
        except OSError:
            return False
    if not wait_until(stopped, 5, 0.005):
        raise AssertionError("server %d did not stop on SIGSTOP" % member.id)


def mntr(cluster, i):
    return dict(l.split("\t", 1) for l in cluster.fourlw(i, "mntr").splitlines() if "\t" in l)


# ---- a write load that records what was acknowledged ----

class Writer(threading.Thread):
    """Creates /load/n-0000000000, n-0000000001, ... one after the other
    through kazoo, retrying each name until a server answers. A create is
    acknowledged when it returns, or when a retry finds the node there (only
    this thread creates these names, so an earlier try went through).
    Records each acknowledgement's time."""

    def __init__(self, hosts, pause_s=0.004):
        super().__init__(daemon=True)
        self.zk = KazooClient(hosts=hosts, timeout=SESSION_MS / 1000,
                              connection_retry=FAST_RETRY)
        self.zk.start(timeout=15)
        self.zk.ensure_path("/load")
        self.pause_s = pause_s
        self.acks = []  # (index, monotonic time of the ack)
        self.sent = []  # monotonic time the acknowledged try was sent, by index
        self.next = 0  # names >= next were never sent
        self.errors = collections.Counter()
        self.problems = []
        self.halt = threading.Event()

    @staticmethod
    def path(i):
        return "/load/n-%010d" % i

    def run(self):
        tries = 0
        while not self.halt.is_set():
            tries += 1
            t_sent = time.monotonic()
            try:
                self.zk.create_async(self.path(self.next), b"%d" % self.next).get(timeout=5)
            except NodeExistsError:
                if tries == 1:
                    self.problems.append("%s existed before its first create"
                                         % self.path(self.next))
            except (ConnectionLoss, ConnectionClosedError, SessionExpiredError,
                    KazooTimeoutError) as e:
                self.errors[type(e).__name__] += 1
                time.sleep(0.02)
                continue
            except KazooException as e:
                self.problems.append("%s: %r" % (self.path(self.next), e))
                return
            self.acks.append((self.next, time.monotonic()))
            self.sent.append(t_sent)
            self.next += 1
            tries = 0
            time.sleep(self.pause_s)

    def acked_after(self, t):
        return sum(1 for _, ta in self.acks if ta > t)

    def window(self, t):
        """(seconds from t to the first ack of a try sent after t, the
        longest time without an ack from t on), None when writes have not
        resumed. (A reply in flight at t is an ack after t of a write
        committed before it: it does not end the window.)"""
        after = [ta for (_, ta), ts in zip(self.acks, self.sent) if ts > t]
        if not after:
            return None
        times = [t] + [ta for _, ta in self.acks if t < ta <= after[0]]
        gap = max(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else 0
        return after[0] - t, gap

    def finish(self):
        self.halt.set()
        self.join(15)
        close_quietly(self.zk)
        return not self.is_alive()


class EnsembleCase(unittest.TestCase):
    """Each test starts its own cluster (self.cluster()); the cleanups stop
    it and fail the test if a server exited by itself or logged a
    sanitizer report."""

    def setUp(self):
        signal.signal(signal.SIGALRM, _test_timed_out)
        signal.alarm(TEST_TIMEOUT_S)
        self.addCleanup(signal.alarm, 0)
        signal.signal(signal.SIGUSR1, _server_died)
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.SIG_IGN)

    def cluster(self, n, **kw):
        c = Cluster(n, **kw)
        self.addCleanup(self.finish_cluster, c)
        c.start()
        return c

    def finish_cluster(self, c):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        problems = []
        for i, m in c.members.items():
            t0, was_running = time.monotonic(), c.running(i)
            m.stop()  # SIGTERM; SIGKILL after 10 s
            if was_running and time.monotonic() - t0 > 8:
                problems.append("server %d: still running 10 s after SIGTERM (killed)" % i)
        problems += c.problems()
        tails = c.log_tails(30)
        c.destroy()
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + tails)

    def kazoo(self, hosts, **kw):
        kw.setdefault("timeout", SESSION_MS / 1000)
        kw.setdefault("connection_retry", FAST_RETRY)
        zk = KazooClient(hosts=hosts, **kw)
        self.addCleanup(close_quietly, zk)
        zk.start(timeout=15)
        return zk

    def on(self, c, i, **kw):
        """A kazoo client of server i alone."""
        return self.kazoo(c.members[i].hosts, **kw)

    def running(self, c):
        return [i for i in c.ids if c.running(i)]

    def converge(self, c, timeout_s=CONVERGE_S):
        """Waits until every running server holds the same tree (and, on
        Ringkeeper, answers the same hash line); returns the tree."""
        ids = self.running(c)
        seen = {}

        def agree():
            if TARGET == "ringkeeper":
                seen["hash"] = {i: hash_line(c, i) for i in ids}
                if None in seen["hash"].values() or len(set(seen["hash"].values())) != 1:
                    return None
            seen["trees"] = {i: read_tree(c.client_ports[i]) for i in ids}
            trees = list(seen["trees"].values())
            if any(t is None for t in trees) or any(t != trees[0] for t in trees[1:]):
                return None
            return trees[0]

        tree = wait_until(agree, timeout_s, 0.3)
        if tree is None:
            trees = seen.get("trees", {})
            diffs = ["server %d vs %d: %s" % (ids[0], i, "; ".join(tree_diff(trees[ids[0]], t)))
                     for i, t in trees.items() if i != ids[0] and t and trees[ids[0]]]
            self.fail("servers %s did not converge in %d s: hash %s; %s\n%s"
                      % (ids, timeout_s, seen.get("hash"), " | ".join(diffs) or
                         {i: t is not None for i, t in trees.items()}, c.log_tails(20)))
        return tree

    @staticmethod
    def log_size(c, i):
        with open(c.members[i].log_path, "rb") as f:
            return len(f.read())

    @staticmethod
    def log_since(c, i, offset):
        with open(c.members[i].log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def wait_log(self, c, i, offset, pattern, timeout_s=15):
        """Waits until server i's log past offset matches pattern."""
        rx = re.compile(pattern)
        if not wait_until(lambda: rx.search(self.log_since(c, i, offset)), timeout_s, 0.1):
            self.fail("server %d never logged /%s/; its log since then:\n%s"
                      % (i, pattern, self.log_since(c, i, offset)[-4000:]))


# ---- 1. reads, writes and watches across servers ----

class ReplicationTest(EnsembleCase):
    def test_walk_through_on_follower_and_visibility_across_servers(self):
        c = self.cluster(3)
        leader = c.wait_quorum()
        f1, f2 = [i for i in c.ids if i != leader]
        # The three-host string with a follower first, in order: kazoo
        # connects there.
        zk = self.kazoo(c.connect_string([f1, leader, f2]), randomize_hosts=False)
        port = connected_port(zk)
        if port is not None:
            self.assertEqual(port, c.client_ports[f1])
        self.assertIsNone(zk.exists("/gunwu"))
        self.assertEqual(zk.ensure_path("/gunwu"), "/gunwu")
        self.assertEqual(zk.create("/gunwu/test1", b"This is Zookeeper test"), "/gunwu/test1")
        data, st0 = zk.get("/gunwu/test1")
        self.assertEqual(data, b"This is Zookeeper test")
        st1 = zk.set("/gunwu/test1", data + b"***")
        self.assertEqual((st1.version, st1.dataLength, st1.czxid), (1, 25, st0.czxid))
        self.assertGreater(st1.mzxid, st0.mzxid)
        self.assertEqual(zk.get("/gunwu/test1"), (b"This is Zookeeper test***", st1))
        self.assertGreaterEqual(st0.czxid >> 32, 1, "an ensemble's zxids carry its epoch")

        # A write on each server is seen on the other two after sync.
        clients = {i: self.on(c, i) for i in c.ids}
        for writer in c.ids:
            path = "/gunwu/from-%d" % writer
            clients[writer].create(path, b"w%d" % writer)
            for reader in c.ids:
                clients[reader].sync(path)
                data, st = clients[reader].get(path)
                self.assertEqual(data, b"w%d" % writer, "written on %d, read on %d"
                                 % (writer, reader))
        zk.delete("/gunwu/test1")
        clients[leader].sync("/gunwu")
        self.assertIsNone(clients[leader].exists("/gunwu/test1"))
        self.assertEqual(sorted(clients[f2].get_children("/gunwu")),
                         ["from-%d" % i for i in c.ids])

        # A watch set on one server fires for a change written through another.
        for watcher_id, writer_id in ((f1, f2), (leader, f1), (f2, leader)):
            path = "/gunwu/from-%d" % writer_id
            fired, events = threading.Event(), []
            clients[watcher_id].get(path, watch=lambda e: (events.append(e), fired.set()))
            clients[writer_id].set(path, b"changed by %d" % writer_id)
            self.assertTrue(fired.wait(10), "watch on %d for a set through %d never fired"
                            % (watcher_id, writer_id))
            self.assertEqual((events[0].type, events[0].path), (EventType.CHANGED, path))
        fired, events = threading.Event(), []
        clients[f2].get_children("/gunwu", watch=lambda e: (events.append(e), fired.set()))
        clients[f1].create("/gunwu/late")
        self.assertTrue(fired.wait(10), "child watch on %d never fired" % f2)
        self.assertEqual(events[0].type, EventType.CHILD)
        tree = self.converge(c)
        self.assertEqual(tree["/gunwu/from-%d" % f1][0], b"changed by %d" % f1)


# ---- 2. the leader SIGKILLed under write load ----

class LeaderFailoverTest(EnsembleCase):
    def failover(self, n, kills):
        c = self.cluster(n)
        leader = c.wait_quorum()
        followers = [i for i in c.ids if i != leader]
        w = Writer(c.connect_string(followers))
        self.addCleanup(w.finish)
        w.start()
        self.assertTrue(wait_until(lambda: len(w.acks) >= 150 or w.problems, 20),
                        "no write load: %d acks, errors %s" % (len(w.acks), w.errors))
        killed = []
        for k in range(kills):
            t_kill = time.monotonic()
            c.kill(leader)
            killed.append(leader)
            new_leader = c.wait_quorum(timeout=30)
            t_quorum = time.monotonic()
            self.assertNotIn(new_leader, killed)
            self.assertTrue(wait_until(lambda: w.acked_after(t_kill) >= 100 or w.problems, 30),
                            "writes did not resume after killing leader %d: %d acks since, "
                            "errors %s\n%s" % (leader, w.acked_after(t_kill), dict(w.errors),
                                               c.log_tails(20)))
            # Measured, not asserted: a timing is no test (STYLE.md).
            first, gap = w.window(t_kill)
            print("\n  %d servers, kill %d of leader %d: new leader %d, all settled after "
                  "%.0f ms; writes sent after the kill acknowledged from %.0f ms on (longest "
                  "wait for any ack %.0f ms); client errors so far %s"
                  % (n, k + 1, leader, new_leader, (t_quorum - t_kill) * 1000, first * 1000,
                     gap * 1000, dict(w.errors)), flush=True)
            leader = new_leader
        self.assertTrue(w.finish(), "the writer hung")
        self.assertEqual(w.problems, [])
        acked = {i for i, _ in w.acks}

        # No acknowledged write is lost on the servers still up ...
        for i in self.running(c):
            zk = self.on(c, i)
            zk.sync("/load")
            names = set(zk.get_children("/load"))
            missing = sorted(Writer.path(j) for j in acked if Writer.path(j)[6:] not in names)
            self.assertEqual(missing[:5], [], "server %d lost %d acknowledged creates"
                             % (i, len(missing)))
            close_quietly(zk)
        # ... nor once the killed ones are back and all agree.
        for i in killed:
            c.start_one(i)
        c.wait_quorum(timeout=30)
        tree = self.converge(c)
        have = {int(p[len("/load/n-"):]) for p in tree if p.startswith("/load/n-")}
        self.assertEqual(sorted(acked - have)[:5], [])
        # What else is there was sent (its reply lost in a kill), never invented.
        self.assertEqual(sorted(j for j in have - acked if j > w.next), [])
        print("\n  %d servers: %d creates acknowledged, %d present, all %d servers agree"
              % (n, len(acked), len(have), n), flush=True)

    def test_three_servers_leader_killed_under_load(self):
        self.failover(3, kills=1)

    def test_five_servers_two_leaders_killed_under_load(self):
        self.failover(5, kills=2)


# ---- 3, 4. followers back through DIFF, SNAP and TRUNC ----

class SyncTest(EnsembleCase):
    def test_follower_back_after_a_few_writes_gets_diff(self):
        c = self.cluster(3)
        leader = c.wait_quorum()
        f = next(i for i in c.ids if i != leader)
        zk = self.on(c, leader)
        zk.create("/before", b"0")
        c.kill(f)
        for k in range(20):
            zk.create("/diff-%02d" % k, b"%d" % k)
        zk.set("/before", b"1")
        mark = self.log_size(c, leader)
        c.start_one(f)
        self.assertEqual(c.wait_quorum(timeout=30), leader)
        if TARGET == "ringkeeper":
            self.wait_log(c, leader, mark, r"server %d: DIFF from 0x" % f)
            self.assertNotIn("sent snapshot", self.log_since(c, leader, mark))
        tree = self.converge(c)
        self.assertEqual(tree["/before"][0], b"1")
        self.assertEqual(sum(p.startswith("/diff-") for p in tree), 20)
        fz = self.on(c, f)
        self.assertEqual(fz.get("/diff-19")[0], b"19")

    def test_follower_back_after_two_snapshots_gets_snap(self):
        c = self.cluster(3, extra_cfg=["snapCount=100"])
        leader = c.wait_quorum()
        f = next(i for i in c.ids if i != leader)
        zk = self.on(c, leader)
        zk.create("/snap")
        c.kill(f)
        # Writes, in pipelined batches, until the leader has taken two
        # snapshots since (ZooKeeper takes one every 50-100 txns with
        # snapCount=100; Ringkeeper every 100, none while one is being
        # written): the history it keeps for DIFF starts past the follower.
        before = snapshot_files(c.members[leader])
        n = 0
        while len(snapshot_files(c.members[leader]) - before) < 2 and n < 3000:
            batch = [zk.create_async("/snap/n-%04d" % k, b"%d" % k) for k in range(n, n + 50)]
            for r in batch:
                r.get(timeout=20)
            n += 50
            time.sleep(0.05)
        self.assertGreaterEqual(len(snapshot_files(c.members[leader]) - before), 2,
                                "the leader took fewer than 2 snapshots in %d txns" % n)
        mark = self.log_size(c, leader)
        fmark = self.log_size(c, f)
        c.start_one(f)
        self.assertEqual(c.wait_quorum(timeout=30), leader)
        if TARGET == "ringkeeper":
            self.wait_log(c, leader, mark, r"sent snapshot 0x[0-9a-f]+ \(\d+ bytes\) to server %d"
                          % f)
            self.wait_log(c, f, fmark, r"installed the leader's snapshot at zxid")
        tree = self.converge(c)
        self.assertEqual(sum(p.startswith("/snap/n-") for p in tree), n)
        self.assertEqual(self.on(c, f).get("/snap/n-%04d" % (n - 1))[0], b"%d" % (n - 1))

    def test_old_leaders_uncommitted_tail_is_truncated(self):
        c = self.cluster(3)
        old = c.wait_quorum()
        f1, f2 = [i for i in c.ids if i != old]
        zk = self.on(c, old)
        zk.create("/trunc")
        for k in range(5):
            zk.create("/trunc/committed-%d" % k)
        # Freeze both followers: the leader still proposes and logs, but
        # nothing can commit. (SIGSTOP rather than SIGKILL: a follower's
        # closed connection would make the leader step down at its next
        # half tick, before our writes reach it; frozen followers give it
        # syncLimit.)
        for i in (f1, f2):
            freeze(c.members[i])
        pending = [zk.create_async("/trunc/never-%d" % k) for k in range(5)]
        # Until the leader's txn log holds them (both servers write a
        # create's path as plain bytes), within syncLimit (1 s), after which
        # it steps down.
        self.assertTrue(wait_until(lambda: in_txn_log(c.members[old], b"/trunc/never-4"),
                                   0.9, 0.02), "the leader did not log the 5 proposals")
        c.kill(old)
        for i in (f1, f2):
            c.kill(i)  # SIGKILL ends a stopped process too
        close_quietly(zk)
        for r in pending:
            self.assertTrue(r.ready(), "a create through the killed leader is still pending")
            self.assertFalse(r.successful(), "a create without a quorum was acknowledged: %r"
                             % r.value)
        # The two followers elect one of themselves and write on.
        c.start_one(f1)
        c.start_one(f2)
        new = c.wait_quorum(timeout=30)
        self.assertIn(new, (f1, f2))
        zk2 = self.on(c, new)
        for k in range(3):
            zk2.create("/trunc/new-epoch-%d" % k)
        mark, omark = self.log_size(c, new), self.log_size(c, old)
        c.start_one(old)
        self.assertEqual(c.wait_quorum(timeout=30), new)
        if TARGET == "ringkeeper":
            self.wait_log(c, new, mark, r"server %d: TRUNC to 0x" % old)
            self.wait_log(c, old, omark, r"truncated the txn log after 0x")
        tree = self.converge(c)
        children = sorted(p[len("/trunc/"):] for p in tree if p.startswith("/trunc/"))
        self.assertEqual(children, ["committed-%d" % k for k in range(5)]
                         + ["new-epoch-%d" % k for k in range(3)])
        for i in c.ids:  # and asked of each server, not just walked
            self.assertIsNone(self.on(c, i).exists("/trunc/never-0"), "server %d" % i)

    def test_leader_without_quorum_after_proposing_steps_down_and_rejoins(self):
        # Ringkeeper's leader re-executes itself (same PID) to drop the
        # proposals it applied but could not commit; ZooKeeper's steps down
        # in the same JVM. Either way: same process, back in the ensemble.
        c = self.cluster(3)
        old = c.wait_quorum()
        pid = c.members[old].proc.pid
        cores = mntr(c, old).get("zk_cores")  # Ringkeeper's: its event loops
        followers = [i for i in c.ids if i != old]
        zk = self.on(c, old)
        zk.create("/stepdown")
        mark = self.log_size(c, old)
        try:
            for i in followers:
                freeze(c.members[i])
            pending = [zk.create_async("/stepdown/maybe-%d" % k) for k in range(5)]
            self.assertTrue(wait_until(lambda: c.mode(old) != "leader", 10),
                            "a leader whose followers are frozen is still leading")
            if TARGET == "ringkeeper":
                self.wait_log(c, old, mark, r"re-executing to rebuild the state from disk")
        finally:
            for i in followers:
                c.members[i].proc.send_signal(signal.SIGCONT)
        for r in pending:
            self.assertTrue(wait_until(r.ready, 10), "a create is still pending")
            self.assertFalse(r.successful(), "a create without a quorum was acknowledged")
        c.wait_quorum(timeout=30)
        self.assertEqual(c.members[old].proc.pid, pid)
        self.assertTrue(c.running(old))
        if TARGET == "ringkeeper":
            self.assertEqual(mntr(c, old).get("zk_cores"), cores,
                             "the re-executed server runs on fewer cores")
        zk2 = self.kazoo(c.connect_string())
        zk2.create("/stepdown/after")
        tree = self.converge(c)
        # Never acknowledged, so each may be there or not, but on every
        # server alike (converge) and whole.
        self.assertIn("/stepdown/after", tree)


# ---- 5, 6. sessions: moved to another server, or expired ----

class SessionTest(EnsembleCase):
    def test_session_moves_to_another_server_when_its_server_dies(self):
        c = self.cluster(3)
        leader = c.wait_quorum()
        f, other = [i for i in c.ids if i != leader]
        states = []
        zk = self.kazoo(c.connect_string([f, other, leader]), randomize_hosts=False)
        zk.add_listener(states.append)
        port = connected_port(zk)
        if port is not None:
            self.assertEqual(port, c.client_ports[f])
        sid = zk.client_id[0]
        zk.create("/mine", b"", ephemeral=True)
        zk.create("/watched", b"0")
        # kazoo drops its watches when a connection is lost (they fire with
        # EventType.NONE); its DataWatch re-arms after the reconnect.
        seen = []
        DataWatch(zk, "/watched", lambda data, stat: seen.append(data))
        # A raw session on the same server does what the Java client does
        # on a reconnect: resume, then setWatches from the last zxid seen.
        raw = zkwire.session(c.client_ports[f], SESSION_MS)
        self.addCleanup(raw.close)
        self.assertEqual(raw.create("/raw-mine", b"", zkwire.EPHEMERAL)[0], zkwire.ZOK)
        err, (_, st) = raw.get("/watched", watch=True)
        raw_zxid = st["mzxid"]

        c.kill(f)
        t0 = time.monotonic()
        self.assertTrue(wait_until(lambda: KazooState.SUSPENDED in states
                                   and zk.state == KazooState.CONNECTED, SESSION_MS / 1000),
                        "kazoo did not reconnect within the session timeout: %s" % states)
        print("\n  kazoo resumed its session on another server %.0f ms after the kill"
              % ((time.monotonic() - t0) * 1000), flush=True)
        raw.close()
        raw2 = zkwire.Conn(c.client_ports[other])
        self.addCleanup(raw2.close)
        self.assertEqual(raw2.handshake(SESSION_MS, raw.session_id, raw.passwd)[1:],
                         (raw.session_id, raw.passwd), "the raw session was not resumed")
        raw2.send_frame(struct.pack(">ii", XID_SET_WATCHES, OP_SET_WATCHES)
                        + struct.pack(">q", raw_zxid) + strings(["/watched"])
                        + strings([]) + strings([]))
        xid, _, err, _ = raw2.read_reply()
        self.assertEqual((xid, err, raw2.events), (XID_SET_WATCHES, 0, []))

        self.assertNotIn(KazooState.LOST, states)
        self.assertEqual(zk.client_id[0], sid)
        self.assertNotEqual(connected_port(zk), c.client_ports[f])
        lz = self.on(c, leader)
        for path, owner in (("/mine", sid), ("/raw-mine", raw.session_id)):
            st = lz.exists(path)
            self.assertIsNotNone(st, "%s went with its server" % path)
            self.assertEqual(st.ephemeralOwner, owner)
        self.assertEqual(zk.exists("/mine").ephemeralOwner, sid)

        lz.set("/watched", b"1")  # through the leader, a third server for raw2
        self.assertTrue(wait_until(lambda: b"1" in seen, 10),
                        "kazoo's DataWatch missed the change: %s" % seen)
        for _ in range(50):
            if raw2.events:
                break
            raw2.ping()
            time.sleep(0.05)
        self.assertEqual(raw2.events, [(DATA_CHANGED, SYNC_CONNECTED, "/watched")],
                         "the watch set through the dead server did not fire")
        c.start_one(f)
        c.wait_quorum(timeout=30)
        tree = self.converge(c)
        self.assertEqual(tree["/mine"][1][7], sid)  # ephemeralOwner
        self.assertEqual(tree["/raw-mine"][1][7], raw.session_id)

    def expire_with_dead_server(self, victim_role):
        c = self.cluster(3)
        leader = c.wait_quorum()
        victim = leader if victim_role == "leader" else next(i for i in c.ids if i != leader)
        raw = zkwire.session(c.client_ports[victim], 1000)
        self.addCleanup(raw.close)
        self.assertEqual(raw.create("/gone-with-%s" % victim_role, b"", zkwire.EPHEMERAL)[0],
                         zkwire.ZOK)
        path = "/gone-with-%s" % victim_role
        others = [i for i in c.ids if i != victim]
        watchers = {i: self.on(c, i) for i in others}
        for i, zk in watchers.items():
            zk.sync(path)
            self.assertEqual(zk.exists(path).ephemeralOwner, raw.session_id, "server %d" % i)
        c.kill(victim)  # and the client never comes back
        t0 = time.monotonic()
        for i, zk in watchers.items():
            self.assertTrue(wait_until(lambda: self.gone(zk, path), 20),
                            "server %d still has %s 20 s after its session's server died"
                            % (i, path))
        print("\n  ephemeral of a %s's client gone %.0f ms after the kill (session 1000 ms)"
              % (victim_role, (time.monotonic() - t0) * 1000), flush=True)
        c.start_one(victim)
        c.wait_quorum(timeout=30)
        self.assertNotIn(path, self.converge(c))

    @staticmethod
    def gone(zk, path):
        try:
            return zk.exists(path) is None
        except KazooException:
            return False

    def test_ephemeral_of_a_followers_client_expires_everywhere(self):
        self.expire_with_dead_server("follower")

    def test_ephemeral_of_a_leaders_client_expires_everywhere(self):
        self.expire_with_dead_server("leader")


# ---- 7. zkCli.sh on a follower ----

class ZkCliOnFollowerTest(EnsembleCase):
    def test_zkcli_commands_through_a_follower(self):
        c = self.cluster(3)
        leader = c.wait_quorum()
        f = next(i for i in c.ids if i != leader)
        cli = ZkCli(c.members[f].hosts)
        self.addCleanup(cli.close)
        cli.wait_for(re.escape(CONNECTED), timeout_s=30)
        cli.run('create /cli "one"', r"^Created /cli$")
        cli.run("get /cli", r"^one$")
        cli.run("create /cli/kid two", r"^Created /cli/kid$")
        cli.run("ls /cli", r"^\[kid\]$")
        cli.send("set /cli three")  # prints nothing; zkCli runs commands in order
        cli.run("get /cli", r"^three$")
        lz = self.on(c, leader)
        lz.sync("/cli")
        self.assertEqual(lz.get("/cli")[0], b"three")
        self.assertEqual(lz.get_children("/cli"), ["kid"])
        cli.send("delete /cli/kid")
        cli.run("ls /cli", r"^\[\]$")
        cli.send("delete /cli")
        cli.run("ls /", r"^\[zookeeper\]$")
        lz.sync("/")
        self.assertIsNone(lz.exists("/cli"))
        cli.send("quit")
        self.assertEqual(cli.proc.wait(30), 0)
        self.converge(c)


# ---- 8. observers ----

class ObserverTest(EnsembleCase):
    def test_observer_reads_forwards_and_is_not_in_the_quorum(self):
        c = self.cluster(4, observers=1)
        leader = c.wait_quorum()
        obs = 4
        self.assertNotEqual(leader, obs)
        self.assertIn("Mode: observer", c.fourlw(obs, "srvr"))
        self.assertEqual(mntr(c, obs).get("zk_server_state"), "observer")
        oz = self.on(c, obs)
        self.assertEqual(oz.create("/obs", b"through the observer"), "/obs")
        lz = self.on(c, leader)
        lz.sync("/obs")
        self.assertEqual(lz.get("/obs")[0], b"through the observer")
        lz.set("/obs", b"through the leader")
        oz.sync("/obs")
        self.assertEqual(oz.get("/obs")[0], b"through the leader")

        # Without the observer the voters go on as before: same leader,
        # writes commit.
        c.kill(obs)
        f = next(i for i in c.ids if i not in (leader, obs))
        fz = self.on(c, f)
        for k in range(10):
            fz.create("/obs/after-%d" % k)
            time.sleep(0.1)  # over 5 ticks in all: past syncLimit
        self.assertEqual(c.wait_quorum(timeout=5), leader)
        c.start_one(obs)
        self.assertEqual(c.wait_quorum(timeout=30), leader)
        self.assertEqual(c.mode(obs), "observer")
        tree = self.converge(c)
        self.assertEqual(sum(p.startswith("/obs/after-") for p in tree), 10)


class ObserverMntrTest(EnsembleCase):
    def test_mntr_counts_observers_apart_from_synced_followers(self):
        # ZooKeeper 3.8's leader: zk_learners counts every learner,
        # zk_synced_followers the voting ones, zk_synced_observers the
        # observers; a quorum check on zk_synced_followers must not count
        # servers that do not vote.
        c = self.cluster(4, observers=1)
        leader = c.wait_quorum()
        wait_until(lambda: mntr(c, leader).get("zk_learners") == "3", 10)
        m = mntr(c, leader)
        self.assertEqual((m.get("zk_learners"), m.get("zk_synced_followers"),
                          m.get("zk_synced_observers")), ("3", "2", "1"), m)
        c.kill(4)
        self.assertTrue(wait_until(lambda: mntr(c, leader).get("zk_learners") == "2", 10))
        m = mntr(c, leader)
        self.assertEqual((m.get("zk_synced_followers"), m.get("zk_synced_observers")),
                         ("2", "0"), m)


# ---- 9. the seed's layout: three servers on consecutive client ports ----

def consecutive_free_ports(count, tries=50):
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(20000, 40000)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no %d consecutive free ports" % count)


def seed_cluster():
    """The seed's docker-compose ensemble as three local processes: zk1..zk3
    with client ports B, B+1, B+2 (the seed publishes 2181..2183), and the
    zookeeper:3.8 image's defaults tickTime=2000, initLimit=5, syncLimit=2."""
    c = Cluster(3, tick_ms=2000, init_limit=5, sync_limit=2)
    taken = set(c.quorum_ports.values()) | set(c.election_ports.values())
    base = consecutive_free_ports(3)
    while taken & set(range(base, base + 3)):
        base = consecutive_free_ports(3)
    old = dict(c.client_ports)
    new = {i: base + i - 1 for i in c.ids}
    for i, m in c.members.items():
        with open(m.cfg) as f:
            text = f.read()
        text = text.replace("clientPort=%d\n" % old[i], "clientPort=%d\n" % new[i])
        for j in c.ids:
            text = text.replace(";127.0.0.1:%d\n" % old[j], ";127.0.0.1:%d\n" % new[j])
        with open(m.cfg, "w") as f:
            f.write(text)
        m.port = new[i]
    c.client_ports = new
    return c


class SeedLayoutTest(EnsembleCase):
    def test_seed_notebook_against_three_consecutive_ports(self):
        c = seed_cluster()
        self.addCleanup(self.finish_cluster, c)
        c.start()
        c.wait_quorum(timeout=30)
        ports = sorted(c.client_ports.values())
        self.assertEqual(ports, [ports[0], ports[0] + 1, ports[0] + 2])
        hosts = ",".join("127.0.0.1:%d" % p for p in ports)

        # The notebook, line by line.
        zk = KazooClient(hosts=hosts)
        self.addCleanup(close_quietly, zk)
        zk.start(timeout=30)
        self.assertIsNone(zk.exists("/gunwu"))
        self.assertEqual(zk.ensure_path("/gunwu"), "/gunwu")
        lines = b"This is Zookeeper test"
        self.assertEqual(zk.create("/gunwu/test1", lines), "/gunwu/test1")
        data, stat = zk.get("/gunwu/test1")
        self.assertEqual(data, b"This is Zookeeper test")
        st = zk.set("/gunwu/test1", data + bytes("***", "UTF-8"))
        self.assertEqual((st.version, st.cversion, st.aversion, st.ephemeralOwner,
                          st.dataLength, st.numChildren), (1, 0, 0, 0, 25, 0))
        self.assertEqual((st.czxid, st.pzxid), (stat.czxid, stat.czxid))
        self.assertEqual(st.mzxid, st.czxid + 1)  # as the seed's 4294971847/8
        self.assertGreaterEqual(st.czxid >> 32, 1)  # the epoch, 1 in the seed's 0x1000011c7
        self.assertGreaterEqual(st.mtime, st.ctime)
        data, stat = zk.get("/gunwu/test1")
        self.assertEqual(data, b"This is Zookeeper test***")
        zk.stop()
        self.assertEqual(zk.state, KazooState.LOST)
        zk.close()

        # Each of the three serves what the notebook wrote.
        for p in ports:
            one = self.kazoo("127.0.0.1:%d" % p, timeout=10.0)
            one.sync("/gunwu/test1")
            self.assertEqual(one.get("/gunwu/test1")[0], b"This is Zookeeper test***")
        self.converge(c)


if __name__ == "__main__":
    unittest.main()
