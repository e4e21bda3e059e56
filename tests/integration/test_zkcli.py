"""zkCli.sh, the seed 002 walk-through: one zkCli holds `get -w`, another
sets the node, the first prints the NodeDataChanged event; then ls, stat and
deleteall. Two JVMs in all: commands go through stdin, one at a time."""
import os
import re
import subprocess
import threading
import time

from harness import Server, ServerTestCase

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
CONNECTED = "WatchedEvent state:SyncConnected type:None path:null"


class ZkCli:
    """A zkCli.sh process driven through a pipe; out collects its output."""

    def __init__(self, hosts):
        self.proc = subprocess.Popen(
            [ZKCLI, "-server", hosts], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out = ""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.out += line

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern, after=0, timeout_s=20):
        """Waits until pattern (a regex) appears past offset `after`;
        returns the match."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                m = re.compile(pattern, re.M).search(self.out, after)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("zkCli never printed %r; output:\n%s"
                                     % (pattern, self.out[-3000:]))
            time.sleep(0.05)

    def run(self, command, pattern, timeout_s=20):
        """Sends one command and waits for pattern in what follows it."""
        with self.lock:
            mark = len(self.out)
        self.send(command)
        return self.wait_for(pattern, mark, timeout_s)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


STAT_LINE = r"^%s = (\S.*)$"


class ZkCliTest(ServerTestCase):
    def cli(self):
        c = ZkCli(self.server.hosts)
        self.addCleanup(c.close)
        c.wait_for(re.escape(CONNECTED))
        return c

    def test_seed_watch_walk_through(self):
        watcher = self.cli()
        watcher.run('create /testZnode "hiZnode"', r"^Created /testZnode$")
        watcher.run("get -w /testZnode", r"^hiZnode$")

        setter = ZkCli(self.server.hosts)
        self.addCleanup(setter.close)
        for line in ("set /testZnode newdata", "get /testZnode", "quit"):
            setter.send(line)
        self.assertEqual(setter.proc.wait(60), 0)
        self.assertRegex(setter.out, r"(?m)^newdata$")

        watcher.wait_for(r"^WatchedEvent state:SyncConnected "
                         r"type:NodeDataChanged path:/testZnode$")

        # stat prints one "name = value" line per Stat field.
        m = watcher.run("stat /testZnode", r"^numChildren = \d+$")
        block = watcher.out[watcher.out.rfind("cZxid = ", 0, m.end()):m.end()]
        fields = dict(re.findall(r"(?m)^(\w+) = (.*)$", block))
        self.assertEqual(list(fields), [
            "cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion",
            "dataVersion", "aclVersion", "ephemeralOwner", "dataLength",
            "numChildren"])
        self.assertEqual((fields["dataVersion"], fields["dataLength"],
                          fields["numChildren"], fields["ephemeralOwner"]),
                         ("1", "7", "0", "0x0"))
        czxid, mzxid = int(fields["cZxid"], 16), int(fields["mZxid"], 16)
        self.assertGreater(mzxid, czxid)
        self.assertEqual(int(fields["pZxid"], 16), czxid)
        # ctime/mtime print as java.util.Date: "Mon Nov 23 15:45:45 UTC 2026"
        date = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}"
        self.assertRegex(fields["ctime"], date)
        self.assertRegex(fields["mtime"], date)

        watcher.run("create /testZnode/child1 one", r"^Created /testZnode/child1$")
        watcher.run("create /testZnode/child2 two", r"^Created /testZnode/child2$")
        watcher.run("ls /testZnode", r"^\[child1, child2\]$")
        watcher.run("ls /", r"^\[testZnode, zookeeper\]$")
        watcher.send("deleteall /testZnode")
        watcher.run("ls /", r"^\[zookeeper\]$")
        watcher.run("stat /testZnode", r"^Node does not exist: /testZnode$")
        self.assertIsNone(self.kazoo().exists("/testZnode"))
        watcher.run("ls /zookeeper", r"^\[config, quota\]$")
        watcher.send("quit")
        self.assertEqual(watcher.proc.wait(30), 0)


def listed(text):
    """zkCli's "[a, b]" as a set."""
    inner = text.strip()[1:-1]
    return set(inner.split(", ")) if inner else set()


