"""Four-letter words on the client port, in the formats ZooKeeper's own
scripts and exporters parse, the whitelist refusal, and Ringkeeper's hash:
the digest of the whole tree, which servers holding the same data agree
on however each built it."""
import os
import re
import shutil
import socket

from kazoo.security import make_digest_acl

from harness import Server, ServerTestCase, ringkeeper_only


def four(port, word, timeout=5.0):
    """Send a four-letter word; return everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks).decode()
            chunks.append(b)


class FourLetterWordTest(ServerTestCase):
    def test_ruok_and_isro(self):
        self.assertEqual(four(self.server.port, "ruok"), "imok")
        self.assertEqual(four(self.server.port, "isro"), "rw")

    def test_srvr_lines(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        lines = four(self.server.port, "srvr").splitlines()
        self.assertTrue(lines[0].startswith("Zookeeper version: "), lines)
        fields = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
        self.assertEqual(fields["Mode"], "standalone")
        self.assertRegex(fields["Latency min/avg/max"], r"^\d+/[\d.]+/\d+$")
        self.assertRegex(fields["Zxid"], r"^0x[0-9a-f]+$")
        self.assertGreaterEqual(int(fields["Node count"]), 5)
        self.assertGreaterEqual(int(fields["Connections"]), 1)

    def test_stat_lines(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        text = four(self.server.port, "stat")
        lines = text.splitlines()
        self.assertTrue(lines[0].startswith("Zookeeper version: "), lines)
        self.assertIn("Clients:", lines)
        fields = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
        self.assertEqual(fields["Mode"], "standalone")
        self.assertRegex(fields["Zxid"], r"^0x[0-9a-f]+$")
        self.assertNotIn("Proposal sizes last/min/max", fields)

    def test_mntr_key_values(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        zk.get(self.path, watch=lambda e: None)
        kv = dict(l.split("\t", 1) for l in four(self.server.port, "mntr").splitlines())
        self.assertEqual(kv["zk_server_state"], "standalone")
        self.assertIn("zk_version", kv)
        self.assertGreaterEqual(int(kv["zk_znode_count"]), 5)
        self.assertGreaterEqual(int(kv["zk_watch_count"]), 1)
        self.assertGreaterEqual(int(kv["zk_num_alive_connections"]), 1)
        for k in ("zk_avg_latency", "zk_max_latency", "zk_min_latency",
                  "zk_packets_received", "zk_packets_sent", "zk_outstanding_requests"):
            float(kv[k])
        # A standalone server has no peers: none of a quorum member's keys.
        for k in ("zk_peer_state", "zk_learners", "zk_followers", "zk_synced_followers",
                  "zk_pending_syncs"):
            self.assertNotIn(k, kv)

    def test_wchs_counts_watches(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        zk.get(self.path, watch=lambda e: None)
        zk.get_children(self.path, watch=lambda e: None)
        text = four(self.server.port, "wchs")
        self.assertRegex(text, r"\d+ connections watching \d+ paths\nTotal watches:\d+\n")
        total = int(text.rsplit(":", 1)[1])
        self.assertGreaterEqual(total, 1)

    def test_conf_names_the_client_port(self):
        conf = four(self.server.port, "conf")
        self.assertIn("clientPort=%d" % self.server.port, conf.splitlines())


@ringkeeper_only  # the harness starts ZooKeeper's JVM with whitelist=* forced
class WhitelistTest(ServerTestCase):
    """Only ruok allowed: other words get ZooKeeper's refusal sentence."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:  # the last value of a key wins
            f.write("4lw.commands.whitelist=ruok\n")
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    def test_listed_word_answers(self):
        self.assertEqual(four(self.server.port, "ruok"), "imok")

    def test_unlisted_word_is_refused(self):
        self.assertEqual(four(self.server.port, "srvr"),
                         "srvr is not executed because it is not in the whitelist.\n")
        self.assertEqual(four(self.server.port, "mntr"),
                         "mntr is not executed because it is not in the whitelist.\n")


