"""Churn: 100 raw sessions x 1,000 pipelined create/set/delete/get/exists ops
from 4 threads. Each session owns its keys (so the outcome of each op is
known in advance and checked reply by reply) and also adds and removes
children of one shared parent. At the end the tree must equal the model,
ephemerals must be gone once their sessions close, and the shared parent's
cversion must count every create and delete made under it.

RK_CHURN_SESSIONS, RK_CHURN_OPS and RK_CHURN_SEED change the load."""
import os
import random
import struct
import threading
import time

import zkwire
from harness import ServerTestCase

SESSIONS = int(os.environ.get("RK_CHURN_SESSIONS", "100"))
OPS = int(os.environ.get("RK_CHURN_OPS", "1000"))
SEED = int(os.environ.get("RK_CHURN_SEED", "20240601"))
THREADS = 4
WINDOW = 25  # requests in flight per session
ROOT = "/churn"
SHARED = ROOT + "/shared"


class Plan:
    """One session's ops, each with the reply it must get, computed against
    a model of the keys the session owns: path -> [data, version, ephemeral]."""

    def __init__(self, index, rng):
        self.own = ["%s/s%03d/k%d" % (ROOT, index, j) for j in range(6)]
        self.shared = ["%s/s%03d-k%d" % (SHARED, index, j) for j in range(3)]
        self.model = {}
        self.shared_changes = 0  # creates + deletes under SHARED
        self.ops = [self.next_op(rng) for _ in range(OPS)]

    def version_arg(self, rng, path):
        """-1 (any), the current version, or a stale one."""
        cur = self.model[path][1] if path in self.model else 0
        return rng.choice((-1, -1, cur, cur, cur + 1))

    def next_op(self, rng):
        path = rng.choice(self.own + self.own + self.shared)
        node = self.model.get(path)
        kind = rng.choices(("create", "set", "delete", "get", "exists"),
                           (4, 3, 3, 3, 1))[0]
        if kind == "create":
            data = rng.randbytes(rng.randrange(0, 48))
            flags = zkwire.EPHEMERAL if rng.random() < 0.2 else 0
            body = zkwire.create_body(path, data, flags)
            if node:
                return zkwire.OP_CREATE, body, (zkwire.ZNODEEXISTS,)
            self.model[path] = [data, 0, flags == zkwire.EPHEMERAL]
            self.shared_changes += path.startswith(SHARED + "/")
            return zkwire.OP_CREATE, body, (zkwire.ZOK, path)
        if kind == "set":
            data = rng.randbytes(rng.randrange(0, 48))
            version = self.version_arg(rng, path)
            body = zkwire.set_body(path, data, version)
            if not node:
                return zkwire.OP_SET_DATA, body, (zkwire.ZNONODE,)
            if version not in (-1, node[1]):
                return zkwire.OP_SET_DATA, body, (zkwire.ZBADVERSION,)
            node[0], node[1] = data, node[1] + 1
            return zkwire.OP_SET_DATA, body, (zkwire.ZOK, node[1])
        if kind == "delete":
            version = self.version_arg(rng, path)
            body = zkwire.delete_body(path, version)
            if not node:
                return zkwire.OP_DELETE, body, (zkwire.ZNONODE,)
            if version not in (-1, node[1]):
                return zkwire.OP_DELETE, body, (zkwire.ZBADVERSION,)
            del self.model[path]
            self.shared_changes += path.startswith(SHARED + "/")
            return zkwire.OP_DELETE, body, (zkwire.ZOK,)
        op = zkwire.OP_GET_DATA if kind == "get" else zkwire.OP_EXISTS
        body = zkwire.get_body(path)
        if not node:
            return op, body, (zkwire.ZNONODE,)
        if kind == "get":
            return op, body, (zkwire.ZOK, node[0], node[1])
        return op, body, (zkwire.ZOK, node[1])


