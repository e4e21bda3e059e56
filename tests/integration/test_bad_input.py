"""Bad input costs the sender its connection, never the server: oversized,
negative and garbage frames get the connection closed while other clients
keep working. What ZooKeeper 3.8 does, and so what is asserted:
  - frame length >= 1 MiB (jute.maxbuffer 0xfffff) or < 0: closed
  - a first frame that is no ConnectRequest: closed, no reply
  - a request frame too short for its header: closed
  - an unknown opcode: reply err ZUNIMPLEMENTED (-6), then closed
  - a known opcode with a truncated body: reply ZMARSHALLINGERROR (-5) and
    the session goes on (closing is accepted too)."""
import socket
import struct

import zkwire
from harness import ServerTestCase

ZUNIMPLEMENTED, ZMARSHALLINGERROR = -6, -5
MIB = 1 << 20


class BadInputTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bystander = zkwire.session(cls.server.port, 30000)

    @classmethod
    def tearDownClass(cls):
        cls.bystander.close()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.zk = self.kazoo()
        self.zk.create(self.path, b"0")
        self.writes = 0

    def assert_others_fine(self):
        self.writes += 1
        st = self.zk.set(self.path, b"%d" % self.writes)
        self.assertEqual(st.version, self.writes)
        self.assertEqual(self.zk.get(self.path)[0], b"%d" % self.writes)
        self.assertEqual(self.bystander.ping(), (zkwire.XID_PING, 0))

    def assert_closed(self, conn, timeout_s=5):
        """The server closes conn without sending anything first."""
        conn.sock.settimeout(timeout_s)
        try:
            self.assertEqual(conn.sock.recv(4096), b"", "server replied to junk")
        except (ConnectionResetError, BrokenPipeError):
            pass
        except socket.timeout:
            self.fail("server kept the connection open")
        finally:
            conn.close()

    def send_raw(self, conn, data):
        try:
            conn.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed already: fine

    def test_oversized_first_frame(self):
        for n in (MIB + 1, 16 * MIB, 0x7FFFFFFF):
            c = zkwire.Conn(self.server.port)
            self.send_raw(c, struct.pack(">i", n) + b"\0" * 1000)
            self.assert_closed(c)
            self.assert_others_fine()

    def test_oversized_frame_in_session(self):
        c = zkwire.session(self.server.port)
        self.send_raw(c, struct.pack(">i", MIB + 1) + b"\0" * 1000)
        self.assert_closed(c)
        self.assert_others_fine()

    def test_negative_length(self):
        for handshake in (False, True):
            c = zkwire.session(self.server.port) if handshake else zkwire.Conn(self.server.port)
            self.send_raw(c, struct.pack(">i", -16) + b"\0" * 16)
            self.assert_closed(c)
            self.assert_others_fine()

    def test_garbage_connect_frame(self):
        for junk in (b"\x01" * 10, b"\xff\xfe\xfd", bytes(range(200, 256)) * 3):
            c = zkwire.Conn(self.server.port)
            c.send_frame(junk)
            self.assert_closed(c)
            self.assert_others_fine()

    def test_frame_too_short_for_header(self):
        c = zkwire.session(self.server.port)
        c.send_frame(b"\x01\x02")
        self.assert_closed(c)
        self.assert_others_fine()

    def test_unknown_opcode(self):
        c = zkwire.session(self.server.port)
        c.send_frame(struct.pack(">ii", 7, 9999))
        xid, _, err, _ = c.read_reply()
        self.assertEqual((xid, err), (7, ZUNIMPLEMENTED))
        if self.server.target == "zookeeper":
            # ZooKeeper 3.8 also drops the connection; Ringkeeper keeps it
            # (the brief: unknown opcodes answer ZUNIMPLEMENTED, never a
            # dropped connection).
            self.assert_closed(c)
        else:
            self.assertEqual(c.ping()[1], 0)
            self.assertEqual(c.exists("/zookeeper")[0], 0)
        self.assert_others_fine()

    def test_truncated_request_body(self):
        c = zkwire.session(self.server.port)
        c.send_frame(struct.pack(">ii", 7, zkwire.OP_GET_DATA) + struct.pack(">i", 0x7FFFFFFF))
        try:
            xid, _, err, _ = c.read_reply()
        except (EOFError, ConnectionResetError):
            pass  # closing the connection is fine too
        else:
            self.assertEqual((xid, err), (7, ZMARSHALLINGERROR))
            self.assertEqual(c.ping(), (zkwire.XID_PING, 0))
        c.close()
        self.assert_others_fine()

    def test_stalled_half_frame_blocks_no_one(self):
        c = zkwire.session(self.server.port)
        self.addCleanup(c.close)
        self.send_raw(c, struct.pack(">i", MIB // 2) + b"\0" * 100)
        for _ in range(3):
            self.assert_others_fine()

    def test_large_legal_frame(self):
        data = bytes(range(256)) * 3900  # 998,400 bytes: under the limit
        self.zk.create(self.path + "/big", data)
        got, st = self.zk.get(self.path + "/big")
        self.assertEqual((got, st.dataLength), (data, len(data)))
        self.assert_others_fine()
