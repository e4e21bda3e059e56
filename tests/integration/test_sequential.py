"""Sequential nodes: a ten-digit zero-padded suffix from a per-parent counter.

ZooKeeper's counter is the number of children ever created under the parent
(deletes do not advance it). The cversion it reports is creates + deletes,
computed as 2 * creates - numChildren (DataNode.copyStat), so after a create
and a delete the reported cversion is 2 but the next suffix is 1."""
import re
import threading

from harness import ServerTestCase


class SequentialTest(ServerTestCase):
    def test_suffix_is_ten_digits_and_increasing(self):
        zk = self.kazoo()
        zk.create(self.path)
        names = [zk.create(self.path + "/n-", b"%d" % i, sequence=True)
                 for i in range(3)]
        self.assertEqual(names, [self.path + "/n-%010d" % i for i in range(3)])
        self.assertEqual(zk.get(names[2])[0], b"2")
        self.assertEqual(sorted(zk.get_children(self.path)),
                         ["n-0000000000", "n-0000000001", "n-0000000002"])

    def test_counter_counts_creates_not_deletes(self):
        zk = self.kazoo()
        zk.create(self.path)
        zk.create(self.path + "/plain")
        zk.delete(self.path + "/plain")  # cversion moves, the counter does not
        self.assertEqual(zk.exists(self.path).cversion, 2)
        self.assertEqual(zk.create(self.path + "/q", sequence=True),
                         self.path + "/q0000000001")
        self.assertEqual(zk.exists(self.path).cversion, 3)
        # Empty prefix: the name is the number alone.
        self.assertEqual(zk.create(self.path + "/", sequence=True),
                         self.path + "/0000000002")
        # Changing the parent's data does not touch the counter.
        zk.set(self.path, b"data")
        self.assertEqual(zk.create(self.path + "/q", sequence=True),
                         self.path + "/q0000000003")
        zk.delete(self.path + "/q0000000001")
        zk.delete(self.path + "/0000000002")
        self.assertEqual(zk.create(self.path + "/q", sequence=True),
                         self.path + "/q0000000004")
        st = zk.exists(self.path)
        self.assertEqual((st.cversion, st.numChildren), (2 * 5 - 2, 2))

    def test_ephemeral_sequential(self):
        a, b = self.kazoo(), self.kazoo()
        a.create(self.path)
        name = a.create(self.path + "/lock-", ephemeral=True, sequence=True)
        self.assertTrue(re.fullmatch(re.escape(self.path) + r"/lock-\d{10}", name))
        self.assertEqual(b.exists(name).ephemeralOwner, a.client_id[0])
        second = b.create(self.path + "/lock-", ephemeral=True, sequence=True)
        self.assertGreater(second, name)
        a.stop()
        self.assertIsNone(b.exists(name))
        self.assertEqual(b.get_children(self.path), [second.rsplit("/", 1)[1]])

    def test_concurrent_creators_get_distinct_numbers(self):
        clients = [self.kazoo() for _ in range(4)]
        clients[0].create(self.path)
        made = [[] for _ in clients]

        def work(i):
            for _ in range(25):
                made[i].append(clients[i].create(self.path + "/s-", sequence=True))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for names in made:  # each client sees its own numbers increase
            self.assertEqual(names, sorted(names))
        every = sorted(n for names in made for n in names)
        self.assertEqual(every, [self.path + "/s-%010d" % i for i in range(100)])
