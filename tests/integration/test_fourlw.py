"""Four-letter words on the client port, in the formats ZooKeeper's own
scripts and exporters parse, the whitelist refusal, and Ringkeeper's hash:
the digest of the whole tree, which servers holding the same data agree
on however each built it. cons, stat's clients, crst, wchc, wchp and dump
print what every core holds (connections, watches, sessions): their
figures are checked against what the test's own sessions did, on
Ringkeeper and on ZooKeeper alike."""
import os
import re
import shutil
import socket
import struct
import time

from kazoo.security import make_digest_acl

import zkwire
from harness import Server, ServerTestCase, ringkeeper_only
from test_ensemble import EnsembleCase


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
        # Words every core answers are refused before any core is asked.
        for word in ("cons", "stat", "dump", "wchc", "wchp", "crst"):
            self.assertEqual(four(self.server.port, word),
                             "%s is not executed because it is not in the whitelist.\n" % word)


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


# ---- what every core holds: cons, stat's clients, crst, wchc, wchp, dump ----

CNXN_LINE = re.compile(r"^ /(?P<ip>[^\[]+):(?P<port>\d+)\[(?P<interest>[0-9a-f]+)\]"
                       r"\((?P<fields>[^)]*)\)$")
OP_ADD_WATCH, OP_GET_CHILDREN = 106, 8
PERSISTENT, RECURSIVE = 0, 1


def connections(text):
    """cons / stat client lines: {port: {"interest": .., field: value}}."""
    out = {}
    for line in text.splitlines():
        m = CNXN_LINE.match(line)
        if m:
            fields = dict(kv.split("=", 1) for kv in m.group("fields").split(","))
            fields["interest"] = m.group("interest")
            out[int(m.group("port"))] = fields
    return out


def local_port(conn):
    return conn.sock.getsockname()[1]


def watch_groups(text):
    """wchc / wchp: {heading: [lines under it]}."""
    groups, head = {}, None
    for line in text.split("\n"):
        if line.startswith("\t"):
            groups[head].append(line[1:])
        elif line:
            head = line
            groups[head] = []
    return groups


