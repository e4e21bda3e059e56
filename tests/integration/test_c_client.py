"""Apache ZooKeeper's C client (libzookeeper_mt) through rk-c-client, built
by tests/CMakeLists.txt: create/get/set/watch/multi/delete, each step checked
in C; the program exits 0 only when every step matched."""
import os
import subprocess

from harness import ROOT, ServerTestCase

C_CLIENT = os.path.abspath(os.environ.get("RK_C_CLIENT",
                                          os.path.join(ROOT, "build/tests/rk-c-client")))


class CClientTest(ServerTestCase):
    def test_c_client_walk_through(self):
        self.assertTrue(os.access(C_CLIENT, os.X_OK),
                        "%s not built (needs libzookeeper-mt-dev)" % C_CLIENT)
        run = subprocess.run([C_CLIENT, self.server.hosts, self.path],
                             capture_output=True, text=True, timeout=60)
        report = run.stdout + run.stderr
        self.assertEqual(run.returncode, 0, report)
        self.assertIn("ALL OK", run.stdout)
        self.assertNotIn("FAILED", run.stdout, report)
        self.assertIsNone(self.kazoo().exists(self.path))  # it cleaned up
