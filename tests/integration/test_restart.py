"""Restarts on the same data dir: what a client was told was written is
there after a clean stop and after SIGKILL, with the same Stat; zxids keep
growing; a session (and its ephemeral) outlives a quick restart."""
import threading

from kazoo.protocol.states import KazooState

from harness import ServerTestCase, wait_until


class RestartTest(ServerTestCase):
    def write_some(self, zk, base):
        zk.create(base + "/a/b", b"deep", makepath=True)
        zk.create(base + "/seq-", b"s", sequence=True)
        for i in range(20):
            zk.set(base + "/a", b"v%d" % i)
        zk.delete(base + "/a/b")
        return self.snapshot(zk, base)

    def snapshot(self, zk, base):
        out = {}

        def walk(path):
            data, st = zk.get(path)
            out[path] = (data, st)
            for c in zk.get_children(path):
                walk(path + "/" + c)
        walk(base)
        return out

    def check_survives(self, kill):
        zk = self.kazoo()
        before = self.write_some(zk, self.path)
        last_zxid = max(st.mzxid for _, st in before.values())
        zk.stop()
        self.server.restart(kill=kill)
        zk = self.kazoo()
        self.assertEqual(self.snapshot(zk, self.path), before)
        self.assertGreater(zk.set(self.path, b"after").mzxid, last_zxid)

    def test_clean_restart_keeps_tree(self):
        self.check_survives(kill=False)

    def test_sigkill_keeps_acknowledged_writes(self):
        self.check_survives(kill=True)

    def test_session_survives_quick_restart(self):
        lost = threading.Event()
        zk = self.kazoo(timeout=10)
        zk.add_listener(lambda s: s == KazooState.LOST and lost.set())
        sid = zk.client_id[0]
        zk.create(self.path, b"", ephemeral=True)
        self.server.restart()
        self.assertTrue(wait_until(lambda: zk.state == KazooState.CONNECTED
                                   and zk.exists(self.path) is not None, 15))
        self.assertFalse(lost.is_set())
        self.assertEqual(zk.client_id[0], sid)
        self.assertEqual(zk.exists(self.path).ephemeralOwner, sid)