class ConnectionWordsTest(ServerTestCase):
    def session(self, timeout_ms=10000):
        """A raw session: unlike kazoo's, it sends nothing by itself."""
        return self.raw(timeout_ms)

    def test_cons_counts_what_a_session_did(self):
        before = int(time.time() * 1000)
        c = self.session(8000)
        after = int(time.time() * 1000)
        self.assertEqual(c.create(self.path, b"x")[0], 0)  # xid 1
        err, (_, stat) = c.get(self.path)  # xid 2
        self.assertEqual(err, 0)
        text = four(self.server.port, "cons")
        self.assertTrue(text.endswith(")\n\n"), text)
        cons = connections(text)
        f = cons[local_port(c)]
        self.assertEqual(f["interest"], "1")
        self.assertEqual(f["sid"], "0x%x" % c.session_id)
        # The ConnectRequest, the create and the get; each answered.
        self.assertEqual((f["queued"], f["recved"], f["sent"]), ("0", "3", "3"))
        self.assertEqual((f["lop"], f["lcxid"], f["to"]), ("GETD", "0x2", "8000"))
        self.assertGreaterEqual(int(f["lzxid"], 16), stat["mzxid"])
        self.assertLessEqual(int(f["lzxid"], 16), srvr_zxid(self.server.port))
        self.assertTrue(before - 1000 <= int(f["est"]) <= after + 1000, (before, f, after))
        lat = [int(f[k]) for k in ("llat", "minlat", "avglat", "maxlat")]
        self.assertTrue(lat[1] <= lat[2] <= lat[3], f)
        int(f["lresp"])
        # The asking connection is listed too: one word read, nothing sent yet.
        self.assertIn({"interest": "0", "queued": "0", "recved": "1", "sent": "0"},
                      list(cons.values()))

    def test_a_ping_and_a_write_show_in_cons(self):
        c = self.session()
        c.ping()
        f = connections(four(self.server.port, "cons"))[local_port(c)]
        # A ping's xid (-2) is no cxid: the last one is still the session's
        # creation, cxid 0.
        self.assertEqual((f["lop"], f["lcxid"], f["recved"], f["sent"]), ("PING", "0x0", "2", "2"))
        self.assertEqual(c.create(self.path)[0], 0)
        f = connections(four(self.server.port, "cons"))[local_port(c)]
        self.assertEqual((f["lop"], f["lcxid"], f["recved"], f["sent"]),
                         ("CREA", "0x1", "3", "3"))
        self.assertEqual(int(f["lzxid"], 16), c.exists(self.path)[1]["czxid"])

    def test_every_core_lists_its_connections(self):
        # Enough sessions that SO_REUSEPORT spreads them over every core.
        sessions = [self.session() for _ in range(12)]
        text = four(self.server.port, "cons")
        cons = connections(text)
        for c in sessions:
            self.assertEqual(cons[local_port(c)]["sid"], "0x%x" % c.session_id)
        stat = four(self.server.port, "stat")
        lines = stat.splitlines()
        clients = lines[lines.index("Clients:") + 1:lines.index("", lines.index("Clients:"))]
        brief = connections("\n".join(clients))
        self.assertEqual(len(brief), len(clients), clients)
        for c in sessions:
            self.assertEqual(brief[local_port(c)],
                             {"interest": "1", "queued": "0", "recved": "1", "sent": "1"})
        fields = dict(l.split(": ", 1) for l in lines if ": " in l and not l.startswith(" "))
        self.assertGreaterEqual(int(fields["Connections"]), len(sessions) + 1)

    def test_crst_zeroes_every_connections_figures(self):
        c = self.session()
        self.assertEqual(c.create(self.path)[0], 0)
        self.assertEqual(four(self.server.port, "crst"), "Connection stats reset.\n")
        f = connections(four(self.server.port, "cons"))[local_port(c)]
        self.assertEqual((f["recved"], f["sent"], f["lop"], f["lzxid"], f["lresp"]),
                         ("0", "0", "NA", "0xffffffffffffffff", "0"))
        self.assertEqual((f["llat"], f["minlat"], f["avglat"], f["maxlat"]), ("0",) * 4)
        self.assertNotIn("lcxid", f)
        self.assertEqual(f["sid"], "0x%x" % c.session_id)
        c.exists(self.path)
        f = connections(four(self.server.port, "cons"))[local_port(c)]
        self.assertEqual((f["recved"], f["sent"], f["lop"], f["lcxid"]),
                         ("1", "1", "EXIS", "0x2"))

    def test_a_half_closed_word_still_gets_its_answer(self):
        # echo cons | nc: the client shuts its side down after the word.
        for word in ("cons", "stat", "ruok"):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
                s.sendall(word.encode() + b"\n")
                s.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
            self.assertTrue(got, word)
            if word == "ruok":
                self.assertEqual(got, b"imok")
            else:
                self.assertIn("(queued=0,recved=1,sent=0)", got.decode())

    def test_wchc_and_wchp_list_a_sessions_data_watches(self):
        base = self.path
        a, b = self.session(), self.session()
        for p in (base, base + "/x", base + "/y"):
            self.assertEqual(a.create(p)[0], 0)
        # Three watches of a: data, exists on a missing node, persistent.
        self.assertEqual(a.get(base + "/x", watch=True)[0], 0)
        self.assertEqual(a.exists(base + "/none", watch=True)[0], zkwire.ZNONODE)
        err, _ = a.call(OP_ADD_WATCH, zkwire.put_string(base) + struct.pack(">i", PERSISTENT))
        self.assertEqual(err, 0)
        # A child watch is not listed: ZooKeeper dumps its data watch table.
        err, _ = a.call(OP_GET_CHILDREN, zkwire.put_string(base + "/y") + b"\1")
        self.assertEqual(err, 0)
        # b: a recursive watch, and the same data watch as a.
        err, _ = b.call(OP_ADD_WATCH, zkwire.put_string(base + "/y") + struct.pack(">i", RECURSIVE))
        self.assertEqual(err, 0)
        self.assertEqual(b.exists(base + "/x", watch=True)[0], 0)
        sa, sb = "0x%x" % a.session_id, "0x%x" % b.session_id

        text = four(self.server.port, "wchc")
        self.assertTrue(text.endswith("\n\n") or text == "\n", text)
        by_session = watch_groups(text)
        self.assertEqual(sorted(by_session[sa]), sorted([base, base + "/x", base + "/none"]))
        self.assertEqual(sorted(by_session[sb]), sorted([base + "/y", base + "/x"]))

        by_path = watch_groups(four(self.server.port, "wchp"))
        self.assertEqual(sorted(by_path[base + "/x"]), sorted([sa, sb]))
        self.assertEqual(by_path[base], [sa])
        self.assertEqual(by_path[base + "/none"], [sa])
        self.assertEqual(by_path[base + "/y"], [sb])

        # A fired one-shot watch is gone from both.
        self.assertEqual(a.call(zkwire.OP_SET_DATA, zkwire.set_body(base + "/x", b"v"))[0], 0)
        by_path = watch_groups(four(self.server.port, "wchp"))
        self.assertNotIn(base + "/x", by_path)
        self.assertNotIn(base + "/x", watch_groups(four(self.server.port, "wchc"))[sa])

    def test_dump_lists_sessions_their_ephemerals_and_connections(self):
        a, b = self.session(), self.session()
        self.assertEqual(a.create(self.path)[0], 0)
        eph = [self.path + "/e1", self.path + "/e2"]
        for p in eph:
            self.assertEqual(a.create(p, flags=zkwire.EPHEMERAL)[0], 0)
        sa, sb = "0x%x" % a.session_id, "0x%x" % b.session_id
        text = four(self.server.port, "dump")
        lines = text.splitlines()
        self.assertEqual(lines[0], "SessionTracker dump:")
        # Standalone: sessions in expiry buckets, as ZooKeeper's tracker.
        self.assertRegex(lines[1], r"^Session Sets \(\d+\)/\(\d+\):$")
        date = r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}"
        i = 2
        sessions = []
        while lines[i] != "ephemeral nodes dump:":
            if lines[i].startswith("\t"):
                sessions.append(lines[i][1:])
            else:
                self.assertRegex(lines[i], r"^\d+ expire at %s:$" % date)
            i += 1
        self.assertIn(sa, sessions)
        self.assertIn(sb, sessions)
        self.assertRegex(lines[i + 1], r"^Sessions with Ephemerals \(\d+\):$")
        j = lines.index("Connections dump:")
        owners = watch_groups("\n".join(l[:-1] if not l.startswith("\t") else l
                                        for l in lines[i + 2:j]))
        self.assertEqual(sorted(owners[sa]), eph)
        self.assertNotIn(sb, owners)
        self.assertEqual(int(lines[i + 1].split("(")[1].split(")")[0]), len(owners))
        self.assertRegex(lines[j + 1], r"^Connections Sets \(\d+\)/\(\d+\):$")
        conns = "\n".join(lines[j + 2:])
        self.assertIn("\tip: /127.0.0.1:%d sessionId: %s" % (local_port(a), sa), conns)
        self.assertIn("\tip: /127.0.0.1:%d sessionId: %s" % (local_port(b), sb), conns)


