"""Session handshakes: timeout negotiation, resuming a session on a new
connection, and the reply to a resume the server must refuse (expired
session or wrong password): a ConnectResponse of timeout 0, session id 0 and
16 zero password bytes, then the connection closed."""
import socket

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

import zkwire
from harness import ServerTestCase, TcpProxy, close_quietly, wait_until

TICK_MS = 500
REFUSED = (0, 0, b"\0" * 16)


class SessionTest(ServerTestCase):
    tick_ms = TICK_MS

    def assert_closed(self, conn):
        conn.sock.settimeout(5)
        try:
            self.assertEqual(conn.sock.recv(4096), b"")
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail("server kept a refused connection open")
        finally:
            conn.close()

    def resume(self, sid, passwd, timeout_ms=2000):
        conn = zkwire.Conn(self.server.port)
        self.addCleanup(conn.close)
        return conn, conn.handshake(timeout_ms, sid, passwd)

    def test_timeout_negotiation(self):
        # Clamped to [2, 20] ticks, as zoo.cfg's min/maxSessionTimeout default.
        for asked, granted in ((100, 2 * TICK_MS), (2000, 2000),
                               (1000000, 20 * TICK_MS)):
            c = zkwire.Conn(self.server.port)
            t, sid, pw = c.handshake(asked)
            self.assertEqual(t, granted, "asked %d ms" % asked)
            self.assertNotEqual(sid, 0)
            self.assertEqual(len(pw), 16)
            self.assertEqual(c.close_session(), 0)
            c.close()

    def test_connect_response_without_read_only_flag(self):
        # A client that sends no readOnly byte gets none back (36 bytes).
        c = zkwire.Conn(self.server.port)
        self.addCleanup(c.close)
        c.send_frame(zkwire.connect_request(2000)[:-1])
        self.assertEqual(len(c.recv_frame()), 36)
        d = zkwire.Conn(self.server.port)
        self.addCleanup(d.close)
        d.send_frame(zkwire.connect_request(2000))
        self.assertEqual(len(d.recv_frame()), 37)

    def test_distinct_session_ids(self):
        ids = set()
        for _ in range(5):
            c = self.raw(2000)
            ids.add(c.session_id)
        self.assertEqual(len(ids), 5)

    def test_raw_resume_keeps_session_and_ephemeral(self):
        a = zkwire.session(self.server.port, 4000)
        sid, pw = a.session_id, a.passwd
        self.assertEqual(a.create(self.path, b"mine", zkwire.EPHEMERAL)[0], 0)
        a.close()  # the connection drops; the session lives on
        b, (t, sid2, pw2) = self.resume(sid, pw, 4000)
        self.assertEqual((t, sid2, pw2), (4000, sid, pw))
        err, st = b.exists(self.path)
        self.assertEqual((err, st["ephemeralOwner"]), (0, sid))
        err, (data, _) = b.get(self.path)
        self.assertEqual(data, b"mine")
        self.assertEqual(b.close_session(), 0)
        self.assertIsNone(self.kazoo().exists(self.path))

    def test_resume_with_wrong_password_is_refused(self):
        a = self.raw(4000)
        a.create(self.path, b"", zkwire.EPHEMERAL)
        wrong = bytes(x ^ 0xFF for x in a.passwd)
        c, reply = self.resume(a.session_id, wrong)
        self.assertEqual(reply, REFUSED)
        self.assert_closed(c)
        # The session itself is unhurt. (ZooKeeper also drops the owner's
        # connection on any resume attempt; the owner may reconnect.)
        b, reply = self.resume(a.session_id, a.passwd, 4000)
        self.assertEqual(reply, (4000, a.session_id, a.passwd))
        self.assertEqual(b.exists(self.path)[1]["ephemeralOwner"], a.session_id)

    def test_resume_after_expiry_is_refused(self):
        a = zkwire.session(self.server.port, 2 * TICK_MS)
        sid, pw = a.session_id, a.passwd
        a.create(self.path, b"", zkwire.EPHEMERAL)
        a.close()
        watcher = self.kazoo()
        self.assertTrue(wait_until(lambda: watcher.exists(self.path) is None, 6),
                        "session did not expire")
        c, reply = self.resume(sid, pw)
        self.assertEqual(reply, REFUSED)
        self.assert_closed(c)

    def test_kazoo_resumes_raw_session(self):
        a = zkwire.session(self.server.port, 4000)
        a.create(self.path, b"", zkwire.EPHEMERAL)
        a.close()
        zk = self.kazoo(client_id=(a.session_id, a.passwd))
        self.assertEqual(zk.client_id[0], a.session_id)
        self.assertEqual(zk.exists(self.path).ephemeralOwner, a.session_id)
        zk.stop()  # closes the resumed session: its ephemeral goes
        self.assertIsNone(self.kazoo().exists(self.path))

    def test_kazoo_given_expired_session_starts_a_new_one(self):
        a = zkwire.session(self.server.port, 2 * TICK_MS)
        a.create(self.path, b"", zkwire.EPHEMERAL)
        a.close()
        other = self.kazoo()
        self.assertTrue(wait_until(lambda: other.exists(self.path) is None, 6))
        zk = self.kazoo(client_id=(a.session_id, a.passwd))
        self.assertNotEqual(zk.client_id[0], a.session_id)
        self.assertEqual(zk.get_children("/"), other.get_children("/"))

    def test_kazoo_sees_session_expired_across_partition(self):
        proxy = TcpProxy(self.server.port)
        self.addCleanup(proxy.close)
        states = []
        zk = KazooClient(hosts=proxy.hosts, timeout=2 * TICK_MS / 1000)
        zk.add_listener(states.append)
        self.addCleanup(close_quietly, zk)
        zk.start(timeout=15)
        sid = zk.client_id[0]
        zk.create(self.path, b"", ephemeral=True)
        other = self.kazoo()
        proxy.block()
        self.assertTrue(wait_until(lambda: other.exists(self.path) is None, 6),
                        "session outlived the partition")
        proxy.unblock()
        # Back through the proxy, kazoo's resume is refused: LOST, then a
        # fresh session.
        self.assertTrue(wait_until(lambda: KazooState.LOST in states, 10), states)
        self.assertTrue(wait_until(lambda: zk.state == KazooState.CONNECTED, 10))
        self.assertNotEqual(zk.client_id[0], sid)
        self.assertIsNone(zk.exists(self.path))

    def test_kazoo_reconnects_after_connection_drop(self):
        proxy = TcpProxy(self.server.port)
        self.addCleanup(proxy.close)
        states = []
        zk = KazooClient(hosts=proxy.hosts, timeout=4)
        zk.add_listener(states.append)
        self.addCleanup(close_quietly, zk)
        zk.start(timeout=15)
        sid = zk.client_id[0]
        zk.create(self.path, b"eph", ephemeral=True)
        proxy.cut()
        self.assertTrue(wait_until(lambda: KazooState.SUSPENDED in states, 10))
        self.assertTrue(wait_until(lambda: zk.state == KazooState.CONNECTED, 10))
        self.assertNotIn(KazooState.LOST, states)
        self.assertEqual(zk.client_id[0], sid)
        other = self.kazoo()
        self.assertEqual(other.exists(self.path).ephemeralOwner, sid)
        self.assertEqual(zk.get(self.path)[0], b"eph")
