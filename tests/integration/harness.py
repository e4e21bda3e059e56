"""Integration harness: starts one server under test on a free 127.0.0.1 port
with a fresh data dir, waits until it completes a real session handshake, and
stops it at the end. The same zoo.cfg drives either target:

  RK_TARGET=ringkeeper (default)  RK_BIN (default build/bin/ringkeeper),
                                   started as BIN zoo.cfg --port N --data-dir D
  RK_TARGET=zookeeper              Apache ZooKeeper's ZooKeeperServerMain from
                                   the Debian jars (or ZK_CLASSPATH / ZK_HOME)

Run under /usr/bin/python3, which sees Debian's python3-kazoo. Other knobs:
RK_C_CLIENT (build/tests/rk-c-client), ZKCLI (Debian's zkCli.sh), RK_CORES,
RK_START_TIMEOUT (30 s), RK_TEST_TIMEOUT (180 s per test), RK_KEEP_DATA=1
(keep each server's temp dir and log), RK_CHURN_{SESSIONS,OPS,SEED}.
Tests that inspect ringkeeper's own files mark themselves @ringkeeper_only.
"""
import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import zkwire

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("RK_TARGET", "ringkeeper")
START_TIMEOUT_S = float(os.environ.get("RK_START_TIMEOUT", "30"))
# kazoo's blocking calls wait forever for a server that died: bound each test.
TEST_TIMEOUT_S = int(os.environ.get("RK_TEST_TIMEOUT", "180"))

_live = set()  # servers to stop at interpreter exit


def _stop_all():
    for s in list(_live):
        s.destroy()


atexit.register(_stop_all)


def _interrupt(*_):
    # KeyboardInterrupt, unlike SystemExit, ends a unittest run instead of
    # failing one test; atexit then stops the servers.
    raise KeyboardInterrupt("SIGTERM")


signal.signal(signal.SIGTERM, _interrupt)
# A server that dies mid-test sends us SIGUSR1 (see Server._watch); only a
# running test turns it into an error, so a death between tests is ignored
# here and reported by tearDownClass.
signal.signal(signal.SIGUSR1, signal.SIG_IGN)


ringkeeper_only = unittest.skipIf(TARGET != "ringkeeper",
                                  "inspects ringkeeper's own files or tools")


class ServerDied(Exception):
    pass


def _server_died(*_):
    raise ServerDied("the server exited during this test")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVLET_API_JAR = "/usr/share/java/servlet-api.jar"


def admin_cfg(admin_port):
    """zoo.cfg lines for the admin server: off, or on 127.0.0.1:admin_port."""
    if not admin_port:
        return "admin.enableServer=false\n"
    return ("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\n"
            "admin.serverPort=%d\n" % admin_port)


def zookeeper_classpath():
    """The jars ZooKeeperServerMain needs. Debian's zookeeper.jar names its
    dependencies in its manifest Class-Path, so it is enough on its own."""
    if os.environ.get("ZK_CLASSPATH"):
        return os.environ["ZK_CLASSPATH"]
    home = os.environ.get("ZK_HOME")
    if home:  # an upstream tarball layout
        jars = glob.glob(os.path.join(home, "lib", "*.jar"))
        jars += glob.glob(os.path.join(home, "zookeeper-*.jar"))
        if jars:
            return ":".join(sorted(jars))
    for jar in ("/usr/share/java/zookeeper.jar",
                *sorted(glob.glob("/usr/share/java/zookeeper-3*.jar"))):
        if os.path.exists(jar):
            return jar
    raise RuntimeError("no ZooKeeper jars: install Debian's zookeeper "
                       "package or set ZK_CLASSPATH / ZK_HOME")


