"""ACLs: digest auth (the id is user:base64(sha1(user:password))), the
world and ip schemes, per-permission checks, getACL/setACL with aversion."""
import base64
import hashlib

from kazoo.exceptions import BadVersionError, InvalidACLError, NoAuthError
from kazoo.security import (ACL, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, Id,
                            Permissions, make_acl, make_digest_acl)

from harness import ServerTestCase


def digest_id(user, password):
    raw = hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()
    return "%s:%s" % (user, base64.b64encode(raw).decode())


class AclTest(ServerTestCase):
    def test_digest_acl(self):
        owner, stranger = self.kazoo(), self.kazoo()
        p = self.path
        acl = [make_digest_acl("alice", "secret", all=True)]
        owner.create(p, b"private", acl=acl)
        # exists needs no permission; read, write and list do.
        self.assertIsNotNone(stranger.exists(p))
        for op in (lambda: stranger.get(p), lambda: stranger.set(p, b"x"),
                   lambda: stranger.get_children(p),
                   lambda: stranger.get_acls(p),  # READ or ADMIN since 3.6
                   lambda: stranger.create(p + "/c")):
            with self.assertRaises(NoAuthError):
                op()
        # Creating the node gave its creator no rights: it has no auth either.
        with self.assertRaises(NoAuthError):
            owner.get(p)

        liar = self.kazoo()
        liar.add_auth("digest", "alice:wrong")  # accepted; matches nothing
        with self.assertRaises(NoAuthError):
            liar.get(p)

        stranger.add_auth("digest", "alice:secret")
        self.assertEqual(stranger.get(p)[0], b"private")
        self.assertEqual(stranger.set(p, b"mine").version, 1)
        stranger.create(p + "/c")
        self.assertEqual(stranger.get_children(p), ["c"])
        acls, _ = stranger.get_acls(p)
        self.assertEqual(acls, [ACL(Permissions.ALL, Id("digest", digest_id("alice", "secret")))])

    def test_auth_scheme_becomes_digest_of_caller(self):
        zk = self.kazoo()
        with self.assertRaises(InvalidACLError):  # no auth: no creator id
            zk.create(self.path, acl=CREATOR_ALL_ACL)
        zk.add_auth("digest", "bob:pw")
        zk.create(self.path, b"", acl=CREATOR_ALL_ACL)
        acls, _ = zk.get_acls(self.path)
        self.assertEqual(acls, [ACL(Permissions.ALL, Id("digest", digest_id("bob", "pw")))])
        with self.assertRaises(NoAuthError):
            self.kazoo().get(self.path)

    def test_world_read_only(self):
        admin, reader = self.kazoo(), self.kazoo()
        p = self.path
        admin.create(p, b"ro", acl=[make_acl("world", "anyone", read=True)])
        self.assertEqual(reader.get(p)[0], b"ro")
        with self.assertRaises(NoAuthError):
            reader.set(p, b"x")
        with self.assertRaises(NoAuthError):
            reader.create(p + "/child")
        with self.assertRaises(NoAuthError):  # setACL needs ADMIN
            reader.set_acls(p, OPEN_ACL_UNSAFE)
        self.assertEqual(admin.get(p), (b"ro", admin.exists(p)))
        # Deleting it needs DELETE on the parent (/ is open), not on itself.
        reader.delete(p)
        self.assertIsNone(admin.exists(p))

    def test_delete_needs_delete_on_parent(self):
        zk = self.kazoo()
        p = self.path
        zk.create(p, acl=[make_acl("world", "anyone", read=True, create=True)])
        zk.create(p + "/c")
        with self.assertRaises(NoAuthError):
            zk.delete(p + "/c")
        self.assertEqual(zk.get_children(p), ["c"])

    def test_ip_scheme(self):
        zk = self.kazoo()
        zk.create(self.path + "/local", b"l", makepath=True,
                  acl=[make_acl("ip", "127.0.0.1", all=True)])
        zk.create(self.path + "/remote", b"r",
                  acl=[make_acl("ip", "10.1.2.3", all=True)])
        self.assertEqual(zk.get(self.path + "/local")[0], b"l")
        with self.assertRaises(NoAuthError):
            zk.get(self.path + "/remote")

    def test_get_and_set_acl_with_version(self):
        zk = self.kazoo()
        p = self.path
        zk.create(p, b"")
        acls, st = zk.get_acls(p)
        self.assertEqual(acls, OPEN_ACL_UNSAFE)
        self.assertEqual(st.aversion, 0)
        new = [make_acl("world", "anyone", read=True, write=True, admin=True)]
        with self.assertRaises(BadVersionError):
            zk.set_acls(p, new, version=5)
        st = zk.set_acls(p, new, version=0)
        self.assertEqual((st.aversion, st.version), (1, 0))
        acls, st2 = zk.get_acls(p)
        self.assertEqual(acls, new)
        self.assertEqual(st2.aversion, 1)
        self.assertEqual(st2.mzxid, st.mzxid)  # setACL is not a data change
        with self.assertRaises(NoAuthError):
            zk.create(p + "/c")  # CREATE was dropped
        self.assertEqual(zk.set_acls(p, OPEN_ACL_UNSAFE).aversion, 2)  # -1: any
        zk.create(p + "/c")
