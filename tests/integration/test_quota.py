"""Quotas as ZooKeeper 3.8 has them: zkCli.sh's setquota, listquota and
delquota (they write and read /zookeeper/quota/<path>/zookeeper_limits and
zookeeper_stats, so what they print shows what the server keeps), the
stats the server maintains through creates, deletes, setData and restarts,
hard limits refusing kazoo's writes with QUOTAEXCEEDED (-125) when
enforceQuota=true (ZooKeeper: the system property zookeeper.enforceQuota,
which its zoo.cfg key enforceQuota sets), and a 3-server ensemble whose
servers all hold the same stats. Runs unchanged on ZooKeeper
(RK_TARGET=zookeeper) except where a comment says why."""
import re
import time
import unittest

from kazoo import exceptions as kex

import zkwire
from harness import (TARGET, Cluster, Server, ServerTestCase, close_quietly, fourlw,
                     wait_until)
from test_zkcli import CONNECTED, ZkCli

QuotaExceededError = getattr(kex, "QuotaExceededError", None)
if QuotaExceededError is None:
    # kazoo 2.8 (Debian 12) has no class for -125: its reader thread dies
    # on such a reply ("Invalid error code") and the session reconnects.
    # kazoo 2.9 added this one; register it the same way.
    @kex._zookeeper_exception(-125)
    class QuotaExceededError(kex.ZookeeperError):
        """Exceeded the quota that was set on the path"""

ZQUOTAEXCEEDED = -125
QUOTA = "/zookeeper/quota"


def stats_path(path):
    return "%s%s/zookeeper_stats" % (QUOTA, path)


def limits_path(path):
    return "%s%s/zookeeper_limits" % (QUOTA, path)


def mntr(port):
    return dict(l.split("\t", 1) for l in fourlw(port, "mntr").splitlines() if "\t" in l)


class Cli(ZkCli):
    """zkCli.sh, one command at a time: do() returns what a command printed,
    ended by a `stat /zookeeper` whose last line marks where it stops."""

    def do(self, command, timeout_s=30):
        with self.lock:
            mark = len(self.out)
        self.send(command)
        self.send("stat /zookeeper")
        m = self.wait_for(r"^numChildren = \d+$", mark, timeout_s)
        with self.lock:
            text = self.out[mark:m.end()]
        return text[:text.rfind("cZxid = ")]


class QuotaCase(ServerTestCase):
    enforce = True

    @classmethod
    def setUpClass(cls):
        # Not harness options: a line of zoo.cfg each, which both servers read
        # (snapCount small so a restart loads a snapshot and replays a log).
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:
            f.write("snapCount=20\n")
            if cls.enforce:
                f.write("enforceQuota=true\n")
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    def cli(self):
        c = Cli(self.server.hosts)
        self.addCleanup(c.close)
        c.wait_for(re.escape(CONNECTED))
        return c

    def stats(self, zk, path):
        return zk.get(stats_path(path))[0].decode()


class ZkCliQuotaTest(QuotaCase):
    def test_setquota_listquota_and_delquota_print_what_zookeeper_prints(self):
        zk = self.kazoo()
        zk.create("/q1", b"x")
        zk.create("/q1/a")
        cli = self.cli()
        self.assertEqual(cli.do("setquota -n 3 /q1").strip(), "")
        self.assertEqual(zk.get(limits_path("/q1"))[0],
                         b"count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=-1")
        out = cli.do("listquota /q1")
        self.assertIn("absolute path is /zookeeper/quota/q1/zookeeper_limits\n", out)
        self.assertIn("Output quota for /q1 count=3,bytes=-1=;byteHardLimit=-1;"
                      "countHardLimit=-1\n", out)
        # The server counted the subtree when zkCli created the stats node.
        self.assertIn("Output stat for /q1 count=2,bytes=1\n", out)

        zk.create("/q1/b", b"12345")
        out = cli.do("setquota -N 5 /q1")
        self.assertEqual(out.strip(), "")
        out = cli.do("setquota -B 4 /q1")
        self.assertIn("[Warning]: the bytes quota you create is less than the existing "
                      "bytes:6", out)
        out = cli.do("listquota /q1")
        self.assertIn("Output quota for /q1 count=3,bytes=-1=;byteHardLimit=4;"
                      "countHardLimit=5\n", out)
        self.assertIn("Output stat for /q1 count=3,bytes=6\n", out)

        # zkCli, not the server, refuses nested quotas.
        self.assertRegex(cli.do("setquota -n 2 /q1/a"),
                         r"/q1/a has a parent /q1 which has a quota")
        zk.create("/q0")
        zk.create("/q0/q1")
        cli.do("setquota -n 9 /q0/q1")
        self.assertRegex(cli.do("setquota -n 2 /q0"), r"/q0 has a child /q0/q1 which has a quota")
        self.assertRegex(cli.do("setquota -n 1 /zookeeper/quota/x"),
                         r"cannot set a quota under the path: /zookeeper/quota")
        self.assertRegex(cli.do("setquota -n 1 /nowhere"), r"/nowhere does not exist")

        cli.do("delquota -n /q1")
        out = cli.do("listquota /q1")
        self.assertIn("Output quota for /q1 count=-1,bytes=-1=;byteHardLimit=4;"
                      "countHardLimit=5\n", out)
        cli.do("delquota /q1")
        out = cli.do("listquota /q1")
        self.assertIn("absolute path is /zookeeper/quota/q1/zookeeper_limits\n", out)
        self.assertIn("quota for /q1 does not exist.\n", out)
        self.assertNotIn("q1", zk.get_children(QUOTA), "delquota removes the quota dirs")
        self.assertIn("Quota does not exist for /q1", cli.do("delquota /q1"))
        cli.do("delquota /q0/q1")
        self.assertEqual(zk.get_children(QUOTA), [])
        # With the quota gone, nothing is counted or refused any more.
        zk.create("/q1/c")
        zk.create("/q1/d")


