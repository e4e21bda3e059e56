"""setWatches after a reconnect (what ZooKeeper clients send when they
resume a session elsewhere): each watch either fires at once for what
changed since relativeZxid, or is registered again and fires later."""
import struct

import zkwire
from harness import ServerTestCase

OP_SET_WATCHES, XID_SET_WATCHES = 101, -8
CREATED, DELETED, DATA_CHANGED, CHILDREN_CHANGED = 1, 2, 3, 4


def strings(paths):
    return struct.pack(">i", len(paths)) + b"".join(zkwire.put_string(p) for p in paths)


class SetWatchesTest(ServerTestCase):
    def test_reconnect_fires_missed_changes_and_rearms_the_rest(self):
        p = self.path
        a = zkwire.session(self.server.port, 10000)
        for node in (p, p + "/data", p + "/gone", p + "/same"):
            self.assertEqual(a.create(node, b"v")[0], 0)
        err, (_, st) = a.get(p + "/same")
        last_zxid = st["mzxid"]
        sid, pw = a.session_id, a.passwd
        a.close()  # the connection drops; the session lives on

        # Changes the session did not see while it was away.
        zk = self.kazoo()
        zk.set(p + "/data", b"v2")
        zk.delete(p + "/gone")
        zk.create(p + "/born")
        zk.create(p + "/data/kid")

        b = zkwire.Conn(self.server.port)
        self.addCleanup(b.close)
        self.assertEqual(b.handshake(10000, sid, pw)[1], sid)
        body = (struct.pack(">q", last_zxid)
                + strings([p + "/data", p + "/gone", p + "/same"])   # data watches
                + strings([p + "/born", p + "/later"])                # exist watches
                + strings([p + "/data", p + "/same"]))                # child watches
        b.send_frame(struct.pack(">ii", XID_SET_WATCHES, OP_SET_WATCHES) + body)
        xid, _, err, _ = b.read_reply()
        self.assertEqual((xid, err), (XID_SET_WATCHES, 0))
        fired = sorted((t, path) for t, _, path in b.events)
        self.assertEqual(fired, sorted([
            (DATA_CHANGED, p + "/data"),
            (DELETED, p + "/gone"),
            (CREATED, p + "/born"),
            (CHILDREN_CHANGED, p + "/data"),
        ]))
        self.assertTrue(all(state == 3 for _, state, _ in b.events))  # SyncConnected

        # The unchanged ones were registered again and fire on the next change.
        b.events.clear()
        zk.set(p + "/same", b"v3")
        zk.create(p + "/later")
        zk.create(p + "/same/kid")
        self.assertEqual(b.ping()[1], 0)  # replies follow the events
        deadline_pings = 50
        while len(b.events) < 3 and deadline_pings:
            b.ping()
            deadline_pings -= 1
        self.assertEqual(sorted((t, path) for t, _, path in b.events), sorted([
            (DATA_CHANGED, p + "/same"),
            (CREATED, p + "/later"),
            (CHILDREN_CHANGED, p + "/same"),
        ]))