def check_reply(op, err, r, expect):
    """Returns None when the reply is the expected one, else a description."""
    if err != expect[0]:
        return "err %d, want %d" % (err, expect[0])
    if err != zkwire.ZOK:
        return None
    if op == zkwire.OP_CREATE:
        got = (err, r.string())
    elif op == zkwire.OP_SET_DATA or op == zkwire.OP_EXISTS:
        got = (err, r.stat()["version"])
    elif op == zkwire.OP_GET_DATA:
        data = r.buffer() or b""
        got = (err, data, r.stat()["version"])
    else:
        got = (err,)
    return None if got == expect else "got %r, want %r" % (got, expect)


def drive(conns, plans, problems):
    try:
        drive_windows(conns, plans, problems)
    except Exception as e:  # a dropped connection, a garbled reply
        problems.append("thread died: %r" % e)


def drive_windows(conns, plans, problems):
    """Runs the plans of one thread's sessions, WINDOW ops at a time per
    session, every session's window in flight together."""
    for start in range(0, OPS, WINDOW):
        sent = []
        for conn, plan in zip(conns, plans):
            batch = plan.ops[start:start + WINDOW]
            frames = b""
            for op, body, _ in batch:
                conn.xid += 1
                payload = struct.pack(">ii", conn.xid, op) + body
                frames += struct.pack(">i", len(payload)) + payload
            conn.sock.sendall(frames)
            sent.append((conn, batch, conn.xid - len(batch) + 1))
        for conn, batch, first_xid in sent:
            for n, (op, body, expect) in enumerate(batch):
                xid, _, err, r = conn.read_reply()
                bad = "xid %d, want %d" % (xid, first_xid + n) if xid != first_xid + n \
                    else check_reply(op, err, r, expect)
                if bad and len(problems) < 20:
                    problems.append("session %x op %d (%d): %s"
                                    % (conn.session_id, start + n, op, bad))


class ChurnTest(ServerTestCase):
    def test_churn_tree_matches_model(self):
        rng = random.Random(SEED)
        plans = [Plan(i, rng) for i in range(SESSIONS)]
        zk = self.kazoo()
        zk.create(SHARED, makepath=True)
        for i in range(SESSIONS):
            zk.create("%s/s%03d" % (ROOT, i))
        conns = [self.raw(30000) for _ in range(SESSIONS)]

        problems, threads = [], []
        t0 = time.monotonic()
        for k in range(THREADS):
            t = threading.Thread(target=drive, args=(conns[k::THREADS], plans[k::THREADS],
                                                      problems))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(180)
        self.assertFalse(any(t.is_alive() for t in threads), "churn stuck")
        took = time.monotonic() - t0
        print("\n  churn: %d ops in %.1f s (seed %d)" % (SESSIONS * OPS, took, SEED),
              end=" ", flush=True)
        self.assertEqual(problems, [], "seed %d" % SEED)

        self.assert_tree(zk, plans, with_ephemerals=True)
        shared = zk.exists(SHARED)
        self.assertEqual(shared.cversion, sum(p.shared_changes for p in plans))
        for c in conns:
            self.assertEqual(c.close_session(), zkwire.ZOK)
        self.assert_tree(zk, plans, with_ephemerals=False)

    def assert_tree(self, zk, plans, with_ephemerals):
        want = {}
        for p in plans:
            for path, (data, version, eph) in p.model.items():
                if with_ephemerals or not eph:
                    want[path] = (data, version)
        got = {}
        dirs = ["%s/s%03d" % (ROOT, i) for i in range(len(plans))] + [SHARED]
        for d in dirs:
            for child in zk.get_children(d):
                data, st = zk.get(d + "/" + child)
                got[d + "/" + child] = (data, st.version)
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        wrong = sorted(k for k in want if k in got and got[k] != want[k])[:5]
        self.assertEqual((missing, extra, wrong), ([], [], []),
                         "tree differs from model (seed %d)" % SEED)
        self.assertEqual(len(got), len(want))
