"""Four-letter words on the client port, in the formats ZooKeeper's own
scripts and exporters parse, and the whitelist refusal."""
import socket

from harness import Server, ServerTestCase, ringkeeper_only


def four(port, word, timeout=5.0):
    """Send a four-letter word; return everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks).decode()
            chunks.append(b)


class FourLetterWordTest(ServerTestCase):
    def test_ruok_and_isro(self):
        self.assertEqual(four(self.server.port, "ruok"), "imok")
        self.assertEqual(four(self.server.port, "isro"), "rw")

    def test_srvr_lines(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        lines = four(self.server.port, "srvr").splitlines()
        self.assertTrue(lines[0].startswith("Zookeeper version: "), lines)
        fields = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
        self.assertEqual(fields["Mode"], "standalone")
        self.assertRegex(fields["Latency min/avg/max"], r"^\d+/[\d.]+/\d+$")
        self.assertRegex(fields["Zxid"], r"^0x[0-9a-f]+$")
        self.assertGreaterEqual(int(fields["Node count"]), 5)
        self.assertGreaterEqual(int(fields["Connections"]), 1)

    def test_mntr_key_values(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        zk.get(self.path, watch=lambda e: None)
        kv = dict(l.split("\t", 1) for l in four(self.server.port, "mntr").splitlines())
        self.assertEqual(kv["zk_server_state"], "standalone")
        self.assertIn("zk_version", kv)
        self.assertGreaterEqual(int(kv["zk_znode_count"]), 5)
        self.assertGreaterEqual(int(kv["zk_watch_count"]), 1)
        self.assertGreaterEqual(int(kv["zk_num_alive_connections"]), 1)
        for k in ("zk_avg_latency", "zk_max_latency", "zk_min_latency",
                  "zk_packets_received", "zk_packets_sent", "zk_outstanding_requests"):
            float(kv[k])

    def test_wchs_counts_watches(self):
        zk = self.kazoo()
        zk.create(self.path, b"x")
        zk.get(self.path, watch=lambda e: None)
        zk.get_children(self.path, watch=lambda e: None)
        text = four(self.server.port, "wchs")
        self.assertRegex(text, r"\d+ connections watching \d+ paths\nTotal watches:\d+\n")
        total = int(text.rsplit(":", 1)[1])
        self.assertGreaterEqual(total, 1)

    def test_conf_names_the_client_port(self):
        conf = four(self.server.port, "conf")
        self.assertIn("clientPort=%d" % self.server.port, conf.splitlines())


@ringkeeper_only  # the harness starts ZooKeeper's JVM with whitelist=* forced
class WhitelistTest(ServerTestCase):
    """Only ruok allowed: other words get ZooKeeper's refusal sentence."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:  # the last value of a key wins
            f.write("4lw.commands.whitelist=ruok\n")
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    def test_listed_word_answers(self):
        self.assertEqual(four(self.server.port, "ruok"), "imok")

    def test_unlisted_word_is_refused(self):
        self.assertEqual(four(self.server.port, "srvr"),
                         "srvr is not executed because it is not in the whitelist.\n")
        self.assertEqual(four(self.server.port, "mntr"),
                         "mntr is not executed because it is not in the whitelist.\n")
