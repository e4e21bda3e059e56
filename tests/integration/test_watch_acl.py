"""CVE-2024-23944: a watch tells a session of a change only if the session
may READ the node the event is about (the changed node as the change left
it, the deleted node as it was, the parent for NodeChildrenChanged), as
ZooKeeper does since 3.8.4 and 3.9.2. Before the fix, a persistent
recursive watch on a readable ancestor told every path created, changed or
deleted below it, readable or not.

Debian's ZooKeeper 3.8.0 carries the fix (3.8.0-11+deb12u2), so these
tests run unchanged on it (RK_TARGET=zookeeper), which checks them."""
import base64
import hashlib
import struct

import zkwire
from harness import ServerTestCase

OP_CHECK_WATCHES, OP_ADD_WATCH, OP_AUTH = 17, 106, 100
XID_AUTH = -4
RECURSIVE = 1
WT_DATA = 2
ZNOWATCHER = -121
CREATED, DELETED, DATA_CHANGED, CHILDREN_CHANGED = 1, 2, 3, 4
SYNC_CONNECTED = 3
READ, ALL = 1, 31


def digest_id(user, password):
    h = hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()
    return "%s:%s" % (user, base64.b64encode(h).decode())


ALICE_ONLY = [(ALL, "digest", digest_id("alice", "secret"))]


class Session:
    """A zkwire session with the few requests these tests need."""

    def __init__(self, test, user=None):
        self.c = test.raw()
        if user:
            self.c.send_frame(struct.pack(">iii", XID_AUTH, OP_AUTH, 0)
                              + zkwire.put_string("digest")
                              + zkwire.put_buffer(("%s:secret" % user).encode()))
            xid, _, err, _ = self.c.read_reply()
            test.assertEqual((xid, err), (XID_AUTH, 0))

    def add_recursive_watch(self, path):
        err, _ = self.c.call(OP_ADD_WATCH, zkwire.put_string(path) + struct.pack(">i", RECURSIVE))
        assert err == 0, err

    def check_data_watch(self, path):
        err, _ = self.c.call(OP_CHECK_WATCHES, zkwire.put_string(path) + struct.pack(">i", WT_DATA))
        return err

    def events(self):
        """Every notification up to now: a read after the writes comes back
        after the events they caused."""
        self.c.exists("/")
        return [(t, p) for t, _, p in self.c.events]


class RecursiveWatchAclTest(ServerTestCase):
    def test_recursive_watch_hears_only_of_readable_nodes(self):
        base = self.path
        alice = Session(self, "alice")
        nobody = Session(self)
        peer = Session(self, "alice")  # may read everything alice makes
        self.assertEqual(alice.c.create(base)[0], 0)
        nobody.add_recursive_watch(base)
        peer.add_recursive_watch(base)

        secret, public = base + "/secret", base + "/public"
        self.assertEqual(alice.c.create(secret, b"s", acl=ALICE_ONLY)[0], 0)
        self.assertEqual(alice.c.call(zkwire.OP_SET_DATA, zkwire.set_body(secret, b"t"))[0], 0)
        self.assertEqual(alice.c.create(public, b"p")[0], 0)
        # A readable child of an unreadable node is told: its path is no secret.
        below = secret + "/readable"
        self.assertEqual(alice.c.create(below, b"r")[0], 0)
        self.assertEqual(alice.c.call(zkwire.OP_DELETE, zkwire.delete_body(below))[0], 0)
        self.assertEqual(alice.c.call(zkwire.OP_DELETE, zkwire.delete_body(secret))[0], 0)
        self.assertEqual(alice.c.call(zkwire.OP_SET_DATA, zkwire.set_body(public, b"q"))[0], 0)

        everything = [(CREATED, secret), (DATA_CHANGED, secret), (CREATED, public),
                      (CREATED, below), (DELETED, below), (DELETED, secret),
                      (DATA_CHANGED, public)]
        self.assertEqual(peer.events(), everything)
        self.assertEqual(nobody.events(), [e for e in everything if e[1] != secret])

    def test_deletion_of_a_node_the_watcher_could_read_is_told(self):
        # An ACL change that takes READ away hides the later changes; the
        # node's deletion is judged by the ACL it had when deleted.
        base = self.path
        alice = Session(self, "alice")
        nobody = Session(self)
        self.assertEqual(alice.c.create(base)[0], 0)
        node = base + "/n"
        self.assertEqual(alice.c.create(node, b"x")[0], 0)
        nobody.add_recursive_watch(base)
        self.assertEqual(alice.c.call(zkwire.OP_SET_DATA, zkwire.set_body(node, b"y"))[0], 0)
        set_acl = zkwire.put_string(node) + zkwire.put_acl(ALICE_ONLY) + struct.pack(">i", -1)
        self.assertEqual(alice.c.call(7, set_acl)[0], 0)
        self.assertEqual(alice.c.call(zkwire.OP_SET_DATA, zkwire.set_body(node, b"z"))[0], 0)
        self.assertEqual(alice.c.call(zkwire.OP_DELETE, zkwire.delete_body(node))[0], 0)
        other = base + "/m"
        self.assertEqual(alice.c.create(other, b"x")[0], 0)
        self.assertEqual(alice.c.call(zkwire.OP_DELETE, zkwire.delete_body(other))[0], 0)
        self.assertEqual(nobody.events(),
                         [(DATA_CHANGED, node), (CREATED, other), (DELETED, other)])

    def test_one_shot_watches_are_filtered_too_and_used_up(self):
        base = self.path
        alice = Session(self, "alice")
        nobody = Session(self)
        self.assertEqual(alice.c.create(base)[0], 0)
        node, child = base + "/later", base + "/later/c"
        # exists() needs no READ: the watch is set on a node not there yet.
        self.assertEqual(nobody.c.exists(node, watch=True)[0], zkwire.ZNONODE)
        self.assertEqual(alice.c.create(node, b"x", acl=ALICE_ONLY)[0], 0)
        self.assertEqual(nobody.events(), [])
        self.assertEqual(nobody.check_data_watch(node), ZNOWATCHER)
        # A child watch is judged by the parent's ACL.
        err, _ = nobody.c.call(zkwire.OP_GET_CHILDREN2, zkwire.put_string(base) + b"\1")
        self.assertEqual(err, 0)
        open_child = base + "/open"
        self.assertEqual(alice.c.create(open_child)[0], 0)
        self.assertEqual(nobody.events(), [(CHILDREN_CHANGED, base)])
        # And the creator, who may read, hears of its own child.
        self.assertEqual(alice.c.exists(child, watch=True)[0], zkwire.ZNONODE)
        self.assertEqual(alice.c.create(child, b"c", acl=ALICE_ONLY)[0], 0)
        self.assertEqual(alice.events(), [(CREATED, child)])
