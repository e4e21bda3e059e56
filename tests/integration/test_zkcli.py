"""zkCli.sh, the seed 002 walk-through: one zkCli holds `get -w`, another
sets the node, the first prints the NodeDataChanged event; then ls, stat and
deleteall. Two JVMs in all: commands go through stdin, one at a time."""
import os
import re
import subprocess
import threading
import time

from harness import ServerTestCase

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
