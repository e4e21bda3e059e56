"""A hand-written ZooKeeper wire client, for what kazoo hides on purpose:
raw session handshakes (resume, expiry, wrong password), pipelined load, and
malformed frames. Blocking sockets, one request stream per object.

Frame: int32 big-endian length, then the body. Bodies are jute records:
int/long big-endian, bool one byte, buffer/string = int32 length (-1 = null)
then the bytes, vector = int32 count then the items.
"""
import socket
import struct

# Opcodes and error codes of the 3.x protocol (zookeeper.jute / KeeperException).
OP_CREATE, OP_DELETE, OP_EXISTS, OP_GET_DATA, OP_SET_DATA = 1, 2, 3, 4, 5
OP_GET_CHILDREN2, OP_PING, OP_CLOSE = 12, 11, -11
XID_WATCH, XID_PING = -1, -2
ZOK, ZNONODE, ZNODEEXISTS, ZBADVERSION, ZNOTEMPTY = 0, -101, -110, -103, -111
EPHEMERAL, SEQUENTIAL = 1, 2
OPEN_ACL_UNSAFE = [(31, "world", "anyone")]

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion",
               "aversion", "ephemeralOwner", "dataLength", "numChildren",
               "pzxid")
_STAT = struct.Struct(">qqqqiiiqiiq")


def put_buffer(b):
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


def put_string(s):
    return put_buffer(s.encode())


def put_acl(acl):
    out = struct.pack(">i", len(acl))
    for perms, scheme, ident in acl:
        out += struct.pack(">i", perms) + put_string(scheme) + put_string(ident)
    return out


class Reader:
    """Cursor over one reply body."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("short record")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def long(self):
        return struct.unpack(">q", self.take(8))[0]

    def bool(self):
        return self.take(1) != b"\0"

    def buffer(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode()

    def stat(self):
        return dict(zip(STAT_FIELDS, _STAT.unpack(self.take(_STAT.size))))

    def remaining(self):
        return len(self.data) - self.pos


def connect_request(timeout_ms, session_id=0, passwd=b"\0" * 16, zxid=0):
    """ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId,
    passwd, readOnly."""
    return (struct.pack(">iqiq", 0, zxid, timeout_ms, session_id)
            + put_buffer(passwd) + b"\0")


class Conn:
    """One TCP connection; handshake() turns it into a session."""

    def __init__(self, port, host="127.0.0.1", io_timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=io_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.xid = 0
        self.inbuf = bytearray()  # bytes received but not yet parsed
        self.events = []  # watch notifications seen while reading replies
        self.session_id, self.passwd, self.timeout_ms = 0, b"", 0

    def close(self):
        self.sock.close()

    def send_frame(self, body):
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def recv_exact(self, n):
        while len(self.inbuf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.inbuf)))
            if not chunk:
                raise EOFError("connection closed by server")
            self.inbuf += chunk
        out = bytes(self.inbuf[:n])
        del self.inbuf[:n]
        return out

    def recv_frame(self):
        (n,) = struct.unpack(">i", self.recv_exact(4))
        if n < 0 or n > 16 << 20:
            raise ValueError("bad frame length %d" % n)
        return self.recv_exact(n)

    def handshake(self, timeout_ms=10000, session_id=0, passwd=b"\0" * 16):
        """Sends a ConnectRequest; returns (timeout_ms, session_id, passwd)
        from the ConnectResponse. A server refusing a resume answers
        timeout 0 and session id 0."""
        self.send_frame(connect_request(timeout_ms, session_id, passwd))
        r = Reader(self.recv_frame())
        r.int()  # protocolVersion
        t, sid, pw = r.int(), r.long(), r.buffer()
        if t > 0:
            self.timeout_ms, self.session_id, self.passwd = t, sid, pw
        return t, sid, pw

    def send_request(self, op, body=b""):
        self.xid += 1
        self.send_frame(struct.pack(">ii", self.xid, op) + body)
        return self.xid

    def read_reply(self):
        """Next non-notification reply: (xid, zxid, err, Reader)."""
        while True:
            r = Reader(self.recv_frame())
            xid, zxid, err = r.int(), r.long(), r.int()
            if xid == XID_WATCH:
                self.events.append((r.int(), r.int(), r.string()))
                continue
            return xid, zxid, err, r

    def call(self, op, body=b""):
        xid = self.send_request(op, body)
        rxid, zxid, err, r = self.read_reply()
        if rxid != xid:
            raise AssertionError("reply xid %d for request %d" % (rxid, xid))
        return err, r

    # Single operations; each returns (err, result-or-None).
    def create(self, path, data=b"", flags=0, acl=OPEN_ACL_UNSAFE):
        err, r = self.call(OP_CREATE, create_body(path, data, flags, acl))
        return err, (r.string() if err == ZOK else None)

    def get(self, path, watch=False):
        err, r = self.call(OP_GET_DATA, put_string(path) + bytes([watch]))
        return err, ((r.buffer(), r.stat()) if err == ZOK else None)

    def exists(self, path, watch=False):
        err, r = self.call(OP_EXISTS, put_string(path) + bytes([watch]))
        return err, (r.stat() if err == ZOK else None)

    def ping(self):
        self.send_frame(struct.pack(">ii", XID_PING, OP_PING))
        rxid, _, err, _ = self.read_reply()
        return rxid, err

    def close_session(self):
        err, _ = self.call(OP_CLOSE)
        return err


def create_body(path, data, flags=0, acl=OPEN_ACL_UNSAFE):
    return put_string(path) + put_buffer(data) + put_acl(acl) + struct.pack(">i", flags)


def delete_body(path, version=-1):
    return put_string(path) + struct.pack(">i", version)


def set_body(path, data, version=-1):
    return put_string(path) + put_buffer(data) + struct.pack(">i", version)


def get_body(path, watch=False):
    return put_string(path) + bytes([watch])


def session(port, timeout_ms=10000):
    """A connected raw session."""
    c = Conn(port)
    t, _, _ = c.handshake(timeout_ms)
    if t <= 0:
        c.close()
        raise AssertionError("server refused a new session")
    return c
