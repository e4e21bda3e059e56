"""One-shot watches: each fires once, with the right type and path, and then
is gone; kazoo's DataWatch/ChildrenWatch re-arm and see every change once.
A client sees a watch event before any reply that shows the new state."""
import threading
import time

from kazoo.protocol.states import EventType

import zkwire
from harness import ServerTestCase, wait_until

# WatcherEvent codes on the wire.
NODE_CREATED, NODE_DELETED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED = 1, 2, 3, 4
SYNC_CONNECTED = 3
QUIET_S = 0.3  # how long a fired watch must stay silent


class Recorder:
    def __init__(self):
        self.events = []
        self.fired = threading.Event()

    def __call__(self, event):
        self.events.append((event.type, event.path))
        self.fired.set()


class OneShotWatchTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.zk = self.kazoo()      # sets the watches
        self.other = self.kazoo()   # makes the changes

    def assert_fired_once(self, rec, etype, path, then=()):
        """rec fired exactly (etype, path), and stays silent while `then`
        makes further changes that would have fired a live watch."""
        self.assertTrue(rec.fired.wait(5), "watch did not fire")
        for change in then:
            change()
        self.zk.sync("/")
        time.sleep(QUIET_S)
        self.assertEqual(rec.events, [(etype, path)])

    def test_exists_watch_sees_node_created(self):
        p, rec = self.path, Recorder()
        self.assertIsNone(self.zk.exists(p, watch=rec))
        self.other.create(p, b"a")
        self.assert_fired_once(rec, EventType.CREATED, p,
                               then=[lambda: self.other.set(p, b"b"),
                                     lambda: self.other.delete(p)])

    def test_exists_watch_on_existing_node_sees_data_change(self):
        p, rec = self.path, Recorder()
        self.other.create(p, b"a")
        self.assertIsNotNone(self.zk.exists(p, watch=rec))
        self.other.set(p, b"b")
        self.assert_fired_once(rec, EventType.CHANGED, p,
                               then=[lambda: self.other.set(p, b"c")])

    def test_get_watch_sees_data_changed(self):
        p, rec = self.path, Recorder()
        self.other.create(p, b"a")
        self.zk.get(p, watch=rec)
        self.other.set(p, b"b")
        self.assert_fired_once(rec, EventType.CHANGED, p,
                               then=[lambda: self.other.set(p, b"c"),
                                     lambda: self.other.delete(p)])

    def test_get_watch_sees_node_deleted(self):
        p, rec = self.path, Recorder()
        self.other.create(p, b"a")
        self.zk.get(p, watch=rec)
        self.other.delete(p)
        self.assert_fired_once(rec, EventType.DELETED, p,
                               then=[lambda: self.other.create(p)])

    def test_children_watch_sees_children_changed(self):
        p, rec = self.path, Recorder()
        self.other.create(p)
        self.assertEqual(self.zk.get_children(p, watch=rec), [])
        self.other.create(p + "/c1")
        self.assert_fired_once(rec, EventType.CHILD, p,
                               then=[lambda: self.other.create(p + "/c2"),
                                     lambda: self.other.delete(p + "/c1")])

    def test_children_watch_ignores_data_and_sees_delete(self):
        p, rec = self.path, Recorder()
        self.other.create(p)
        self.zk.get_children(p, watch=rec)
        self.other.set(p, b"data")           # not a child change
        self.other.create(p + "/c/d", makepath=True)  # grandchild: one event
        self.assert_fired_once(rec, EventType.CHILD, p)
        self.other.delete(p + "/c", recursive=True)
        rec2 = Recorder()
        self.zk.get_children(p, watch=rec2)
        self.other.delete(p)  # the watched node itself goes
        self.assert_fired_once(rec2, EventType.DELETED, p)

    def test_data_watch_ignores_children(self):
        p, rec = self.path, Recorder()
        self.other.create(p)
        self.zk.get(p, watch=rec)
        self.other.create(p + "/kid")
        self.zk.sync("/")
        time.sleep(QUIET_S)
        self.assertEqual(rec.events, [])
        self.other.set(p, b"x")
        self.assert_fired_once(rec, EventType.CHANGED, p)

    def test_one_change_fires_every_watcher_once(self):
        p = self.path
        self.other.create(p, b"a")
        recs = [Recorder() for _ in range(3)]
        self.zk.get(p, watch=recs[0])
        self.zk.exists(p, watch=recs[1])
        third = self.kazoo()
        third.get(p, watch=recs[2])
        self.other.set(p, b"b")
        for rec in recs:
            self.assert_fired_once(rec, EventType.CHANGED, p)

    def test_multi_fires_each_watch_once(self):
        p = self.path
        self.other.create(p)
        data_rec, child_rec = Recorder(), Recorder()
        self.zk.get(p, watch=data_rec)
        self.zk.get_children(p, watch=child_rec)
        t = self.other.transaction()
        t.set_data(p, b"1")
        t.create(p + "/a")
        t.create(p + "/b")
        t.set_data(p, b"2")
        t.commit()
        self.assert_fired_once(data_rec, EventType.CHANGED, p)
        self.assert_fired_once(child_rec, EventType.CHILD, p)


