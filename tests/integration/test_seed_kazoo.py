"""The kazoo walk-through of seeds/000, step by step, asserting what kazoo
returns, Stat fields included."""
import time

from kazoo.exceptions import NoNodeError, NodeExistsError, NotEmptyError
from kazoo.protocol.states import KazooState

from harness import ServerTestCase

DATA = b"This is Zookeeper test"


class SeedWalkThrough(ServerTestCase):
    def test_walk_through(self):
        before_ms = int(time.time() * 1000) - 5000  # allow for clock skew
        zk = self.kazoo()
        self.assertEqual(zk.state, KazooState.CONNECTED)
        self.assertIsNone(zk.exists("/gunwu"))
        # ensure_path: kazoo answers '/gunwu' when it created the node,
        # True when it was there already.
        self.assertEqual(zk.ensure_path("/gunwu"), "/gunwu")
        self.assertTrue(zk.ensure_path("/gunwu"))
        self.assertEqual(zk.create("/gunwu/test1", DATA), "/gunwu/test1")
        with self.assertRaises(NodeExistsError):
            zk.create("/gunwu/test1", DATA)

        data, st0 = zk.get("/gunwu/test1")
        self.assertEqual(data, DATA)
        self.assertEqual((st0.version, st0.cversion, st0.aversion), (0, 0, 0))
        self.assertEqual(st0.dataLength, len(DATA))
        self.assertEqual((st0.numChildren, st0.ephemeralOwner), (0, 0))
        self.assertEqual(st0.mzxid, st0.czxid)
        self.assertEqual(st0.pzxid, st0.czxid)
        self.assertEqual(st0.mtime, st0.ctime)
        self.assertGreaterEqual(st0.ctime, before_ms)

        st1 = zk.set("/gunwu/test1", data + bytes("***", "UTF-8"))
        self.assertEqual(st1.version, 1)
        self.assertEqual(st1.dataLength, 25)
        self.assertEqual(st1.czxid, st0.czxid)
        self.assertGreater(st1.mzxid, st0.mzxid)
        self.assertEqual(st1.pzxid, st0.czxid)  # no child changed
        self.assertEqual(st1.ctime, st0.ctime)
        self.assertLessEqual(st1.ctime, st1.mtime)
        self.assertEqual((st1.cversion, st1.aversion, st1.numChildren), (0, 0, 0))

        data, st2 = zk.get("/gunwu/test1")
        self.assertEqual(data, b"This is Zookeeper test***")
        self.assertEqual(st2, st1)

        # The parent counts its child: cversion and pzxid follow the create.
        _, parent = zk.get("/gunwu")
        self.assertEqual((parent.numChildren, parent.cversion), (1, 1))
        self.assertEqual(parent.pzxid, st0.czxid)
        self.assertLess(parent.czxid, st0.czxid)
        self.assertEqual(zk.get_children("/gunwu"), ["test1"])

        with self.assertRaises(NotEmptyError):
            zk.delete("/gunwu")
        zk.delete("/gunwu", recursive=True)
        self.assertIsNone(zk.exists("/gunwu"))
        with self.assertRaises(NoNodeError):
            zk.get("/gunwu/test1")

        zk.stop()
        self.assertEqual(zk.state, KazooState.LOST)
        zk.close()

    def test_zxids_increase_across_writes(self):
        zk = self.kazoo()
        zk.create(self.path, b"a")
        zxids = [zk.set(self.path, b"%d" % i).mzxid for i in range(5)]
        self.assertEqual(zxids, sorted(set(zxids)))
        self.assertEqual(zk.exists(self.path).version, 5)

    def test_root_and_zookeeper_node(self):
        zk = self.kazoo()
        self.assertIn("zookeeper", zk.get_children("/"))
        self.assertIsNotNone(zk.exists("/"))
