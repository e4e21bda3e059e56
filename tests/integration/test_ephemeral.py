"""Ephemeral nodes live exactly as long as their session: gone at once on
closeSession, kept across a silent or dropped connection until the session
timeout, gone after it."""
import socket
import threading
import time

from kazoo.exceptions import NoChildrenForEphemeralsError

import zkwire
from harness import ServerTestCase

TIMEOUT_MS = 2000  # with tickTime 500: min 1000, max 10000


class EphemeralTest(ServerTestCase):
    tick_ms = 500

    def test_vanish_on_close(self):
        a, b = self.kazoo(), self.kazoo()
        b.ensure_path(self.path)
        a.create(self.path + "/e1", b"x", ephemeral=True)
        a.create(self.path + "/e2", ephemeral=True)
        st = b.exists(self.path + "/e1")
        self.assertEqual(st.ephemeralOwner, a.client_id[0])
        self.assertEqual(b.exists(self.path).ephemeralOwner, 0)
        fired = threading.Event()
        b.exists(self.path + "/e1", watch=lambda ev: fired.set())
        a.stop()  # closeSession: its ephemerals are deleted before the reply
        self.assertIsNone(b.exists(self.path + "/e1"))
        self.assertIsNone(b.exists(self.path + "/e2"))
        self.assertTrue(fired.wait(5))
        self.assertEqual(b.get_children(self.path), [])
        # Two creates and two deletes each bumped the parent's cversion.
        self.assertEqual(b.exists(self.path).cversion, 4)

    def test_no_children_for_ephemerals(self):
        a = self.kazoo()
        a.create(self.path, ephemeral=True)
        with self.assertRaises(NoChildrenForEphemeralsError):
            a.create(self.path + "/child")

    def expire_and_watch(self, raw, node, close_socket):
        """Leaves raw's session without pings; returns seconds until another
        client saw the ephemeral node gone (or None if it never went)."""
        watcher = self.kazoo()
        gone = threading.Event()
        watcher.exists(node, watch=lambda ev: gone.set())
        t0 = time.monotonic()
        if close_socket:
            raw.close()
        # The node must outlive the connection by about the session timeout.
        time.sleep(0.5)
        self.assertIsNotNone(watcher.exists(node))
        if not gone.wait(TIMEOUT_MS / 1000 + 2 * self.tick_ms / 1000 + 3):
            return None
        self.assertIsNone(watcher.exists(node))
        return time.monotonic() - t0

    def test_vanish_on_expiry_after_socket_close(self):
        raw = zkwire.session(self.server.port, TIMEOUT_MS)
        self.assertEqual(raw.timeout_ms, TIMEOUT_MS)
        node = self.path
        self.assertEqual(raw.create(node, b"e", zkwire.EPHEMERAL), (0, node))
        took = self.expire_and_watch(raw, node, close_socket=True)
        self.assertIsNotNone(took, "ephemeral outlived its session timeout")
        self.assertGreaterEqual(took, TIMEOUT_MS / 1000 * 0.8)

    def test_vanish_on_expiry_of_silent_connection(self):
        raw = self.raw(TIMEOUT_MS)
        node = self.path
        self.assertEqual(raw.create(node, b"e", zkwire.EPHEMERAL), (0, node))
        took = self.expire_and_watch(raw, node, close_socket=False)
        self.assertIsNotNone(took, "ephemeral outlived its session timeout")
        self.assertGreaterEqual(took, TIMEOUT_MS / 1000 * 0.8)
        # The server closes the expired session's connection.
        raw.sock.settimeout(5)
        try:
            self.assertEqual(raw.sock.recv(4096), b"")
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail("server kept the expired session's connection open")

    def test_pings_keep_session_alive(self):
        raw = self.raw(TIMEOUT_MS)
        node = self.path
        raw.create(node, b"", zkwire.EPHEMERAL)
        for _ in range(8):  # 2.4 s: beyond the timeout, but never silent
            time.sleep(0.3)
            self.assertEqual(raw.ping(), (zkwire.XID_PING, 0))
        self.assertEqual(raw.exists(node)[0], 0)
        other = self.kazoo()
        self.assertEqual(other.exists(node).ephemeralOwner, raw.session_id)
        self.assertEqual(raw.close_session(), 0)
        self.assertIsNone(other.exists(node))
