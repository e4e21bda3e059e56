"""A network partition that isolates the leader, made with network
namespaces: three servers, each in a namespace of its own (10.231.0.1..3)
with a veth to a bridge in a fourth namespace (10.231.0.254), where the
test's clients live. Taking the leader's bridge port down cuts it off from
the other servers and from those clients, while a client inside its own
namespace can still talk to it: that client must never see a write
succeed, the two others must elect a leader and take writes, and once the
link is back the old leader must rejoin (DIFF or TRUNC) and agree with
them on every znode.

Needs root (ip netns add); skips otherwise. Everything it creates
(namespaces, and with them the veths and the bridge; processes; dirs) is
removed in its cleanups, whatever happens. RK_TARGET=zookeeper runs the
same scenario on Apache ZooKeeper's QuorumPeerMain."""
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

import zkwire
from test_ensemble import Writer
from harness import (TARGET, TEST_TIMEOUT_S, ClusterMember, _live, _server_died,
                     _test_timed_out, close_quietly, wait_until)

SUBNET = "10.231.0"  # an unusual /24, so nothing on the host routes it
BRIDGE_ADDR = SUBNET + ".254"
CLIENT_PORT, QUORUM_PORT, ELECTION_PORT = 2181, 2888, 3888
TICK_MS = 200
SYNC_LIMIT = 5  # ticks: a cut-off leader steps down after 1 s
SESSION_S = 4.0
FAST_RETRY = dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5)
HASH_LINE = re.compile(r"^([0-9a-f]+): (-?\d+)\n$")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*args, check=True):
    """Runs ip(8) and friends; returns the completed process."""
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    if check and p.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                                 p.stderr.strip()))
    return p


def setns_fd(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


@contextlib.contextmanager
def in_netns(name):
    """Runs the block with this thread in network namespace `name`: sockets
    it opens, and threads it starts (kazoo's), live there."""
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/var/run/netns/" + name, os.O_RDONLY)
    try:
        setns_fd(target)
        try:
            yield
        finally:
            setns_fd(here)
    finally:
        os.close(target)
        os.close(here)


def fourlw(addr, word, timeout_s=2.0):
    try:
        with socket.create_connection((addr, CLIENT_PORT), timeout=timeout_s) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode(errors="replace")
                out += chunk
    except OSError:
        return ""


def mode_of(addr):
    for line in fourlw(addr, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):].strip()
    return None


def read_tree(addr):
    """Every znode but /zookeeper's as the server at addr has it, or None."""
    try:
        c = zkwire.Conn(CLIENT_PORT, host=addr, io_timeout=10.0)
    except OSError:
        return None
    try:
        if c.handshake(10000)[0] <= 0:
            return None
        tree, level = {}, ["/"]
        while level:
            for path in level:
                c.send_request(zkwire.OP_GET_DATA, zkwire.get_body(path))
                c.send_request(zkwire.OP_GET_CHILDREN2, zkwire.get_body(path))
            children = []
            for path in level:
                _, _, err, r = c.read_reply()
                _, _, err2, r2 = c.read_reply()
                if err or err2:
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


