"""ringkeeper-import (issue 8, docs/import.md): Debian's ZooKeeper 3.8 builds a
tree through kazoo and a raw client, stops, and Ringkeeper serves the same
tree from the imported data.

- LiveSessionImportTest: default snapCount, so everything after ZooKeeper's
  first snapshot is in its txn log. Nested paths, binary, empty and null
  data, a container, a TTL node, digest ACLs and setACL, sequential nodes with deletes
  (cversion != numChildren), setData (also to null), a quota on /app, a
  multi and a failed
  multi, deletes that are a parent's last change, ephemerals of a closed
  session (gone with it) and of a live kazoo session.
  ZooKeeper stops with SIGTERM, the import runs in place on its dataDir
  and Ringkeeper starts with the same zoo.cfg and port: every znode's data,
  ACL and all Stat fields equal what ZooKeeper served; the live session
  resumes (same id, ZooKeeper's password) and still owns its ephemerals,
  which go when it closes; the next sequential create gets the number
  ZooKeeper gives on a copy of the same data.
- SnapshotAndLogImportTest: snapCount=10 and a separate dataLogDir, so
  ZooKeeper leaves several snapshots and log files; --log-dir and
  --our-log-dir. The import matches; a flipped byte in a log record that
  valid records follow is refused naming the file and the record's offset;
  a flipped byte in the newest snapshot makes the import fall back to an
  older one plus the log, with the same result, and when it is the only
  snapshot the import is refused naming the file and an offset; a torn last
  record is a torn tail (imported up to the record before); and an
  OUR_DATA_DIR holding Ringkeeper data is refused unless --force.
- FuzzySnapshotImportTest: four clients write concurrently (creates,
  sequential and ephemeral nodes, sets, deletes, multis, sessions that come
  and go) while ZooKeeper snapshots every few txns, so its snapshots are
  fuzzy; then SIGKILL. ZooKeeper restarted on a copy of the files is the
  truth for what they hold: Ringkeeper on the import serves the same tree.
- EnsembleImportTest: the rolling path of docs/import.md on a 3-server
  ensemble: ZooKeeper's QuorumPeerMain builds the tree, every server stops,
  each imports its own dataDir in place (all at the same zxid, or again from
  the one with the highest), and Ringkeeper's ensemble starts on the same
  zoo.cfg and myid files: it elects a leader, every server serves the tree
  ZooKeeper served, the live session resumes, and writes go on in a newer
  epoch.

ringkeeper-import is found next to RK_BIN (RK_IMPORT overrides). Run alone:
RK_BIN=$PWD/build/bin/ringkeeper /usr/bin/python3 tests/integration/run.py test_import
"""
import base64
import glob
import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import zkwire
from harness import ROOT, Cluster, Server, close_quietly, ringkeeper_only, wait_until, \
    _test_timed_out, TEST_TIMEOUT_S

RK_BIN = os.path.abspath(os.environ.get("RK_BIN", os.path.join(ROOT, "build/bin/ringkeeper")))
IMPORT = os.environ.get("RK_IMPORT",
                        os.path.join(os.path.dirname(RK_BIN), "ringkeeper-import"))
SUPER = "super:importtest"
SUPER_DIGEST = "super:" + base64.b64encode(hashlib.sha1(SUPER.encode()).digest()).decode()
OP_SET_DATA, OP_CREATE_CONTAINER, OP_CREATE_TTL = 5, 19, 21
CONTAINER, PERSISTENT_WITH_TTL = 4, 5
FAST_RETRY = dict(max_tries=-1, delay=0.1, backoff=1, max_delay=0.5)


def kazoo(hosts, **kw):
    from kazoo.client import KazooClient
    kw.setdefault("timeout", 10.0)
    c = KazooClient(hosts=hosts, **kw)
    c.start(timeout=15)
    return c


def record(hosts):
    """Every znode as a client sees it: path -> (data, Stat, ACL, children)."""
    c = kazoo(hosts, auth_data=[("digest", SUPER)])
    try:
        c.sync("/")  # a follower first catches up with its leader
        out, todo = {}, ["/"]
        while todo:
            path = todo.pop()
            data, st = c.get(path)
            acl, ast = c.get_acls(path)
            kids = sorted(c.get_children(path))
            out[path] = (data, tuple(st), tuple(ast),
                         [(a.perms, a.id.scheme, a.id.id) for a in acl], kids)
            todo += [(path.rstrip("/") + "/" + k) for k in kids]
        return out
    finally:
        close_quietly(c)