class Server:
    """One server process. start()/stop()/restart() keep port and data dir,
    so a restart shows what the server recovers from disk."""

    def __init__(self, tick_ms=2000, target=None, admin_port=None, extra_cfg=()):
        """admin_port: serve the admin HTTP server there (on 127.0.0.1);
        extra_cfg: more zoo.cfg lines."""
        self.target = target or TARGET
        self.tick_ms = tick_ms
        self.admin_port = admin_port
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="rk-it-")
        self.data_dir = os.path.join(self.dir, "data")
        os.mkdir(self.data_dir)
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.stopping = False
        self.died = []  # exits nobody asked for
        with open(self.cfg, "w") as f:
            f.write("tickTime=%d\n" % tick_ms)
            f.write("dataDir=%s\n" % self.data_dir)
            f.write("clientPort=%d\n" % self.port)
            f.write("clientPortAddress=127.0.0.1\n")
            f.write("maxClientCnxns=0\n")  # the churn test opens 100 sessions
            f.write("4lw.commands.whitelist=*\n")
            f.write(admin_cfg(admin_port))
            f.writelines(line + "\n" for line in extra_cfg)

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    def command(self):
        if self.target == "zookeeper":
            java = shutil.which("java") or "/usr/bin/java"
            cp = zookeeper_classpath()
            admin = ["-Dzookeeper.admin.enableServer=false"]
            if self.admin_port:
                admin = []
                # Debian's zookeeper.jar leaves the servlet API, which its
                # Jetty admin server needs, off its Class-Path.
                if os.path.exists(SERVLET_API_JAR):
                    cp += ":" + SERVLET_API_JAR
            return [java, "-Xmx512m", "-XX:+UseSerialGC",
                    "-Dzookeeper.4lw.commands.whitelist=*", *admin,
                    "-cp", cp,
                    "org.apache.zookeeper.server.ZooKeeperServerMain", self.cfg]
        # Absolute: the server runs in its temp dir, where a relative path fails.
        rk_bin = os.path.abspath(os.environ.get("RK_BIN", os.path.join(ROOT, "build/bin/ringkeeper")))
        cmd = [rk_bin, self.cfg, "--port", str(self.port), "--data-dir", self.data_dir]
        if os.environ.get("RK_CORES"):
            cmd += ["--cores", os.environ["RK_CORES"]]
        return cmd

    def start(self):
        log = open(self.log_path, "ab")
        # Same process group as the runner, so tools/test's timeout reaches it.
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        log.close()
        threading.Thread(target=self._watch, args=(self.proc,), daemon=True).start()
        _live.add(self)
        try:
            self.wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def _watch(self, proc):
        proc.wait()
        if self.proc is proc and not self.stopping:
            os.kill(os.getpid(), signal.SIGUSR1)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s during startup:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                c = zkwire.Conn(self.port, io_timeout=2.0)
                try:
                    if c.handshake(10000)[0] > 0:
                        c.close_session()
                        return
                finally:
                    c.close()
            except (OSError, EOFError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready after %.0f s:\n%s"
                                   % (START_TIMEOUT_S, self.log_tail()))
            time.sleep(0.1)

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, kill=False):
        """SIGTERM (or SIGKILL with kill=True), escalating after 10 s."""
        if self.proc is None:
            return
        self.stopping = True
        if self.proc.poll() is not None:
            self.died.append(self.proc.returncode)
        else:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.stopping = False

    def problems(self):
        """What went wrong besides the tests' own asserts: the server exiting
        by itself, or a sanitizer report in its log (for ASan builds)."""
        out = ["server exited by itself with status %s" % rc for rc in self.died]
        try:
            with open(self.log_path, errors="replace") as f:
                log = f.read()
        except OSError:
            log = ""
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:", "WARNING: ThreadSanitizer"):
            at = log.find(marker)
            if at >= 0:
                out.append("sanitizer report in server log:\n" + log[max(0, at - 200):at + 3000])
        return out

    def restart(self, kill=False):
        self.stop(kill=kill)
        return self.start()

    def destroy(self):
        self.stop()
        _live.discard(self)
        if not os.environ.get("RK_KEEP_DATA"):
            shutil.rmtree(self.dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """One server per test class (JVM start-up is the slow part); each test
    works under its own znode path, self.path."""

    tick_ms = 2000

    @classmethod
    def make_server(cls):
        """The class's server; override for another configuration."""
        return Server(tick_ms=cls.tick_ms)

    @classmethod
    def setUpClass(cls):
        cls.server = cls.make_server()
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        problems = cls.server.problems()
        tail = cls.server.log_tail()
        cls.server.destroy()
        if problems:
            raise AssertionError("\n".join(problems) + "\nserver log tail:\n" + tail)

    def setUp(self):
        self.path = "/" + self.id().rsplit(".", 1)[-1]
        signal.signal(signal.SIGALRM, _test_timed_out)
        signal.alarm(TEST_TIMEOUT_S)
        self.addCleanup(signal.alarm, 0)
        signal.signal(signal.SIGUSR1, _server_died)
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.SIG_IGN)
        proc = self.server.proc
        if proc is None or proc.poll() is not None:  # fail fast, not by timeouts
            self.fail("server is not running (exit status %s):\n%s"
                      % (proc and proc.returncode, self.server.log_tail()))

    def kazoo(self, **kw):
        """A started kazoo client, stopped and closed after the test."""
        from kazoo.client import KazooClient
        kw.setdefault("timeout", 10.0)
        c = KazooClient(hosts=kw.pop("hosts", self.server.hosts), **kw)
        c.start(timeout=15)
        self.addCleanup(close_quietly, c)
        return c

    def raw(self, timeout_ms=10000):
        """A raw wire session (zkwire.Conn), closed after the test."""
        c = zkwire.session(self.server.port, timeout_ms)
        self.addCleanup(c.close)
        return c