HASH_LINE = re.compile(r"^([0-9a-f]+): (-?\d+)\n$")


def tree_hash(port):
    """(zxid, digest) from hash's one line."""
    text = four(port, "hash")
    m = HASH_LINE.match(text)
    if not m:
        raise AssertionError("hash answered %r" % text)
    return int(m.group(1), 16), int(m.group(2))


def srvr_zxid(port):
    for line in four(port, "srvr").splitlines():
        if line.startswith("Zxid: "):
            return int(line[6:], 16)
    raise AssertionError("no Zxid line in srvr")


# ZooKeeper prints its own digest for every 128th zxid only.
@ringkeeper_only
class HashTest(ServerTestCase):
    def test_hash_is_one_line_for_the_published_zxid(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        zxid, digest = tree_hash(self.server.port)
        self.assertEqual(zxid, srvr_zxid(self.server.port))
        self.assertEqual(zxid, zk.exists(self.path).mzxid)
        self.assertTrue(-2**63 <= digest < 2**63)

    def test_reads_keep_the_digest_and_a_one_byte_change_moves_it(self):
        zk = self.kazoo()
        zk.create(self.path, b"abc")
        zk.create(self.path + "/child", b"")
        before = tree_hash(self.server.port)
        zk.get(self.path)
        zk.get_children(self.path)
        zk.exists(self.path + "/none")
        self.assertEqual(tree_hash(self.server.port), before)
        zk.set(self.path, b"abd")
        zxid, digest = tree_hash(self.server.port)
        self.assertGreater(zxid, before[0])
        self.assertNotEqual(digest, before[1])


@ringkeeper_only
class HashAcrossServersTest(ServerTestCase):
    """Server A builds a tree txn by txn, snapshotting every few txns;
    server B starts from a copy of A's data dir, so it inserts the nodes in
    the snapshot's order and replays only the log's tail. Same data, built
    in another order: the same digest, and A's after a restart too."""

    SNAP_COUNT = 20

    @classmethod
    def setUpClass(cls):
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:
            f.write("snapCount=%d\n" % cls.SNAP_COUNT)
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    def copy_of(self, a):
        """A second server, not started, with a copy of a's data dir."""
        b = Server(tick_ms=self.tick_ms)
        self.addCleanup(b.destroy)
        shutil.copytree(a.data_dir, b.data_dir, dirs_exist_ok=True)
        return b

    def test_same_data_built_in_another_order_has_the_same_digest(self):
        a = self.server
        zk = self.kazoo()
        zk.create(self.path, b"root")
        # Children created in one order, some changed, some deleted, one
        # with another ACL, across several snapshots.
        for i in reversed(range(60)):
            zk.create("%s/n%02d" % (self.path, i), b"v%d" % i)
        for i in range(0, 60, 7):
            zk.set("%s/n%02d" % (self.path, i), b"changed")
        for i in range(1, 60, 9):
            zk.delete("%s/n%02d" % (self.path, i))
        zk.set_acls("%s/n02" % self.path, [make_digest_acl("u", "p", all=True)])
        zk.stop()  # its closeSession is a txn: let it land before the hash
        zxid, digest = tree_hash(a.port)

        a.stop()
        b = self.copy_of(a)
        b.start()
        a.start()
        with open(b.log_path, errors="replace") as f:
            self.assertIn("loaded snapshot", f.read(), "B did not start from a snapshot")
        # Each start's readiness probe opened and closed a session: two
        # txns on each server that leave the tree as it was.
        zxid_b, digest_b = tree_hash(b.port)
        self.assertEqual(tree_hash(a.port), (zxid_b, digest_b))
        self.assertGreater(zxid_b, zxid)
        self.assertEqual(digest_b, digest)

        # One server changes: the two no longer agree.
        self.kazoo(hosts=b.hosts).set("%s/n03" % self.path, b"v4")
        self.assertNotEqual(tree_hash(b.port)[1], digest)
        self.assertEqual(tree_hash(a.port), (zxid_b, digest))
