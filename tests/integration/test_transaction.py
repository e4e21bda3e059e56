"""multi (kazoo's client.transaction()): all ops commit at one zxid, or none
does. A failed multi reports, per op, RolledBackError before the failing
op, the failing op's own error, and RuntimeInconsistency after it."""
from kazoo.exceptions import (BadVersionError, NodeExistsError, NoNodeError,
                              RolledBackError, RuntimeInconsistency)
from kazoo.protocol.states import ZnodeStat

from harness import ServerTestCase


class TransactionTest(ServerTestCase):
    def test_commit_several_ops(self):
        zk = self.kazoo()
        p = self.path
        zk.create(p, b"parent")
        zk.create(p + "/gone", b"")
        t = zk.transaction()
        t.create(p + "/a", b"1")
        t.create(p + "/s-", b"seq", sequence=True)
        t.set_data(p, b"changed", version=0)
        t.check(p + "/a", 0)
        t.delete(p + "/gone", version=0)
        res = t.commit()
        self.assertEqual(res[:2], [p + "/a", p + "/s-0000000002"])
        self.assertIsInstance(res[2], ZnodeStat)
        self.assertEqual((res[2].version, res[2].dataLength), (1, 7))
        self.assertEqual(res[3:], [True, True])

        # One txn: every change carries the same zxid.
        a = zk.exists(p + "/a")
        parent = zk.exists(p)
        self.assertEqual(a.czxid, res[2].mzxid)
        self.assertEqual(parent.mzxid, a.czxid)
        self.assertEqual(parent.pzxid, a.czxid)
        self.assertEqual(zk.get(p)[0], b"changed")
        self.assertEqual(sorted(zk.get_children(p)), ["a", "s-0000000002"])

    def test_failed_check_changes_nothing(self):
        zk = self.kazoo()
        p = self.path
        zk.create(p, b"")
        zk.create(p + "/a", b"1")
        before = zk.exists(p)
        t = zk.transaction()
        t.create(p + "/c", b"")
        t.set_data(p + "/a", b"new")
        t.check(p + "/a", 5)  # version is 0: the whole multi fails
        t.delete(p + "/a")
        res = t.commit()
        self.assertEqual([type(r) for r in res],
                         [RolledBackError, RolledBackError, BadVersionError,
                          RuntimeInconsistency])
        self.assertIsNone(zk.exists(p + "/c"))
        data, st = zk.get(p + "/a")
        self.assertEqual((data, st.version), (b"1", 0))
        after = zk.exists(p)
        self.assertEqual((after.cversion, after.pzxid, after.numChildren),
                         (before.cversion, before.pzxid, before.numChildren))

    def test_failing_op_reports_its_own_error(self):
        zk = self.kazoo()
        p = self.path
        zk.create(p, b"")
        t = zk.transaction()
        t.create(p + "/x", b"")
        t.create(p + "/x", b"")  # sees the first create: NodeExists
        res = t.commit()
        self.assertEqual([type(r) for r in res], [RolledBackError, NodeExistsError])
        self.assertIsNone(zk.exists(p + "/x"))

        t = zk.transaction()
        t.delete(p + "/missing")
        t.create(p + "/y", b"")
        res = t.commit()
        self.assertEqual([type(r) for r in res], [NoNodeError, RuntimeInconsistency])
        self.assertEqual(zk.get_children(p), [])

    def test_ops_see_earlier_ops_of_same_multi(self):
        zk = self.kazoo()
        p = self.path
        t = zk.transaction()
        t.create(p, b"")
        t.create(p + "/child", b"v0")
        t.set_data(p + "/child", b"v1", version=0)
        t.check(p + "/child", 1)
        t.delete(p + "/child", version=1)
        res = t.commit()
        self.assertEqual(res[:2], [p, p + "/child"])
        self.assertEqual(res[2].version, 1)
        self.assertEqual(res[3:], [True, True])
        st = zk.exists(p)
        self.assertEqual((st.numChildren, st.cversion), (0, 2))

    def test_empty_transaction(self):
        zk = self.kazoo()
        self.assertEqual(zk.transaction().commit(), [])