def build_tree(server, ttl=False):
    """The mixed workload; returns the live kazoo client, left connected.
    ttl: also a TTL node (the servers need extendedTypesEnabled)."""
    from kazoo.security import ACL, Id, make_digest_acl, Permissions
    alice = make_digest_acl("alice", "secret", all=True)
    world_read = ACL(Permissions.READ, Id("world", "anyone"))
    zk = kazoo(server.hosts, auth_data=[("digest", "alice:secret")])
    try:
        zk.create("/app/config/db", b"primary=db1", makepath=True)
        # A quota on /app as zkCli's setquota makes it; ZooKeeper keeps the
        # stats as /app changes, the import recounts them as ZooKeeper does
        # when it loads.
        zk.create("/zookeeper/quota/app/zookeeper_limits", b"count=100,bytes=-1", makepath=True)
        zk.create("/zookeeper/quota/app/zookeeper_stats", b"count=0,bytes=0")
        zk.create("/deep/a/b/c/d/e/f/g", b"leaf", makepath=True)
        zk.create("/app/bin", bytes(range(256)))
        zk.create("/app/empty", b"")
        for v in (b"primary=db2", b"primary=db3", b"\x00\x01\x02"):
            zk.set("/app/config/db", v)
        zk.create("/secure", b"s", acl=[alice, world_read])
        zk.create("/secure/inner", b"only alice", acl=[alice])
        zk.set_acls("/secure", [alice, ACL(Permissions.READ | Permissions.WRITE,
                                           Id("world", "anyone"))])
        zk.set_acls("/secure/inner", [alice])
        for i in range(7):
            zk.create("/queue/job-", b"%d" % i, sequence=True, makepath=True)
        zk.delete("/queue/job-0000000001")
        zk.delete("/queue/job-0000000004")
        zk.create("/txn", b"")
        t = zk.transaction()
        t.create("/txn/a", b"1")
        t.create("/txn/b", b"2", acl=[alice])
        t.set_data("/app/bin", b"\x00\xff")
        t.delete("/queue/job-0000000002")
        t.check("/app/config/db", 3)
        t.commit()
        t = zk.transaction()  # fails: no zxid spent on a change, an error txn
        t.create("/txn/never", b"")
        t.check("/app/config/db", 99)
        t.commit()
        raw = zkwire.session(server.port)
        try:
            err, _ = raw.create("/app/null", None)
            assert err == zkwire.ZOK, err
            err, _ = raw.call(OP_CREATE_CONTAINER,
                              zkwire.create_body("/app/box", b"c", CONTAINER))
            assert err == zkwire.ZOK, err
            raw.create("/app/box/item", b"")
            if ttl:
                err, _ = raw.call(OP_CREATE_TTL, zkwire.create_body(
                    "/app/ttl", b"t", PERSISTENT_WITH_TTL) + struct.pack(">q", 3600 * 1000))
                assert err == zkwire.ZOK, err
            err, _ = raw.call(OP_SET_DATA, zkwire.set_body("/app/empty", None))
            assert err == zkwire.ZOK, err
            raw.close_session()
        finally:
            raw.close()
        zk.delete("/deep/a/b/c/d/e/f/g")  # the parent's last change is a delete
        gone = kazoo(server.hosts)
        gone.create("/gone/e", b"bye", ephemeral=True, makepath=True)
        gone.create("/gone/seq-", b"", ephemeral=True, sequence=True)
        close_quietly(gone)  # closeSession deletes them: /gone's pzxid moves
    finally:
        close_quietly(zk)
    live = kazoo(server.hosts, timeout=30.0, connection_retry=FAST_RETRY)
    live.create("/live/e1", b"ephemeral data", ephemeral=True, makepath=True)
    live.create("/live/seq-", b"", ephemeral=True, sequence=True)
    live.create("/queue/job-", b"eph", ephemeral=True, sequence=True)
    return live