class EnforcedQuotaTest(QuotaCase):
    def test_hard_count_limit_refuses_creates_with_quota_exceeded(self):
        zk = self.kazoo()
        zk.create("/q2")
        cli = self.cli()
        cli.do("setquota -N 3 /q2")
        zk.create("/q2/a")
        zk.create("/q2/b", b"xy")
        with self.assertRaises(QuotaExceededError):
            zk.create("/q2/c")
        with self.assertRaises(QuotaExceededError):
            zk.create("/q2/a/deeper", sequence=True)
        self.assertIsNone(zk.exists("/q2/c"))
        self.assertEqual(self.stats(zk, "/q2"), "count=3,bytes=2")
        zk.set("/q2/a", b"data: no count change")
        # The raw reply: error -125 in the header, as ZooKeeper sends it.
        raw = self.raw()
        err, _ = raw.create("/q2/d")
        self.assertEqual(err, ZQUOTAEXCEEDED)
        zk.delete("/q2/b")
        zk.create("/q2/c")
        self.assertEqual(mntr(self.server.port).get("zk_q2_quota_exceeded_error_per_namespace"),
                         "3")
        # The other writes of the session go on.
        zk.create("/q2-outside")

    def test_hard_byte_limit_refuses_set_data_and_creates(self):
        zk = self.kazoo()
        zk.create("/q3", b"0123456789")
        self.cli().do("setquota -B 12 /q3")
        self.assertEqual(self.stats(zk, "/q3"), "count=1,bytes=10")
        with self.assertRaises(QuotaExceededError):
            zk.set("/q3", b"0123456789abc")
        with self.assertRaises(QuotaExceededError):
            zk.create("/q3/x", b"abc")
        zk.create("/q3/x", b"ab")
        zk.create("/q3/empty")
        with self.assertRaises(QuotaExceededError):
            zk.set("/q3/x", b"abc", version=99)  # the quota is checked first
        with self.assertRaises(kex.BadVersionError):
            zk.set("/q3/x", b"a", version=99)
        zk.set("/q3", b"")
        self.assertEqual(self.stats(zk, "/q3"), "count=3,bytes=2")

    def test_soft_limits_only_warn(self):
        zk = self.kazoo()
        zk.create("/q4")
        self.cli().do("setquota -n 1 /q4")
        self.cli().do("setquota -b 1 /q4")
        for i in range(3):
            zk.create("/q4/n%d" % i, b"data")
        self.assertEqual(self.stats(zk, "/q4"), "count=4,bytes=12")
        self.assertNotIn("zk_q4_quota_exceeded_error_per_namespace", mntr(self.server.port))

    @unittest.skipIf(TARGET == "zookeeper",
                     "ZooKeeper 3.8 checks each op of a multi against the committed stats "
                     "only, so this multi passes its limit (count=5 of 3)")
    def test_a_multi_cannot_pass_a_hard_limit(self):
        zk = self.kazoo()
        zk.create("/q5")
        self.cli().do("setquota -N 3 /q5")
        t = zk.transaction()
        for i in range(4):
            t.create("/q5/%d" % i)
        results = t.commit()
        self.assertIsInstance(results[0], kex.RolledBackError)
        self.assertIsInstance(results[1], kex.RolledBackError)
        self.assertIsInstance(results[2], QuotaExceededError)
        self.assertIsInstance(results[3], kex.RuntimeInconsistency)
        self.assertEqual(zk.get_children("/q5"), [])
        t = zk.transaction()
        t.create("/q5/a")
        t.create("/q5/b")
        self.assertEqual(t.commit(), ["/q5/a", "/q5/b"])
        self.assertEqual(self.stats(zk, "/q5"), "count=3,bytes=0")

    def test_stats_follow_writes_and_survive_restarts(self):
        zk = self.kazoo()
        zk.create("/q6", b"abc")
        zk.create("/q6/keep", b"k")
        self.cli().do("setquota -n 100 /q6")
        self.assertEqual(self.stats(zk, "/q6"), "count=2,bytes=4")
        for i in range(10):
            zk.create("/q6/n%d" % i, b"%d" % i)
        for i in range(0, 10, 2):
            zk.delete("/q6/n%d" % i)
        zk.set("/q6/keep", b"kkkkk")
        zk.create("/q6/eph", b"ee", ephemeral=True)
        zk.set("/q6", None)
        t = zk.transaction()
        t.create("/q6/m", b"mm")
        t.delete("/q6/n1")
        t.set_data("/q6/n3", b"333")
        t.commit()
        want = "count=8,bytes=15"
        self.assertEqual(self.stats(zk, "/q6"), want)
        stat_before = zk.exists(stats_path("/q6"))
        close_quietly(zk)  # its ephemeral goes, and the stats with it
        want = "count=7,bytes=13"
        zk = self.kazoo()
        self.assertEqual(self.stats(zk, "/q6"), want)
        close_quietly(zk)

        for kill in (False, True):
            self.server.restart(kill=kill)
            zk = self.kazoo()
            self.assertEqual(self.stats(zk, "/q6"), want, "after %s" %
                             ("SIGKILL" if kill else "SIGTERM"))
            zk.create("/q6/after-%s" % kill, b"z")
            want = "count=%d,bytes=%d" % (int(want.split(",")[0][6:]) + 1,
                                          int(want.split("=")[2]) + 1)
            self.assertEqual(self.stats(zk, "/q6"), want)
            close_quietly(zk)
        # The stats node's Stat as ZooKeeper keeps it: its data changes
        # without a new version or mzxid.
        zk = self.kazoo()
        stat = zk.exists(stats_path("/q6"))
        self.assertEqual((stat.version, stat.mzxid), (stat_before.version, stat_before.mzxid))
        self.assertEqual(stat.dataLength, len(want))