class ZkCliCommandsTest(ServerTestCase):
    """zkCli.sh's 3.6+ commands, each with what ZooKeeper prints."""

    def cli(self):
        c = ZkCli(self.server.hosts)
        self.addCleanup(c.close)
        c.wait_for(re.escape(CONNECTED))
        return c

    def test_whoami_names_ip_and_digest_users(self):
        c = self.cli()
        c.run("whoami", r"^Auth scheme: User\nip: 127\.0\.0\.1$")
        c.send("addauth digest alice:secret")
        # The digest's user only: the password hash stays on the server.
        c.run("whoami", r"^Auth scheme: User\n(ip: 127\.0\.0\.1\ndigest: alice|"
                        r"digest: alice\nip: 127\.0\.0\.1)$")

    def test_container_ephemerals_and_children_numbers(self):
        c = self.cli()
        base = self.path
        c.run("create -c %s" % base, r"^Created %s$" % base)
        # A container's Stat shows no owner, as for any node not ephemeral.
        c.run("stat %s" % base, r"^ephemeralOwner = 0x0$")
        c.run("create %s/p" % base, r"^Created %s/p$" % base)
        c.run("create -e %s/p/e1" % base, r"^Created %s/p/e1$" % base)
        c.run("create -e %s/e2 data" % base, r"^Created %s/e2$" % base)
        m = c.run("getEphemerals %s" % base, r"^(\[.*\])$")
        self.assertEqual(listed(m.group(1)), {base + "/p/e1", base + "/e2"})
        m = c.run("getEphemerals %s/p" % base, r"^(\[.*\])$")
        self.assertEqual(listed(m.group(1)), {base + "/p/e1"})
        c.run("getEphemerals /nothing", r"^\[\]$")
        c.run("getAllChildrenNumber %s" % base, r"^3$")
        c.run("getAllChildrenNumber %s/p" % base, r"^1$")
        c.run("getAllChildrenNumber %s/none" % base, r"^Node does not exist: %s/none$" % base)
        # TTL nodes need extendedTypesEnabled.
        c.run("create -t 1000 %s/ttl x" % base,
              r"^KeeperErrorCode = Unimplemented for %s/ttl$" % base)

    def test_add_watch_and_remove_watches(self):
        c = self.cli()
        base = self.path
        event = r"^WatchedEvent state:SyncConnected type:%s path:%s$"
        c.run("create %s" % base, r"^Created %s$" % base)
        # Recursive, the default mode: the whole subtree's data events.
        c.send("addWatch %s" % base)
        c.run("create %s/x" % base, r"^Created %s/x$" % base)
        c.wait_for(event % ("NodeCreated", base + "/x"))
        mark = len(c.out)
        c.send("set %s/x v" % base)
        c.wait_for(event % ("NodeDataChanged", base + "/x"), mark)
        # Persistent on /x: its children changing too.
        c.send("addWatch -m PERSISTENT %s/x" % base)
        mark = len(c.out)
        c.run("create %s/x/z" % base, r"^Created %s/x/z$" % base)
        c.wait_for(event % ("NodeCreated", base + "/x/z"), mark)
        c.wait_for(event % ("NodeChildrenChanged", base + "/x"), mark)
        c.run("removewatches %s" % base, event % ("PersistentWatchRemoved", base))
        c.run("removewatches %s/nothere" % base,
              r"^KeeperErrorCode = No such watcher for %s/nothere$" % base)
        c.run("removewatches %s/x -a" % base, event % ("PersistentWatchRemoved", base + "/x"))
        # Nothing is watched any more: a change prints no event.
        mark = len(c.out)
        c.send("set %s/x w" % base)
        c.run("get %s/x" % base, r"^w$")
        self.assertNotIn("NodeDataChanged path:%s/x\n" % base, c.out[mark:])
        c.send("quit")
        self.assertEqual(c.proc.wait(30), 0)


class ZkCliTtlTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:
            f.write("extendedTypesEnabled=true\n")
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    def test_create_ttl_nodes(self):
        c = ZkCli(self.server.hosts)
        self.addCleanup(c.close)
        c.wait_for(re.escape(CONNECTED))
        base = self.path
        c.run("create -t 60000 %s x" % base, r"^Created %s$" % base)
        c.run("create -t 60000 -s %s/seq- y" % base, r"^Created %s/seq-0000000000$" % base)
        c.run("stat %s" % base, r"^ephemeralOwner = 0x0$")
        c.run("get %s" % base, r"^x$")