def free_ports(count):
    """count distinct free 127.0.0.1 ports: all are held until all are
    picked, so none repeats."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def fourlw(port, word, timeout_s=2.0):
    """A four-letter word's answer, or "" when the server does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode(errors="replace")
                out += chunk
    except OSError:
        return ""


class ClusterMember(Server):
    """Server i of a Cluster: a Server whose zoo.cfg the Cluster writes and
    that is ready when it answers ruok (an ensemble member accepts sessions
    only once it is in a quorum, which wait_quorum checks)."""

    def __init__(self, cluster, i):
        # Not Server.__init__: the Cluster chooses the ports and dirs.
        self.target = cluster.target
        self.tick_ms = cluster.tick_ms
        self.admin_port = cluster.admin_ports.get(i)
        self.id = i
        self.port = cluster.client_ports[i]
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

    def command(self):
        cmd = super().command()
        if self.target == "zookeeper":  # the ensemble's main class
            cmd[cmd.index("org.apache.zookeeper.server.ZooKeeperServerMain")] = \
                "org.apache.zookeeper.server.quorum.QuorumPeerMain"
        return cmd

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while fourlw(self.port, "ruok") != "imok":
            if self.proc.poll() is not None:
                raise RuntimeError("server %d exited with %s during startup:\n%s"
                                   % (self.id, self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise RuntimeError("server %d did not answer ruok after %.0f s:\n%s"
                                   % (self.id, START_TIMEOUT_S, self.log_tail()))
            time.sleep(0.1)

    def destroy(self):
        # The Cluster owns the directory; it removes it in its destroy().
        self.stop()
        _live.discard(self)


class Cluster:
    """An ensemble of n servers on 127.0.0.1, numbered 1..n as in server.N;
    the last `observers` of them are observers. Each has its own dir (zoo.cfg,
    data/myid, server.log) under one temp dir, and every zoo.cfg lists all of
    them, in ZooKeeper 3.5+ syntax, so the same files drive Ringkeeper and
    Apache ZooKeeper's QuorumPeerMain (RK_TARGET=zookeeper). Stopped at exit
    like Server; RK_KEEP_DATA=1 keeps the dirs and logs."""

    def __init__(self, n, observers=0, tick_ms=200, init_limit=10, sync_limit=5,
                 target=None, extra_cfg=(), admin=False):
        if n < 1 or observers < 0 or (observers and n - observers < 2):
            # ZooKeeper refuses observers beside fewer than 2 participants.
            raise ValueError("need n >= 1, and 2 participants besides any observers")
        self.target = target or TARGET
        self.tick_ms = tick_ms
        self.ids = list(range(1, n + 1))
        self.observer_ids = set(self.ids[n - observers:])
        ports = free_ports(4 * n)
        self.client_ports = dict(zip(self.ids, ports[0::4]))
        self.quorum_ports = dict(zip(self.ids, ports[1::4]))
        self.election_ports = dict(zip(self.ids, ports[2::4]))
        # admin=True: each member's admin server on a port of its own.
        self.admin_ports = dict(zip(self.ids, ports[3::4])) if admin else {}
        self.dir = tempfile.mkdtemp(prefix="rk-cluster-")
        self.members = {i: ClusterMember(self, i) for i in self.ids}
        lines = ["tickTime=%d" % tick_ms,
                 "initLimit=%d" % init_limit,
                 "syncLimit=%d" % sync_limit,
                 "clientPortAddress=127.0.0.1",
                 "maxClientCnxns=0",
                 "4lw.commands.whitelist=*"]
        lines += list(extra_cfg)  # more zoo.cfg lines for every member, e.g. "snapCount=100"
        for i in self.ids:
            lines.append("server.%d=127.0.0.1:%d:%d%s;127.0.0.1:%d" % (
                i, self.quorum_ports[i], self.election_ports[i],
                ":observer" if i in self.observer_ids else "", self.client_ports[i]))
        for i, m in self.members.items():
            with open(m.cfg, "w") as f:
                f.write("dataDir=%s\nclientPort=%d\n" % (m.data_dir, m.port))
                if i in self.observer_ids:  # as ZooKeeper's docs ask of observers
                    f.write("peerType=observer\n")
                f.write(admin_cfg(self.admin_ports.get(i)))
                f.write("\n".join(lines) + "\n")
        _live.add(self)

    @property
    def hosts(self):
        return self.connect_string()

    def connect_string(self, ids=None):
        return ",".join(self.members[i].hosts for i in (ids or self.ids))

    def start(self):
        """Starts every server, then waits until each answers ruok."""
        for m in self.members.values():
            if m.proc is None:
                self._spawn(m)
        try:
            for m in self.members.values():
                m.wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def _spawn(self, m):
        # Server.start without its wait, so an ensemble's members come up
        # together: each waits for the others to elect a leader.
        log = open(m.log_path, "ab")
        m.proc = subprocess.Popen(m.command(), stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=m.dir)
        log.close()
        threading.Thread(target=m._watch, args=(m.proc,), daemon=True).start()
        _live.add(m)

    def start_one(self, i):
        """Starts server i again with its config and data; waits for ruok."""
        if not self.running(i):
            self.members[i].start()
        return self

    def stop_one(self, i, kill=False):
        """SIGTERM (SIGKILL with kill=True) server i, escalating after 10 s."""
        self.members[i].stop(kill=kill)

    def kill(self, i):
        self.stop_one(i, kill=True)

    def stop(self):
        """Stops every server (SIGTERM, as Server.stop)."""
        for m in self.members.values():
            m.stop()

    def running(self, i):
        proc = self.members[i].proc
        return proc is not None and proc.poll() is None

    def fourlw(self, i, word):
        return fourlw(self.client_ports[i], word)

    def mode(self, i):
        """"leader", "follower", "observer", "standalone" from srvr, or None
        when server i does not answer or does not serve."""
        for line in self.fourlw(i, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[len("Mode: "):].strip()
        return None

    def modes(self):
        return {i: self.mode(i) if self.running(i) else "down" for i in self.ids}

    def leader(self, timeout=None):
        """The id of the one running server whose mode is leader, waiting up
        to timeout (RK_START_TIMEOUT) seconds for there to be one."""
        def one_leader():
            leaders = [i for i in self.ids if self.running(i) and self.mode(i) == "leader"]
            return leaders[0] if len(leaders) == 1 else None
        found = wait_until(one_leader, START_TIMEOUT_S if timeout is None else timeout, 0.1)
        if found is None:
            raise TimeoutError("no single leader: %s\n%s" % (self.modes(), self.log_tails()))
        return found

    def wait_quorum(self, timeout=None):
        """Waits until one running server leads and every other running one
        follows (participants) or observes (observers); returns the leader."""
        def settled():
            modes = {i: self.mode(i) for i in self.ids if self.running(i)}
            leaders = [i for i, m in modes.items() if m == "leader"]
            if len(leaders) != 1:
                return None
            for i, m in modes.items():
                want = "observer" if i in self.observer_ids else "follower"
                if i != leaders[0] and m != want:
                    return None
            return leaders[0]
        found = wait_until(settled, START_TIMEOUT_S if timeout is None else timeout, 0.1)
        if found is None:
            raise TimeoutError("no quorum: %s\n%s" % (self.modes(), self.log_tails()))
        return found

    def log_tail(self, i, n=30):
        return self.members[i].log_tail(n)

    def log_tails(self, n=15):
        return "".join("--- server %d log tail:\n%s" % (i, self.log_tail(i, n))
                       for i in self.ids)

    def problems(self):
        """Each member's Server.problems(), prefixed with its id."""
        return ["server %d: %s" % (i, p) for i, m in self.members.items()
                for p in m.problems()]

    def destroy(self):
        self.stop()
        for m in self.members.values():
            _live.discard(m)
        _live.discard(self)
        if not os.environ.get("RK_KEEP_DATA"):
            shutil.rmtree(self.dir, ignore_errors=True)


class TcpProxy:
    """Forwards 127.0.0.1:port to the server; cut() drops every connection
    through it at once, as a network fault would, and the proxy keeps
    accepting, so a client can reconnect through it. While blocked, it cuts
    and refuses every connection: a partition."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        self.blocked = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def block(self):
        self.blocked = True
        self.cut()

    def unblock(self):
        self.blocked = False

    def close(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.listener.close()
        self.cut()


def _test_timed_out(*_):
    raise TimeoutError("test took over %d s (RK_TEST_TIMEOUT)" % TEST_TIMEOUT_S)


def close_quietly(client):
    try:
        client.stop()
        client.close()
    except Exception:
        pass


def wait_until(pred, timeout_s, step_s=0.05):
    """Polls pred() until true; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step_s)