def without_config_mtime(tree):
    data, st, ast, acl, kids = tree["/zookeeper/config"]
    tree["/zookeeper/config"] = (data, st[:3] + (None,) + st[4:], ast[:3] + (None,) + ast[4:],
                                 acl, kids)
    return tree


def copy_tree(src, dst):
    """cp -a of a ZooKeeper directory: its logs are sparse 64 MiB files,
    which shutil.copytree would write out in full."""
    subprocess.run(["cp", "-a", "--sparse=always", src, dst], check=True)


def run_import(*args):
    p = subprocess.run([IMPORT, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def next_sequential(server, parent):
    c = kazoo(server.hosts, auth_data=[("digest", SUPER)])
    try:
        return c.create(parent + "/job-", b"next", sequence=True)
    finally:
        close_quietly(c)


def log_records(path):
    """(offset, length) of each whole record of a ZooKeeper txn log."""
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 16
    while pos + 12 <= len(data):
        n = struct.unpack(">i", data[pos + 8:pos + 12])[0]
        if n <= 0 or pos + 13 + n > len(data):
            break
        out.append((pos, n))
        pos += 13 + n
    return out


def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5a]))


def zxid_name(path):
    return int(path.rsplit(".", 1)[1], 16)


@ringkeeper_only
class ImportCase(unittest.TestCase):
    def setUp(self):
        signal.signal(signal.SIGALRM, _test_timed_out)
        signal.alarm(TEST_TIMEOUT_S)
        self.addCleanup(signal.alarm, 0)
        if not os.path.exists(IMPORT):
            self.fail("no %s (build it, or set RK_IMPORT)" % IMPORT)

    def assertSameTree(self, expected, actual):
        for path in sorted(set(expected) | set(actual)):
            self.assertEqual(expected.get(path), actual.get(path), "znode %s" % path)

    def server(self, **kw):
        s = Server(**kw)
        self.addCleanup(s.destroy)
        self.addCleanup(self.check_problems, s)  # runs first: cleanups are LIFO
        return s

    def check_problems(self, s):
        """A server that died by itself or logged a sanitizer report."""
        s.stop()
        problems = s.problems()
        self.assertEqual(problems, [], s.log_tail())

    def start_ringkeeper_on(self, server):
        server.target = "ringkeeper"
        server.start()
        return server


class LiveSessionImportTest(ImportCase):
    def test_import_keeps_tree_session_and_sequence(self):
        from kazoo.protocol.states import KazooState
        zk = self.server(target="zookeeper", extra_cfg=[
            "DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST,
            "extendedTypesEnabled=true"])
        zk.start()
        live = build_tree(zk, ttl=True)
        self.addCleanup(close_quietly, live)
        sid, passwd = live.client_id
        expected = record(zk.hosts)
        self.assertIsNone(expected["/app/null"][0])
        self.assertIsNone(expected["/app/empty"][0])
        self.assertEqual(expected["/txn"][0], b"")
        self.assertEqual(expected["/gone"][4], [])
        # /app and its 8 descendants; 3 + 2 + 1 + 1 bytes of data.
        self.assertEqual(expected["/zookeeper/quota/app/zookeeper_stats"][0],
                         b"count=9,bytes=7")
        zk.stop()  # SIGTERM: ZooKeeper's last snapshot is from its start
        self.assertEqual(sorted(os.path.basename(p) for p in
                                glob.glob(os.path.join(zk.data_dir, "version-2", "snapshot.*"))),
                         ["snapshot.0"])
        copy = self.server(target="zookeeper")
        copy_tree(os.path.join(zk.data_dir, "version-2"),
                        os.path.join(copy.data_dir, "version-2"))

        rc, out, err = run_import(zk.data_dir, zk.data_dir)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"znodes +%d \(3 ephemeral\)" % len(expected))
        self.assertRegex(out, r"sessions +1\n")
        self.assertIn("snapshot.0 (zxid 0x0)", out)

        rk = self.start_ringkeeper_on(zk)
        self.assertTrue(wait_until(lambda: live.state == KazooState.CONNECTED, 30),
                        "the live session did not resume: " + rk.log_tail())
        self.assertEqual(live.client_id, (sid, passwd))
        self.assertSameTree(expected, record(rk.hosts))
        self.assertEqual(live.exists("/live/e1").ephemeralOwner, sid)

        rk_name = next_sequential(rk, "/queue")
        copy.start()
        self.assertEqual(rk_name, next_sequential(copy, "/queue"))
        copy.stop()

        live.stop()  # closeSession: the ephemerals go, on Ringkeeper
        c = kazoo(rk.hosts)
        self.addCleanup(close_quietly, c)
        self.assertEqual(sorted(c.get_children("/live")), [])
        self.assertEqual(len(c.get_children("/queue")), 5)