class NetnsMember(ClusterMember):
    """Server i in namespace ns at SUBNET.i, started through `ip netns exec`
    (which execs, so the process is the server itself)."""

    def __init__(self, cluster, i):
        self.target = cluster.target
        self.tick_ms = TICK_MS
        self.id = i
        self.ns = cluster.ns[i]
        self.addr = "%s.%d" % (SUBNET, i)
        self.port = CLIENT_PORT
        self.dir = os.path.join(cluster.dir, "s%d" % i)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.stopping = False
        self.died = []
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write("%d\n" % i)
        lines = ["tickTime=%d" % TICK_MS, "initLimit=10", "syncLimit=%d" % SYNC_LIMIT,
                 "dataDir=%s" % self.data_dir, "clientPort=%d" % CLIENT_PORT,
                 "clientPortAddress=%s" % self.addr, "maxClientCnxns=0",
                 "4lw.commands.whitelist=*", "admin.enableServer=false"]
        lines += ["server.%d=%s.%d:%d:%d;%s.%d:%d" % (j, SUBNET, j, QUORUM_PORT, ELECTION_PORT,
                                                      SUBNET, j, CLIENT_PORT)
                  for j in cluster.ids]
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def hosts(self):
        return "%s:%d" % (self.addr, CLIENT_PORT)

    def command(self):
        return ["ip", "netns", "exec", self.ns] + super().command()

    def wait_ready(self):
        """ruok from the bridge's namespace (the caller's)."""
        deadline = time.monotonic() + 30
        while fourlw(self.addr, "ruok") != "imok":
            if self.proc.poll() is not None:
                raise RuntimeError("server %d exited with %s during startup:\n%s"
                                   % (self.id, self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise RuntimeError("server %d did not answer ruok:\n%s"
                                   % (self.id, self.log_tail()))
            time.sleep(0.1)


class PartitionTest(unittest.TestCase):
    ids = (1, 2, 3)

    def setUp(self):
        signal.signal(signal.SIGALRM, _test_timed_out)
        signal.alarm(TEST_TIMEOUT_S)
        self.addCleanup(signal.alarm, 0)
        tag = "rkp%d" % os.getpid()
        self.bridge_ns = tag + "-br"
        self.ns = {i: "%s-s%d" % (tag, i) for i in self.ids}
        self.target = TARGET
        self.members = {}
        if shutil.which("ip") is None:
            raise unittest.SkipTest("no ip(8): cannot make network namespaces")
        # Cleanups run last-in first-out: namespaces go after the servers.
        self.addCleanup(self.remove_namespaces)
        p = sh("ip", "netns", "add", self.bridge_ns, check=False)
        if p.returncode:
            raise unittest.SkipTest("ip netns add failed (needs root): %s" % p.stderr.strip())
        self.make_network()
        self.dir = tempfile.mkdtemp(prefix="rk-partition-")
        self.addCleanup(self.remove_dir)
        # This thread lives in the bridge's namespace for the test; servers
        # started from it still go to their own through ip netns exec.
        stack = contextlib.ExitStack()
        stack.enter_context(in_netns(self.bridge_ns))
        self.addCleanup(stack.close)
        self.members = {i: NetnsMember(self, i) for i in self.ids}
        self.addCleanup(self.stop_servers)
        signal.signal(signal.SIGUSR1, _server_died)
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.SIG_IGN)

    def make_network(self):
        br = self.bridge_ns
        sh("ip", "-n", br, "link", "set", "lo", "up")
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "addr", "add", BRIDGE_ADDR + "/24", "dev", "br0")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        for i, ns in self.ns.items():
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", br, "link", "add", "v%d" % i, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", br, "link", "set", "v%d" % i, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", "%s.%d/24" % (SUBNET, i), "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def link(self, i, up):
        sh("ip", "-n", self.bridge_ns, "link", "set", "v%d" % i, "up" if up else "down")

    def remove_namespaces(self):
        # Deleting a namespace deletes the veths and the bridge in it.
        for ns in [self.bridge_ns] + list(self.ns.values()):
            sh("ip", "netns", "del", ns, check=False)
        left = [ns for ns in [self.bridge_ns] + list(self.ns.values())
                if os.path.exists("/var/run/netns/" + ns)]
        if left:
            raise AssertionError("namespaces left behind: %s" % left)

    def remove_dir(self):
        if not os.environ.get("RK_KEEP_DATA"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop_servers(self):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        problems = []
        for i, m in self.members.items():
            t0, was_running = time.monotonic(), m.proc is not None and m.proc.poll() is None
            m.stop()  # SIGTERM; SIGKILL after 10 s
            _live.discard(m)
            if was_running and time.monotonic() - t0 > 8:
                problems.append("server %d: still running 10 s after SIGTERM (killed)" % i)
        problems += ["server %d: %s" % (i, p) for i, m in self.members.items()
                     for p in m.problems()]
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + self.log_tails())

    def log_tails(self, n=25):
        return "".join("--- server %d log tail:\n%s" % (i, m.log_tail(n))
                       for i, m in self.members.items())

    # ---- the ensemble ----

    def start_all(self):
        for m in self.members.values():
            log = open(m.log_path, "ab")
            m.proc = subprocess.Popen(m.command(), stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=m.dir)
            log.close()
            threading.Thread(target=m._watch, args=(m.proc,), daemon=True).start()
            _live.add(m)
        for m in self.members.values():
            m.wait_ready()

    def wait_leader(self, ids, timeout_s=20):
        """The one leader among ids, all others following, seen from the
        bridge's namespace."""
        def settled():
            modes = {i: mode_of(self.members[i].addr) for i in ids}
            leaders = [i for i, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and all(m == "follower" for i, m in modes.items()
                                         if i != leaders[0]):
                return leaders[0]
            return None
        found = wait_until(settled, timeout_s, 0.1)
        if found is None:
            self.fail("no leader among %s after %d s: %s\n%s" % (
                ids, timeout_s, {i: mode_of(self.members[i].addr) for i in ids},
                self.log_tails()))
        return found

    def kazoo(self, ids, **kw):
        kw.setdefault("timeout", SESSION_S)
        kw.setdefault("connection_retry", FAST_RETRY)
        zk = KazooClient(hosts=",".join(self.members[i].hosts for i in ids), **kw)
        self.addCleanup(close_quietly, zk)
        zk.start(timeout=15)
        return zk

    def converge(self, timeout_s=30):
        seen = {}

        def agree():
            if TARGET == "ringkeeper":
                seen["hash"] = {i: fourlw(m.addr, "hash") for i, m in self.members.items()}
                lines = set(seen["hash"].values())
                if len(lines) != 1 or not HASH_LINE.match(lines.pop()):
                    return None
            seen["trees"] = {i: read_tree(m.addr) for i, m in self.members.items()}
            trees = list(seen["trees"].values())
            if any(t is None for t in trees) or any(t != trees[0] for t in trees):
                return None
            return trees[0]

        tree = wait_until(agree, timeout_s, 0.3)
        if tree is None:
            trees = seen.get("trees", {})
            sizes = {i: None if t is None else len(t) for i, t in trees.items()}
            self.fail("servers did not converge in %d s: hash %s, znodes %s\n%s"
                      % (timeout_s, seen.get("hash"), sizes, self.log_tails()))
        return tree

    def log_size(self, i):
        return os.path.getsize(self.members[i].log_path)

    def log_since(self, i, offset):
        with open(self.members[i].log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    # ---- the scenario ----

    def test_isolated_leader_takes_no_writes_and_rejoins_after_heal(self):
        self.start_all()
        old = self.wait_leader(self.ids)
        rest = [i for i in self.ids if i != old]
        zk = self.kazoo(self.ids)
        zk.create("/partition", b"before")
        for k in range(10):
            zk.create("/partition/before-%d" % k)
        # A client inside the old leader's namespace, of it alone: the
        # partition leaves it on the leader's side.
        with in_netns(self.ns[old]):
            minority = self.kazoo([old])
        minority.sync("/partition")
        self.assertEqual(minority.get("/partition")[0], b"before")
        old_pid = self.members[old].proc.pid
        marks = {i: self.log_size(i) for i in self.ids}
        # A write load on the other two, to time their unavailability.
        load = Writer(",".join(self.members[i].hosts for i in rest))
        self.addCleanup(load.finish)
        load.start()
        self.assertTrue(wait_until(lambda: len(load.acks) >= 20, 15), "no write load")

        self.link(old, up=False)
        t_cut = time.monotonic()
        # The minority: every write it tries fails or never returns; the
        # old leader stops leading (after syncLimit).
        outcomes, results = [], []
        stepped_down = None
        deadline = t_cut + 8
        k = 0
        while time.monotonic() < deadline:
            r = minority.create_async("/partition/minority-%d" % k)
            results.append(r)
            k += 1
            try:
                outcomes.append(("acknowledged", r.get(timeout=0.5)))
            except (KazooException, KazooTimeoutError) as e:
                outcomes.append((type(e).__name__, None))
            if stepped_down is None:
                with in_netns(self.ns[old]):
                    if mode_of(self.members[old].addr) != "leader":
                        stepped_down = time.monotonic() - t_cut
            elif time.monotonic() - t_cut > stepped_down + 1.5:
                break
        self.assertIsNotNone(stepped_down, "the isolated leader %d kept leading for 8 s\n%s"
                             % (old, self.log_tails()))
        acknowledged = [o for o in outcomes if o[0] == "acknowledged"]
        self.assertEqual(acknowledged, [], "writes acknowledged by a leader cut off from "
                         "its followers")

        # The majority elects a leader and takes writes.
        new = self.wait_leader(rest, timeout_s=20)
        majority = self.kazoo(rest)
        for k in range(20):
            majority.create("/partition/majority-%d" % k, b"%d" % k)
        self.assertTrue(wait_until(lambda: load.acked_after(t_cut) >= 20, 20),
                        "the majority's write load did not resume")
        self.assertTrue(load.finish(), "the writer hung")
        self.assertEqual(load.problems, [])
        resumed, gap = load.window(t_cut)
        print("\n  leader %d cut off: it stopped leading after %.0f ms; the other two "
              "(server %d leads) took writes sent after the cut from %.0f ms on (longest wait for "
              "any ack %.0f ms); the minority's %d tries: %s" % (
                  old, stepped_down * 1000, new, resumed * 1000, gap * 1000, len(outcomes),
                  sorted({o for o, _ in outcomes})), flush=True)

        # Stop the minority client before the heal, so nothing it queued
        # is sent to the old leader once it is back in the ensemble.
        close_quietly(minority)
        for r in results:
            if r.ready():
                self.assertFalse(r.successful(), "a minority write was acknowledged")

        self.link(old, up=True)
        self.assertEqual(self.wait_leader(self.ids, timeout_s=30), new)
        tree = self.converge()
        names = sorted(p[len("/partition/"):] for p in tree if p.startswith("/partition/"))
        loaded = {int(p[len("/load/n-"):]) for p in tree if p.startswith("/load/n-")}
        acked = {j for j, _ in load.acks}
        self.assertEqual(sorted(acked - loaded)[:5], [], "acknowledged writes lost")
        self.assertEqual(names, sorted(["before-%d" % k for k in range(10)]
                                       + ["majority-%d" % k for k in range(20)]))
        self.assertEqual(tree["/partition"][0], b"before")
        if TARGET == "ringkeeper":
            # It dropped what it had applied but not committed by running
            # itself again (same process), then synced with the new leader.
            self.assertEqual(self.members[old].proc.pid, old_pid)
            self.assertRegex(self.log_since(old, marks[old]),
                             r"re-executing to rebuild the state from disk")
            self.assertRegex(self.log_since(new, marks[new]),
                             r"server %d: (TRUNC to|DIFF from) 0x" % old)
        self.assertTrue(self.members[old].proc.poll() is None)


if __name__ == "__main__":
    unittest.main()
