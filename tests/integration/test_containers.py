"""Container and TTL nodes: created with createContainer (19) and createTTL
(21), and removed by the server once a container that had children is
empty, or a TTL node went unmodified for its TTL (ZooKeeper's
ContainerManager; here on the sequencer's periodic tick)."""
import struct
import threading
import time

import zkwire
from harness import Server, ServerTestCase, ringkeeper_only

OP_CREATE_CONTAINER, OP_CREATE_TTL = 19, 21
CONTAINER, PERSISTENT_WITH_TTL = 4, 5


def wait_gone(zk, path, secs=10.0):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if zk.exists(path) is None:
            return True
        time.sleep(0.1)
    return False


# ZooKeeper reads the check interval from a JVM property only.
@ringkeeper_only
class ContainerTest(ServerTestCase):
    tick_ms = 500

    @classmethod
    def setUpClass(cls):
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:
            f.write("znode.container.checkIntervalMs=200\n")
            f.write("extendedTypesEnabled=true\n")
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    def raw(self):
        c = zkwire.session(self.server.port, 10000)
        self.addCleanup(c.close)
        return c

    def test_emptied_container_is_deleted_and_watchers_told(self):
        raw = self.raw()
        zk = self.kazoo()
        err, r = raw.call(OP_CREATE_CONTAINER, zkwire.create_body(self.path, b"c", CONTAINER))
        self.assertEqual(err, 0)
        self.assertEqual(r.string(), self.path)
        # ZooKeeper shows clients no owner for containers and TTL nodes.
        self.assertEqual(zk.exists(self.path).ephemeralOwner, 0)
        zk.create(self.path + "/child")
        fired = threading.Event()
        zk.exists(self.path, watch=lambda e: e.type == "DELETED" and fired.set())
        time.sleep(1.0)  # a container with a child stays
        self.assertIsNotNone(zk.exists(self.path))
        zk.delete(self.path + "/child")
        self.assertTrue(wait_gone(zk, self.path), "emptied container was not deleted")
        self.assertTrue(fired.wait(5), "no NodeDeleted for the container")

    def test_container_that_never_had_children_stays(self):
        raw = self.raw()
        zk = self.kazoo()
        err, _ = raw.call(OP_CREATE_CONTAINER, zkwire.create_body(self.path, b"", CONTAINER))
        self.assertEqual(err, 0)
        time.sleep(1.5)
        self.assertIsNotNone(zk.exists(self.path))

    def test_ttl_node_expires_unless_it_has_children(self):
        raw = self.raw()
        zk = self.kazoo()
        body = zkwire.create_body(self.path, b"t", PERSISTENT_WITH_TTL) + struct.pack(">q", 300)
        err, r = raw.call(OP_CREATE_TTL, body)
        self.assertEqual(err, 0)
        st = zk.exists(self.path)
        self.assertEqual(st.ephemeralOwner, 0)
        self.assertTrue(wait_gone(zk, self.path), "TTL node outlived its TTL")
        # With a child it stays, whatever its age.
        err, _ = raw.call(OP_CREATE_TTL, body)
        self.assertEqual(err, 0)
        zk.create(self.path + "/keep")
        time.sleep(1.5)
        self.assertIsNotNone(zk.exists(self.path))
        zk.delete(self.path + "/keep")
        self.assertTrue(wait_gone(zk, self.path))

    def test_cleanup_survives_restart(self):
        raw = self.raw()
        zk = self.kazoo()
        raw.call(OP_CREATE_CONTAINER, zkwire.create_body(self.path, b"", CONTAINER))
        zk.create(self.path + "/c")
        zk.delete(self.path + "/c")
        self.assertTrue(wait_gone(zk, self.path))
        zk.stop()
        raw.close()
        self.server.restart()
        zk2 = self.kazoo()
        self.assertIsNone(zk2.exists(self.path))


class TtlDisabledTest(ServerTestCase):
    """Without extendedTypesEnabled a TTL create is refused as ZooKeeper does."""

    def test_ttl_create_unimplemented(self):
        raw = zkwire.session(self.server.port, 10000)
        self.addCleanup(raw.close)
        body = zkwire.create_body(self.path, b"t", PERSISTENT_WITH_TTL) + struct.pack(">q", 300)
        err, _ = raw.call(OP_CREATE_TTL, body)
        self.assertEqual(err, -6)  # UNIMPLEMENTED
