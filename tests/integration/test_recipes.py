"""kazoo's recipes against the server: each test runs one recipe with
several concurrent clients, each with a session of its own, and asserts the
guarantee the recipe gives (mutual exclusion, one leader at a time, every
queue item consumed once, ...), with every wait bounded. They lean on what
the server must get right underneath: sequential and ephemeral nodes,
versioned writes, multi, one-shot watches and their order, and ephemerals
going when a session closes. RK_TARGET=zookeeper checks the tests."""
import threading
import time

from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from harness import ServerTestCase, wait_until

WAIT_S = 15.0  # the longest any one wait may take
# Optimistic recipes (Counter) retry on BadVersion: retry fast and forever
# instead of kazoo's default exponential back-off, so contention costs
# milliseconds rather than seconds.
FAST_RETRY = {"max_tries": -1, "delay": 0.005, "backoff": 1.2, "max_jitter": 0.5,
              "max_delay": 0.05}


class Threads:
    """Runs functions in threads; join() waits for all of them (bounded)
    and re-raises the first exception any of them raised."""

    def __init__(self):
        self.threads, self.errors = [], []

    def start(self, fn, *args):
        def body():
            try:
                fn(*args)
            except BaseException as e:  # reported by join()
                self.errors.append(e)
        t = threading.Thread(target=body, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.errors:
            raise self.errors[0]
        alive = sum(t.is_alive() for t in self.threads)
        if alive:
            raise AssertionError("%d of %d threads still running after %.0f s"
                                 % (alive, len(self.threads), timeout))


class RecipeTest(ServerTestCase):
    def clients(self, n, **kw):
        return [self.kazoo(**kw) for _ in range(n)]

    def wait_for(self, pred, what, timeout=WAIT_S):
        self.assertTrue(wait_until(pred, timeout, 0.01), "timed out waiting for " + what)

    def test_lock_excludes_and_loses_no_update(self):
        """5 clients increment a plain counter node under the lock by
        read-modify-write: no two hold the lock at once, no update is lost."""
        p = self.path
        zks = self.clients(5)
        zks[0].create(p + "/n", b"0", makepath=True)
        rounds = 12
        holders, most = [0], [0]
        state = threading.Lock()

        def worker(i):
            lock = zks[i].Lock(p + "/lock", "c%d" % i)
            for _ in range(rounds):
                with lock:
                    with state:
                        holders[0] += 1
                        most[0] = max(most[0], holders[0])
                    value, _ = zks[i].get(p + "/n")
                    time.sleep(0.001)  # widen the window a lost update needs
                    zks[i].set(p + "/n", str(int(value) + 1).encode())
                    with state:
                        holders[0] -= 1

        threads = Threads()
        for i in range(5):
            threads.start(worker, i)
        threads.join()
        self.assertEqual(most[0], 1, "two clients held the lock at once")
        self.assertEqual(zks[0].get(p + "/n")[0], str(5 * rounds).encode())
        self.assertEqual(zks[0].get_children(p + "/lock"), [])

    def test_election_has_one_leader_and_passes_on_session_close(self):
        """4 contenders: exactly one leads at a time, in the order they
        joined, and leadership moves on when the leader's session closes."""
        p = self.path
        n = 4
        zks = self.clients(n)
        elections = [Election(zks[i], p, "c%d" % i) for i in range(n)]
        state = threading.Lock()
        leading, most, order = [0], [0], []
        elected = threading.Condition(state)
        released = [threading.Event() for _ in range(n)]
        stopped = set()

        def lead(i):
            with state:
                leading[0] += 1
                most[0] = max(most[0], leading[0])
                order.append(i)
                elected.notify_all()
            released[i].wait(WAIT_S * 2)

        def contend(i):
            try:
                elections[i].run(lead, i)
            except Exception:
                if i not in stopped:  # releasing on a closed session fails
                    raise

        threads = Threads()
        for i in range(n):
            threads.start(contend, i)
            # Join in a known order, so the expected succession is known.
            self.wait_for(lambda: len(elections[0].contenders()) == i + 1, "contender %d" % i)
        self.assertEqual(elections[0].contenders(), ["c%d" % i for i in range(n)])
        for turn in range(n):
            with state:
                self.assertTrue(elected.wait_for(lambda: len(order) == turn + 1, WAIT_S),
                                "no leader elected after %s" % order)
                leader = order[-1]
                self.assertEqual(leading[0], 1)
            time.sleep(0.1)  # nobody else takes over while the leader lives
            with state:
                self.assertEqual(order[-1], leader)
                leading[0] -= 1
            stopped.add(leader)
            zks[leader].stop()  # closes the session: its lock node goes
            released[leader].set()
        threads.join()
        self.assertEqual(order, list(range(n)))
        self.assertEqual(most[0], 1, "two leaders at once")

    def test_barrier_holds_waiters_until_removed(self):
        p = self.path
        owner, *waiters = self.clients(5)
        Barrier(owner, p).create()
        passed, removed_at = [], [None]

        def wait(zk):
            self.assertTrue(Barrier(zk, p).wait(WAIT_S), "barrier wait timed out")
            passed.append(time.monotonic())

        threads = Threads()
        for zk in waiters:
            threads.start(wait, zk)
        time.sleep(0.3)
        self.assertEqual(passed, [], "a waiter passed a standing barrier")
        removed_at[0] = time.monotonic()
        Barrier(owner, p).remove()
        threads.join()
        self.assertEqual(len(passed), 4)
        self.assertTrue(all(t >= removed_at[0] for t in passed))

    def test_double_barrier_enters_and_leaves_together(self):
        """No member gets in before all 4 have arrived, and none gets out
        before all 4 have started to leave; arrivals and departures are
        staggered so an early pass would show."""
        p = self.path
        n = 4
        zks = self.clients(n)
        state = threading.Lock()
        arrived, leaving = [0], [0]
        seen_in, seen_out = [], []

        def member(i):
            barrier = DoubleBarrier(zks[i], p, n)
            time.sleep(0.05 * i)
            with state:
                arrived[0] += 1
            barrier.enter()
            self.assertTrue(barrier.participating)
            with state:
                seen_in.append(arrived[0])
            time.sleep(0.05 * (n - i))
            with state:
                leaving[0] += 1
            barrier.leave()
            with state:
                seen_out.append(leaving[0])

        threads = Threads()
        for i in range(n):
            threads.start(member, i)
        threads.join()
        self.assertEqual(seen_in, [n] * n, "a member entered before all arrived")
        self.assertEqual(seen_out, [n] * n, "a member left before all were leaving")
        self.assertEqual(zks[0].get_children(p), [])

    def test_counter_sums_concurrent_increments(self):
        """5 clients add 1 twenty times each: the sum is exact and every
        increment saw a distinct result (versioned sets, no lost update)."""
        p = self.path
        zks = self.clients(5, command_retry=FAST_RETRY)
        results = []

        def add(zk):
            counter = Counter(zk, p)
            for _ in range(20):
                counter += 1
                results.append(counter.post_value)

        threads = Threads()
        for zk in zks:
            threads.start(add, zk)
        threads.join(WAIT_S * 2)
        self.assertEqual(Counter(zks[0], p).value, 100)
        self.assertEqual(sorted(results), list(range(1, 101)))

    def test_queue_is_fifo_and_hands_each_item_out_once(self):
        p = self.path
        zks = self.clients(6)
        # One producer, one consumer: exactly the order of put.
        items = [b"item-%02d" % i for i in range(15)]
        for item in items:
            Queue(zks[0], p + "/one").put(item)
        q = Queue(zks[1], p + "/one")
        self.assertEqual([q.get() for _ in items], items)
        self.assertIsNone(q.get())

        # 3 producers and 3 consumers at once: each item exactly once, and
        # each consumer sees each producer's items in the order put.
        per = 12
        produced = [b"p%d-%02d" % (k, i) for k in range(3) for i in range(per)]
        consumed = {k: [] for k in range(3)}
        done = threading.Event()

        def produce(k):
            q = Queue(zks[k], p + "/many")
            for i in range(per):
                q.put(b"p%d-%02d" % (k, i))

        def consume(k):
            q = Queue(zks[3 + k], p + "/many")
            deadline = time.monotonic() + WAIT_S
            while not done.is_set() and time.monotonic() < deadline:
                item = q.get()
                if item is None:
                    time.sleep(0.005)
                    continue
                consumed[k].append(item)
                if sum(len(c) for c in consumed.values()) == len(produced):
                    done.set()

        threads = Threads()
        for k in range(3):
            threads.start(produce, k)
            threads.start(consume, k)
        threads.join(WAIT_S + 5)
        got = [item for c in consumed.values() for item in c]
        self.assertEqual(sorted(got), sorted(produced), "items lost or handed out twice")
        for k, items in consumed.items():
            for producer in range(3):
                mine = [x for x in items if x.startswith(b"p%d-" % producer)]
                self.assertEqual(mine, sorted(mine), "consumer %d out of order" % k)

    def test_locking_queue_consumes_each_once_and_frees_a_dead_consumers_item(self):
        p = self.path
        zks = self.clients(4)
        values = [b"v%02d" % i for i in range(20)]
        LockingQueue(zks[0], p).put_all(values[:10])  # one multi
        for v in values[10:]:
            LockingQueue(zks[0], p).put(v)
        taken = {k: [] for k in range(3)}

        def consume(k):
            q = LockingQueue(zks[1 + k], p)
            deadline = time.monotonic() + WAIT_S
            while sum(len(t) for t in taken.values()) < len(values):
                self.assertLess(time.monotonic(), deadline, "queue not drained")
                item = q.get(0.2)
                if item is None:
                    continue
                taken[k].append(item)
                self.assertTrue(q.consume(), "consume of a locked item failed")

        threads = Threads()
        for k in range(3):
            threads.start(consume, k)
        threads.join(WAIT_S + 5)
        got = sorted(item for t in taken.values() for item in t)
        self.assertEqual(got, values, "items lost or consumed twice")
        self.assertEqual(len(LockingQueue(zks[0], p)), 0)

        # An item locked by a consumer whose session closes goes to another.
        LockingQueue(zks[0], p).put(b"orphan")
        a, b = LockingQueue(zks[1], p), LockingQueue(zks[2], p)
        self.assertEqual(a.get(WAIT_S), b"orphan")
        self.assertIsNone(b.get(0.3), "a locked item was handed out twice")
        zks[1].stop()
        self.assertEqual(b.get(WAIT_S), b"orphan")
        self.assertTrue(b.consume())
        self.assertEqual(len(LockingQueue(zks[0], p)), 0)

    def test_party_membership_is_seen_by_all(self):
        p = self.path
        n = 4
        zks = self.clients(n)
        for kind, path in ((Party, p + "/party"), (ShallowParty, p + "/shallow")):
            parties = [kind(zks[i], path, "m%d" % i) for i in range(n)]
            threads = Threads()
            for party in parties:
                threads.start(party.join)
            threads.join()
            everyone = {"m%d" % i for i in range(n)}
            for i, party in enumerate(parties):
                self.wait_for(lambda: set(party) == everyone,
                              "%s view of client %d" % (kind.__name__, i))
                self.assertEqual(len(party), n)
            parties[0].leave()
            for party in parties[1:]:
                self.wait_for(lambda: set(party) == everyone - {"m0"}, "m0 leaving")
            parties[0].join()
        zks[3].stop()  # its session closes: it is in neither party any more
        for i in range(3):
            for kind, path in ((Party, p + "/party"), (ShallowParty, p + "/shallow")):
                party = kind(zks[i], path)
                self.wait_for(lambda: set(party) == {"m0", "m1", "m2"}, "m3's session closing")

    def test_tree_cache_mirrors_a_subtree(self):
        p = self.path
        writer, reader, other = self.clients(3)
        writer.create(p + "/a", b"a0", makepath=True)
        cache = TreeCache(reader, p)
        events, initialized = [], threading.Event()

        def listen(event):
            if event.event_type == TreeEvent.INITIALIZED:
                initialized.set()
            elif event.event_type in (TreeEvent.NODE_ADDED, TreeEvent.NODE_UPDATED,
                                      TreeEvent.NODE_REMOVED):
                d = event.event_data
                events.append((event.event_type, d.path, d.data))

        cache.listen(listen)
        cache.start()
        self.addCleanup(cache.close)
        self.assertTrue(initialized.wait(WAIT_S), "TreeCache did not initialize")
        self.assertEqual(cache.get_data(p + "/a").data, b"a0")
        events.clear()

        # One change at a time, each seen before the next: every event, in order.
        steps = [lambda: writer.create(p + "/a/b", b"b0"),
                 lambda: writer.set(p + "/a", b"a1"),
                 lambda: writer.create(p + "/c", b"c0"),
                 lambda: writer.set(p + "/a/b", b"b1"),
                 lambda: writer.delete(p + "/a/b"),
                 lambda: writer.set(p + "/c", b"c1"),
                 lambda: writer.delete(p + "/a")]
        for k, change in enumerate(steps):
            change()
            self.wait_for(lambda: len(events) >= k + 1, "cache event %d" % k)
        ADD, UPD, REM = TreeEvent.NODE_ADDED, TreeEvent.NODE_UPDATED, TreeEvent.NODE_REMOVED
        self.assertEqual(events, [(ADD, p + "/a/b", b"b0"), (UPD, p + "/a", b"a1"),
                                  (ADD, p + "/c", b"c0"), (UPD, p + "/a/b", b"b1"),
                                  (REM, p + "/a/b", b"b1"), (UPD, p + "/c", b"c1"),
                                  (REM, p + "/a", b"a1")])

        # A burst from two clients at once: the cache ends equal to the tree.
        def churn(zk, tag):
            for i in range(10):
                zk.create("%s/%s%d" % (p, tag, i), b"x", makepath=True)
                zk.set("%s/%s%d" % (p, tag, i), b"y%d" % i)
                if i % 3 == 0:
                    zk.delete("%s/%s%d" % (p, tag, i))

        threads = Threads()
        threads.start(churn, writer, "w")
        threads.start(churn, other, "o")
        threads.join()

        def mirror_matches():
            kids = set(writer.get_children(p))
            if set(cache.get_children(p) or ()) != kids:
                return False
            return all(cache.get_data("%s/%s" % (p, k)) is not None and
                       cache.get_data("%s/%s" % (p, k)).data == writer.get("%s/%s" % (p, k))[0]
                       for k in kids)
        self.wait_for(mirror_matches, "the cache to mirror the tree")

    def test_data_and_children_watches_see_every_change_in_order(self):
        p = self.path
        writer, reader, w2, w3 = self.clients(4)
        writer.create(p, b"v0")
        seen_data, seen_kids = [], []
        DataWatch(reader, p, lambda data, stat: seen_data.append((data, stat.version))
                  if stat else None)
        ChildrenWatch(reader, p, lambda kids: seen_kids.append(sorted(kids)))
        self.wait_for(lambda: seen_data and seen_kids, "the first calls")

        # Lockstep: each change is seen before the next is made.
        for i in range(1, 8):
            writer.set(p, b"v%d" % i)
            self.wait_for(lambda: len(seen_data) == i + 1, "data change %d" % i)
        self.assertEqual(seen_data, [(b"v%d" % i, i) for i in range(8)])
        names = ["k%d" % i for i in range(4)]
        for i, name in enumerate(names):
            writer.create(p + "/" + name)
            self.wait_for(lambda: len(seen_kids) == i + 2, "child %s" % name)
        for i, name in enumerate(names):
            writer.delete(p + "/" + name)
            self.wait_for(lambda: len(seen_kids) == len(names) + i + 2, "deleting %s" % name)
        self.assertEqual(seen_kids, [sorted(names[:i]) for i in range(len(names) + 1)]
                         + [sorted(names[i + 1:]) for i in range(len(names))])

        # Three writers at once: the watch may skip versions but never goes
        # back, and it ends on the last one.
        seen_data.clear()

        def write(zk):
            for _ in range(15):
                zk.set(p, b"burst")

        threads = Threads()
        for zk in (writer, w2, w3):
            threads.start(write, zk)
        threads.join()
        final = writer.exists(p).version
        self.wait_for(lambda: seen_data and seen_data[-1][1] == final, "the final version")
        versions = [v for _, v in seen_data]
        self.assertEqual(versions, sorted(set(versions)), "versions out of order or repeated")