class NotEnforcedQuotaTest(QuotaCase):
    enforce = False

    def test_hard_limits_are_only_kept_without_enforce_quota(self):
        zk = self.kazoo()
        zk.create("/q7")
        self.cli().do("setquota -N 1 /q7")
        zk.create("/q7/a", b"ab")
        zk.create("/q7/b")
        self.assertEqual(self.stats(zk, "/q7"), "count=3,bytes=2")


class QuotaEnsembleTest(unittest.TestCase):
    """Stats are derived while applying each txn, on every server alike:
    writes through different servers leave the same zookeeper_stats on all."""

    def test_every_server_holds_the_same_stats(self):
        c = Cluster(3, extra_cfg=["enforceQuota=true"])
        self.addCleanup(c.destroy)
        c.start()
        leader = c.wait_quorum()
        clients = {}
        for i in c.ids:
            zk = self.client(c.members[i].hosts)
            clients[i] = zk
        first = clients[c.ids[0]]
        first.create("/e", b"root")
        cli = Cli(c.members[c.ids[1]].hosts)
        self.addCleanup(cli.close)
        cli.wait_for(re.escape(CONNECTED))
        cli.do("setquota -N 40 /e")
        n = 0
        for round_ in range(3):
            for i, zk in clients.items():
                zk.create("/e/%d-%d" % (i, round_), b"x" * i)
                n += 1
        for i, zk in clients.items():
            zk.set("/e", b"r" * i)
        for i, zk in clients.items():
            zk.delete("/e/%d-0" % i)
        follower = next(i for i in c.ids if i != leader)
        t = clients[follower].transaction()
        t.create("/e/multi", b"mmm")
        t.set_data("/e/%d-1" % follower, b"")
        t.commit()
        want = {}
        for i, zk in clients.items():
            zk.sync("/")
            want[i] = zk.get(stats_path("/e"))[0].decode()
        self.assertEqual(len(set(want.values())), 1, want)
        last = c.ids[-1]
        self.assertEqual(want[last], "count=%d,bytes=%d" % (
            1 + n - 3 + 1, 3 + sum(2 * i for i in c.ids) + 3 - follower))
        # A hard limit refuses writes sent to a follower too.
        cli.do("setquota -N 3 /e")
        with self.assertRaises(QuotaExceededError):
            clients[follower].create("/e/refused")
        if TARGET == "ringkeeper":  # `hash` is a digest of every node, stats included
            def one_hash():
                lines = {fourlw(c.client_ports[i], "hash") for i in c.ids}
                return len(lines) == 1 and re.match(r"^[0-9a-f]+: -?\d+\n$", lines.pop())
            self.assertTrue(wait_until(one_hash, 10, 0.2), "servers' hash lines differ")

    def client(self, hosts):
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=hosts, timeout=10.0)
        zk.start(timeout=30)
        self.addCleanup(close_quietly, zk)
        return zk