class ConnectionWordsEnsembleTest(EnsembleCase):
    def test_dump_on_leader_and_follower(self):
        c = self.cluster(3)
        leader = c.wait_quorum()
        follower = next(i for i in c.ids if i != leader)
        s = zkwire.session(c.client_ports[follower], 4000)
        self.addCleanup(s.close)
        self.assertEqual(s.create("/eph", flags=zkwire.EPHEMERAL)[0], 0)
        sid = "0x%x" % s.session_id
        # The leader tracks sessions in expiry buckets; a follower lists
        # every global session with its timeout. Both know the ephemerals.
        lead = c.fourlw(leader, "dump")
        self.assertRegex(lead, r"^SessionTracker dump:\nSession Sets \(\d+\)/\(\d+\):\n")
        self.assertIn("\n\t%s\n" % sid, lead)
        fol = c.fourlw(follower, "dump")
        self.assertRegex(fol, r"^SessionTracker dump:\nGlobal Sessions\(\d+\):\n")
        self.assertIn("\n%s\t4000ms\n" % sid, fol)
        for text in (lead, fol):
            self.assertIn("\n%s:\n\t/eph\n" % sid, text)
        # The session's connection is the follower's to list.
        self.assertIn("sid=%s" % sid, c.fourlw(follower, "cons"))
        self.assertNotIn("sid=%s" % sid, c.fourlw(leader, "cons"))