class RecipeWatchTest(ServerTestCase):
    def test_data_watch_sees_each_change_once(self):
        zk, other = self.kazoo(), self.kazoo()
        p, calls = self.path, []
        zk.DataWatch(p, lambda data, stat, event: calls.append(
            (data, stat and stat.version, event and event.type)))
        self.assertTrue(wait_until(lambda: calls, 5))
        other.create(p, b"v0")
        self.assertTrue(wait_until(lambda: len(calls) >= 2, 5))
        other.set(p, b"v1")
        self.assertTrue(wait_until(lambda: len(calls) >= 3, 5))
        other.delete(p)
        self.assertTrue(wait_until(lambda: len(calls) >= 4, 5))
        time.sleep(QUIET_S)
        self.assertEqual(calls, [(None, None, None),
                                 (b"v0", 0, EventType.CREATED),
                                 (b"v1", 1, EventType.CHANGED),
                                 (None, None, EventType.DELETED)])

    def test_children_watch_sees_each_change_once(self):
        zk, other = self.kazoo(), self.kazoo()
        p, calls = self.path, []
        other.create(p)
        zk.ChildrenWatch(p, lambda children: calls.append(sorted(children)))
        self.assertTrue(wait_until(lambda: calls, 5))
        other.create(p + "/a")
        self.assertTrue(wait_until(lambda: len(calls) >= 2, 5))
        other.create(p + "/b")
        self.assertTrue(wait_until(lambda: len(calls) >= 3, 5))
        other.delete(p + "/a")
        self.assertTrue(wait_until(lambda: len(calls) >= 4, 5))
        other.set(p, b"not a child change")
        time.sleep(QUIET_S)
        self.assertEqual(calls, [[], ["a"], ["a", "b"], ["b"]])


class WatchOrderingTest(ServerTestCase):
    """On the raw wire: the notification precedes the reply that shows the
    change, for the changing session and for an observer."""

    def test_own_change_notifies_before_reply(self):
        c = self.raw()
        p = self.path
        c.create(p, b"a")
        c.get(p, watch=True)
        xid = c.send_request(zkwire.OP_SET_DATA, zkwire.set_body(p, b"b"))
        rxid, _, err, _ = c.read_reply()
        self.assertEqual((rxid, err), (xid, 0))
        self.assertEqual(c.events, [(NODE_DATA_CHANGED, SYNC_CONNECTED, p)])

    def test_observer_sees_event_before_new_data(self):
        writer, observer = self.raw(), self.raw()
        p = self.path
        writer.create(p, b"old")
        self.assertEqual(observer.exists(p, watch=True)[0], 0)
        self.assertEqual(observer.exists(p + "/kid", watch=True)[0], zkwire.ZNONODE)
        writer.call(zkwire.OP_SET_DATA, zkwire.set_body(p, b"new"))
        writer.create(p + "/kid")
        err, (data, _) = observer.get(p)
        self.assertEqual(data, b"new")
        self.assertEqual(observer.events,
                         [(NODE_DATA_CHANGED, SYNC_CONNECTED, p),
                          (NODE_CREATED, SYNC_CONNECTED, p + "/kid")])