class SnapshotAndLogImportTest(ImportCase):
    """One ZooKeeper run with snapCount=10 and a dataLogDir; each test
    imports a copy of what it left."""

    @classmethod
    def setUpClass(cls):
        cls.zk = Server(target="zookeeper", extra_cfg=[
            "snapCount=10", "DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST])
        cls.zk_log_dir = os.path.join(cls.zk.dir, "datalog")
        os.mkdir(cls.zk_log_dir)
        with open(cls.zk.cfg, "a") as f:
            f.write("dataLogDir=%s\n" % cls.zk_log_dir)
        try:
            cls.zk.start()
            live = build_tree(cls.zk)
            for i in range(40):  # more rolls of the log
                live.set("/app/bin", b"round %d" % i)
            cls.expected = record(cls.zk.hosts)
            cls.sid = live.client_id[0]
            cls.zk.stop()
            close_quietly(live)
        except Exception:
            cls.zk.destroy()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.zk.destroy()

    def copy(self):
        """A scratch dataDir and dataLogDir with ZooKeeper's files."""
        top = tempfile.mkdtemp(prefix="rk-import-")
        self.addCleanup(shutil.rmtree, top, True)
        data, logs = os.path.join(top, "data"), os.path.join(top, "datalog")
        copy_tree(self.zk.data_dir, data)
        copy_tree(self.zk_log_dir, logs)
        return data, logs

    def snaps(self, data):
        return sorted(glob.glob(os.path.join(data, "version-2", "snapshot.*")), key=zxid_name)

    def logs_read(self, data, logs):
        """The log files the import reads: from the newest snapshot's."""
        newest = zxid_name(self.snaps(data)[-1])
        files = sorted(glob.glob(os.path.join(logs, "version-2", "log.*")), key=zxid_name)
        start = max([zxid_name(f) for f in files if zxid_name(f) <= newest] or [0])
        return [f for f in files if zxid_name(f) >= start]

    def test_import_matches(self):
        data, logs = self.copy()
        self.assertGreater(len(self.snaps(data)), 2)
        self.assertGreater(len(glob.glob(os.path.join(logs, "version-2", "log.*"))), 2)
        rk = self.server(extra_cfg=["DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST])
        rk_log_dir = os.path.join(rk.dir, "datalog")
        with open(rk.cfg, "a") as f:
            f.write("dataLogDir=%s\n" % rk_log_dir)
        rc, out, err = run_import("--log-dir", logs, "--our-log-dir", rk_log_dir, data,
                                  rk.data_dir)
        self.assertEqual(rc, 0, err)
        newest = self.snaps(data)[-1]
        self.assertIn("snapshot   %s" % newest, out)
        self.assertRegex(out, r"sessions +1\n")
        rk.start()
        self.assertSameTree(self.expected, record(rk.hosts))
        self.assertTrue(os.path.isdir(os.path.join(rk_log_dir, "txnlog")))
        c = kazoo(rk.hosts)
        self.addCleanup(close_quietly, c)
        self.assertEqual(c.exists("/live/e1").ephemeralOwner, self.sid)

    def test_flipped_log_byte_is_refused_with_file_and_offset(self):
        data, logs = self.copy()
        files = [(len(log_records(f)), f) for f in self.logs_read(data, logs)]
        n, victim = max(files)
        self.assertGreaterEqual(n, 3, files)
        off, length = log_records(victim)[n // 2]
        flip(victim, off + 12 + length // 2)
        our = os.path.join(os.path.dirname(data), "ours")
        rc, out, err = run_import("--log-dir", logs, data, our)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("%s: corrupt at offset %d: corrupt record" % (victim, off), err)
        self.assertFalse(os.path.exists(os.path.join(our, "snapshots")))

    def import_dump(self, data, logs):
        """Imports; returns the summary, stderr and the written snapshot as
        ringkeeper-snapdump prints it (without its creation time)."""
        our = tempfile.mkdtemp(prefix="rk-import-ours-")
        self.addCleanup(shutil.rmtree, our, True)
        rc, out, err = run_import("--log-dir", logs, data, our)
        self.assertEqual(rc, 0, err)
        dump = subprocess.run([os.path.join(os.path.dirname(IMPORT), "ringkeeper-snapdump"),
                               os.path.join(our, "snapshots"), "--data"],
                              capture_output=True, text=True, check=True).stdout
        dump = re.sub(r"created \S+", "", dump.replace(our, "OURS"))
        return out, err, dump

    def test_flipped_newest_snapshot_falls_back_to_an_older_one(self):
        data, logs = self.copy()
        _, _, clean = self.import_dump(data, logs)
        newest = self.snaps(data)[-1]
        flip(newest, os.path.getsize(newest) // 2)
        out, err, fallback = self.import_dump(data, logs)
        self.assertRegex(err, r"skipping %s: corrupt at offset \d+" % re.escape(newest))
        self.assertIn("snapshot   %s" % self.snaps(data)[-2], out)
        self.assertEqual(clean, fallback)

    def test_only_snapshot_flipped_is_refused(self):
        data, logs = self.copy()
        snaps = self.snaps(data)
        for s in snaps[:-1]:
            os.unlink(s)
        flip(snaps[-1], os.path.getsize(snaps[-1]) // 2)
        our = os.path.join(os.path.dirname(data), "ours")
        rc, out, err = run_import("--log-dir", logs, data, our)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r"%s: corrupt at offset \d+: " % re.escape(snaps[-1]))
        self.assertFalse(os.path.exists(os.path.join(our, "snapshots")))

    def test_torn_last_record_is_a_torn_tail(self):
        data, logs = self.copy()
        last = self.logs_read(data, logs)[-1]
        recs = log_records(last)
        off, length = recs[-1]
        with open(last, "r+b") as f:  # the write a crash cut short
            f.seek(off + 12 + length // 2)
            f.write(b"\0" * (length - length // 2 + 1))
        with open(last, "rb") as f:
            f.seek(recs[-2][0] + 12 + 12 if len(recs) > 1 else 0)
            before = struct.unpack(">q", f.read(8))[0] if len(recs) > 1 else None
        _, _, full = self.import_dump(*self.copy())
        out, err, dump = self.import_dump(data, logs)
        self.assertIn("torn tail  %s at offset %d" % (last, off), out)
        self.assertNotEqual(full, dump)
        if before is not None:
            self.assertIn("imported zxid 0x%x " % before, out)

    def test_our_data_is_refused_unless_forced(self):
        data, logs = self.copy()
        our = os.path.join(os.path.dirname(data), "ours")
        self.assertEqual(run_import("--log-dir", logs, data, our)[0], 0)
        rc, out, err = run_import("--log-dir", logs, data, our)
        self.assertEqual(rc, 2, out + err)
        self.assertIn("already holds Ringkeeper data", err)
        rc, out, err = run_import("--force", "--log-dir", logs, data, our)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(glob.glob(os.path.join(our, "snapshots.before-import-*"))), 1)
        self.assertEqual(len(glob.glob(os.path.join(our, "snapshots", "snapshot.*"))), 1)


def churn(hosts, me, seconds, errors, live):
    """One writer of the fuzzy test: a mix of every txn type under /load/<me>;
    sessions it leaves open go to live."""
    import random
    from kazoo.exceptions import KazooException
    rnd = random.Random(me)
    base = "/load/%d" % me
    try:
        zk = kazoo(hosts)
        zk.ensure_path(base)
        made, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            k = rnd.random()
            try:
                if k < 0.35 or len(made) < 3:
                    made.append(zk.create(base + "/n-", b"x" * rnd.randrange(64),
                                          sequence=True))
                elif k < 0.6:
                    zk.set(rnd.choice(made), bytes(rnd.randrange(256) for _ in range(8)))
                elif k < 0.75:
                    zk.delete(made.pop(rnd.randrange(len(made))))
                elif k < 0.85:
                    t = zk.transaction()
                    t.create(base + "/m-", b"m", sequence=True)
                    t.set_data(rnd.choice(made), b"in a multi")
                    t.commit()
                elif k < 0.95:
                    e = kazoo(hosts)
                    e.create(base + "/e-", b"e", ephemeral=True, sequence=True)
                    if rnd.random() < 0.5:
                        close_quietly(e)  # closeSession takes it
                    else:
                        live.append(e)
                else:
                    zk.create(base + "/n-", b"", ephemeral=True, sequence=True)
            except KazooException:
                pass
    except Exception as e:  # noqa: BLE001 (reported by the test)
        errors.append("writer %d: %r" % (me, e))


class FuzzySnapshotImportTest(ImportCase):
    def test_import_equals_zookeepers_own_recovery(self):
        zk = self.server(target="zookeeper", extra_cfg=["snapCount=16"])
        zk.start()
        errors, live = [], []
        self.addCleanup(lambda: [close_quietly(c) for c in live])
        writers = [threading.Thread(target=churn, args=(zk.hosts, i, 4.0, errors, live),
                                    daemon=True) for i in range(4)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(30)
        self.assertEqual(errors, [])
        zk.stop(kill=True)
        self.assertGreater(len(glob.glob(os.path.join(zk.data_dir, "version-2",
                                                      "snapshot.*"))), 3)
        truth = self.server(target="zookeeper")
        copy_tree(os.path.join(zk.data_dir, "version-2"),
                        os.path.join(truth.data_dir, "version-2"))
        rc, out, err = run_import(zk.data_dir, zk.data_dir)
        self.assertEqual(rc, 0, err)
        truth.start()
        expected = record(truth.hosts)
        truth.stop()
        rk = self.start_ringkeeper_on(zk)
        self.assertSameTree(expected, record(rk.hosts))


class EnsembleImportTest(ImportCase):
    def test_ensemble_moves_over(self):
        from kazoo.protocol.states import KazooState
        c = Cluster(3, tick_ms=2000, target="zookeeper",
                    extra_cfg=["DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST])
        self.addCleanup(c.destroy)
        self.addCleanup(lambda: (c.stop(), self.assertEqual(c.problems(), [], c.log_tails())))
        c.start()
        leader = c.wait_quorum()
        live = build_tree(c.members[leader])
        self.addCleanup(close_quietly, live)
        sid = live.client_id[0]
        # Each server's own tree. ZooKeeper also stamps /zookeeper/config's
        # mtime in memory when it loads its configuration, with no txn, so
        # that one field is nowhere on disk (docs/import.md).
        expected = {i: without_config_mtime(record(m.hosts)) for i, m in c.members.items()}
        c.stop()

        zxids = {}
        for i, m in c.members.items():
            rc, out, err = run_import(m.data_dir, m.data_dir)
            self.assertEqual(rc, 0, err)
            zxids[i] = int(re.search(r"imported zxid 0x([0-9a-f]+)", out).group(1), 16)
        top = max(zxids, key=zxids.get)
        for i, m in c.members.items():  # a server that lagged takes the most complete data
            if zxids[i] != zxids[top]:
                rc, out, err = run_import("--force", c.members[top].data_dir, m.data_dir)
                self.assertEqual(rc, 0, err)

        c.target = "ringkeeper"
        for m in c.members.values():
            m.target = "ringkeeper"
        c.start()
        c.wait_quorum()
        for i, m in c.members.items():
            self.assertSameTree(expected[i], without_config_mtime(record(m.hosts)))
        self.assertTrue(wait_until(lambda: live.state == KazooState.CONNECTED, 30),
                        c.log_tails())
        self.assertEqual(live.exists("/live/e1").ephemeralOwner, sid)
        w = kazoo(c.hosts)
        self.addCleanup(close_quietly, w)
        w.create("/after-import", b"ok")
        st = w.exists("/after-import")
        self.assertGreater(st.czxid >> 32, zxids[top] >> 32)
