"""The admin HTTP server: ZooKeeper's AdminServer commands (/commands and
/commands/<name>, JSON with ZooKeeper 3.8's keys), what it answers to an
unknown command, a malformed request and a method other than GET, and the
Prometheus /metrics, parsed by the Prometheus client's own parser.

Runs on ZooKeeper too (RK_TARGET=zookeeper) except where marked: Debian's
ZooKeeper has no Prometheus provider, and the bounds and errors of our own
server are ours."""
import json
import socket
import time
import unittest
import urllib.error
import urllib.request

from harness import Cluster, Server, ServerTestCase, free_port, ringkeeper_only, wait_until

# The commands Ringkeeper answers, with their ZooKeeper 3.8 aliases.
COMMANDS = {
    "configuration": ["conf", "config"],
    "connection_stat_reset": ["crst"],
    "connections": ["cons"],
    "dirs": [],
    "environment": ["env", "envi"],
    "get_trace_mask": ["gtmk"],
    "hash": [],
    "is_read_only": ["isro"],
    "last_snapshot": ["lsnp"],
    "leader": ["lead"],
    "monitor": ["mntr"],
    "observer_connection_stat_reset": ["orst"],
    "ruok": [],
    "server_stats": ["srvr"],
    "stat_reset": ["srst"],
    "stats": ["stat"],
    "voting_view": [],
    "watch_summary": ["wchs"],
    "zabstate": [],
}

# Keys each command's answer has (besides "command" and "error").
KEYS = {
    "configuration": ["client_port", "data_dir", "data_log_dir", "tick_time",
                      "max_client_cnxns", "min_session_timeout", "max_session_timeout",
                      "server_id", "client_port_listen_backlog"],
    "dirs": ["datadir_size", "logdir_size"],
    "environment": ["zookeeper.version", "host.name", "os.name", "os.arch", "os.version",
                    "user.name", "user.home", "user.dir"],
    "get_trace_mask": ["tracemask"],
    "hash": ["digests"],
    "is_read_only": ["read_only"],
    "last_snapshot": ["zxid", "timestamp"],
    "monitor": ["version", "server_state", "znode_count", "watch_count", "ephemerals_count",
                "approximate_data_size", "num_alive_connections", "outstanding_requests",
                "packets_received", "packets_sent", "avg_latency", "min_latency",
                "max_latency", "global_sessions", "open_file_descriptor_count",
                "max_file_descriptor_count", "uptime", "auth_failed_count",
                "avg_fsynctime", "min_fsynctime", "max_fsynctime", "cnt_fsynctime",
                "sum_fsynctime", "cnt_snapshottime", "sum_snapshottime", "cnt_election_time",
                "avg_updatelatency", "cnt_updatelatency", "p99_updatelatency"],
    "server_stats": ["version", "read_only", "server_stats", "client_response", "node_count"],
    "stats": ["version", "read_only", "server_stats", "client_response", "node_count",
              "connections", "secure_connections"],
    "connections": ["connections", "secure_connections"],
    "voting_view": ["current_config"],
    "watch_summary": ["num_connections", "num_paths", "num_total_watches"],
    "zabstate": ["voting", "zabstate"],
}

CONNECTION_KEYS = ["remote_socket_address", "interest_ops", "outstanding_requests",
                   "packets_received", "packets_sent"]
CONNECTION_FULL_KEYS = CONNECTION_KEYS + [
    "session_id", "last_operation", "established", "session_timeout", "last_cxid", "last_zxid",
    "last_response_time", "last_latency", "min_latency", "avg_latency", "max_latency"]

SERVER_STATS_KEYS = ["packets_sent", "packets_received", "fsync_threshold_exceed_count",
                     "client_response_stats", "data_dir_size", "log_dir_size",
                     "provider_null", "server_state", "last_processed_zxid",
                     "outstanding_requests", "avg_latency", "max_latency", "min_latency",
                     "num_alive_client_connections", "uptime", "auth_failed_count"]


def http(port, path, method="GET", timeout=10.0):
    """(status, headers, body) of one request."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def command(port, name):
    status, headers, body = http(port, "/commands/" + name)
    assert status == 200, (name, status, body)
    assert headers["Content-Type"].startswith("application/json"), headers["Content-Type"]
    return json.loads(body)


def raw_exchange(port, data, timeout=10.0):
    """Send bytes as they are; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def status_of(response):
    return int(response.split(b" ", 2)[1])


def metrics(port, path="/metrics"):
    """{name: family} parsed by prometheus_client's text parser."""
    from prometheus_client.parser import text_string_to_metric_families
    status, headers, body = http(port, path)
    assert status == 200, (status, body)
    assert headers["Content-Type"].startswith("text/plain"), headers["Content-Type"]
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def sample(families, name, suffix="", labels=None):
    for s in families[name].samples:
        if s.name == name + suffix and (labels is None or s.labels == labels):
            return s.value
    raise KeyError(name + suffix)


class AdminServerTest(ServerTestCase):
    @classmethod
    def make_server(cls):
        return Server(tick_ms=cls.tick_ms, admin_port=free_port())

    @property
    def admin(self):
        return self.server.admin_port

    def test_commands_lists_every_command(self):
        status, headers, body = http(self.admin, "/commands")
        self.assertEqual(status, 200)
        for name in COMMANDS:
            self.assertIn(('<a href="/commands/%s">%s</a>' % (name, name)).encode(), body)
        self.assertEqual(http(self.admin, "/commands/")[2], body)

    def test_every_command_answers_json_with_its_keys(self):
        for name, keys in sorted(KEYS.items()):
            with self.subTest(command=name):
                answer = command(self.admin, name)
                self.assertEqual(answer["command"], name)
                self.assertIsNone(answer["error"])
                for key in keys:
                    self.assertIn(key, answer)
        for name in ("ruok", "stat_reset", "connection_stat_reset",
                     "observer_connection_stat_reset"):
            self.assertEqual(command(self.admin, name), {"command": name, "error": None})

    def test_aliases_answer_as_their_command(self):
        for name, aliases in COMMANDS.items():
            for alias in aliases:
                with self.subTest(alias=alias):
                    self.assertEqual(command(self.admin, alias)["command"], name)

    def test_standalone_answers(self):
        stats = command(self.admin, "server_stats")
        for key in SERVER_STATS_KEYS:
            self.assertIn(key, stats["server_stats"])
        self.assertEqual(stats["server_stats"]["server_state"], "standalone")
        self.assertIs(stats["read_only"], False)
        self.assertEqual(command(self.admin, "monitor")["server_state"], "standalone")
        self.assertEqual(command(self.admin, "leader"),
                         {"command": "leader", "error": "server is not initialized"})
        self.assertEqual(command(self.admin, "voting_view")["current_config"], {})
        zab = command(self.admin, "zabstate")
        self.assertEqual((zab["voting"], zab["zabstate"]), (False, ""))
        self.assertIs(command(self.admin, "is_read_only")["read_only"], False)
        conf = command(self.admin, "configuration")
        self.assertEqual(conf["client_port"], self.server.port)
        self.assertEqual(conf["tick_time"], self.tick_ms)
        self.assertEqual(conf["server_id"], 0)
        self.assertIsInstance(command(self.admin, "last_snapshot")["zxid"], str)

    def test_figures_follow_the_data(self):
        zk = self.kazoo()
        before = command(self.admin, "monitor")
        zxid_before = command(self.admin, "server_stats")["server_stats"]["last_processed_zxid"]
        zk.create(self.path, b"")
        for i in range(5):
            zk.create("%s/n%d" % (self.path, i), b"x" * 10)
        zk.create(self.path + "/eph", b"", ephemeral=True)
        zk.get(self.path + "/n0", watch=lambda e: None)
        after = command(self.admin, "monitor")
        self.assertEqual(after["znode_count"], before["znode_count"] + 7)
        self.assertEqual(after["ephemerals_count"], before["ephemerals_count"] + 1)
        added = len(self.path) + sum(len("%s/n%d" % (self.path, i)) + 10 for i in range(5)) \
            + len(self.path + "/eph")
        self.assertEqual(after["approximate_data_size"], before["approximate_data_size"] + added)
        self.assertGreaterEqual(after["watch_count"], before["watch_count"] + 1)
        self.assertGreaterEqual(after["packets_received"], before["packets_received"] + 8)
        self.assertGreaterEqual(after["num_alive_connections"], 1)
        self.assertGreaterEqual(after["global_sessions"], 1)
        self.assertGreater(after["open_file_descriptor_count"], 0)
        self.assertGreaterEqual(after["max_file_descriptor_count"],
                                after["open_file_descriptor_count"])
        self.assertGreaterEqual(after["cnt_fsynctime"], 1)
        self.assertGreaterEqual(after["cnt_updatelatency"], 7)
        self.assertGreaterEqual(after["uptime"], before["uptime"])
        stats = command(self.admin, "server_stats")
        self.assertEqual(stats["node_count"], after["znode_count"])
        self.assertGreater(stats["server_stats"]["last_processed_zxid"], zxid_before)
        watches = command(self.admin, "watch_summary")
        self.assertGreaterEqual(watches["num_total_watches"], 1)
        self.assertGreaterEqual(watches["num_connections"], 1)

    def test_stat_reset_zeroes_the_request_counters(self):
        zk = self.kazoo()
        for _ in range(5):
            zk.exists("/")
        self.assertGreaterEqual(command(self.admin, "srvr")["server_stats"]["packets_received"], 5)
        command(self.admin, "stat_reset")
        # Only a ping of a live session can have come in since.
        self.assertLessEqual(command(self.admin, "srvr")["server_stats"]["packets_received"], 2)

    def test_unknown_command_is_answered_as_zookeeper_does(self):
        for name in ("nosuch", "RUOK", "ruok/"):
            with self.subTest(name=name):
                self.assertEqual(command(self.admin, name),
                                 {"command": name, "error": "Unknown command: " + name})

    def test_other_paths_are_not_found(self):
        self.assertEqual(http(self.admin, "/")[0], 404)
        self.assertEqual(http(self.admin, "/nothing/here")[0], 404)

    def test_query_string_and_head(self):
        self.assertEqual(command(self.admin, "ruok?x=1")["command"], "ruok")
        status, headers, body = http(self.admin, "/commands/ruok", method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertEqual(http(self.admin, "/commands/ruok", method="POST")[0], 405)

    def test_malformed_requests_get_400_and_the_server_goes_on(self):
        bad = [b"GARBAGE\r\n\r\n",
               b"GET /commands/ruok HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
               b"GET /commands/ruok HTTP/1.1\r\nno colon here\r\n\r\n"]
        for request in bad:
            with self.subTest(request=request):
                self.assertEqual(status_of(raw_exchange(self.admin, request)), 400)
                self.assertEqual(command(self.admin, "ruok")["error"], None)
        ok = raw_exchange(self.admin, b"GET /commands/ruok HTTP/1.0\r\n\r\n")
        self.assertEqual(status_of(ok), 200)

    @ringkeeper_only  # Jetty lets these through
    def test_what_rfc_9112_calls_malformed_gets_400(self):
        for request in (b"GET /commands/ruok HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                        b"GET  /commands/ruok HTTP/1.1\r\nHost: a\r\n\r\n",
                        b"GET /commands/ruok HTTP/1.1\r\n Host: a\r\n\r\n",
                        b"GET /commands/%zz HTTP/1.1\r\nHost: a\r\n\r\n"):
            with self.subTest(request=request):
                self.assertEqual(status_of(raw_exchange(self.admin, request)), 400)
        self.assertEqual(status_of(raw_exchange(
            self.admin, b"GET /commands/ruok HTTP/2.0\r\nHost: a\r\n\r\n")), 505)

    def test_an_oversized_request_head_is_refused(self):
        request = (b"GET /commands/ruok HTTP/1.1\r\nHost: a\r\nX-Filler: " + b"a" * 20000
                   + b"\r\n\r\n")
        self.assertEqual(status_of(raw_exchange(self.admin, request)), 431)
        self.assertEqual(command(self.admin, "ruok")["error"], None)

    def test_connections_and_their_reset(self):
        zk = self.kazoo()
        zk.create(self.path, b"")
        zk.get(self.path)
        sid = zk.client_id[0]
        port = zk._connection._socket.getsockname()[1]

        def mine(answer):
            found = [c for c in answer["connections"]
                     if c["remote_socket_address"].endswith(":%d" % port)]
            self.assertEqual(len(found), 1, answer["connections"])
            return found[0]

        answer = command(self.admin, "connections")
        self.assertEqual(answer["secure_connections"], [])
        full = mine(answer)
        for key in CONNECTION_FULL_KEYS:
            self.assertIn(key, full)
        self.assertEqual(full["session_id"], sid)
        self.assertGreaterEqual(full["packets_received"], 2)
        self.assertGreaterEqual(full["last_zxid"], 1)
        brief = mine(command(self.admin, "stats"))
        self.assertEqual(sorted(brief), sorted(CONNECTION_KEYS))
        self.assertEqual(command(self.admin, "connection_stat_reset"),
                         {"command": "connection_stat_reset", "error": None})
        after = mine(command(self.admin, "cons"))
        self.assertLessEqual(after["packets_received"], 1)  # a ping at most
        self.assertEqual(after["session_id"], sid)

    @ringkeeper_only  # the figures of Ringkeeper's own commands
    def test_unimplemented_zookeeper_commands_say_so(self):
        answer = command(self.admin, "dump")
        self.assertEqual(answer["command"], "dump")
        self.assertIn("not implemented", answer["error"])

    @ringkeeper_only  # Debian's ZooKeeper has no Prometheus provider
    def test_metrics_parse_and_follow_the_data(self):
        zk = self.kazoo()
        before = metrics(self.admin)
        for name, kind in [("znode_count", "gauge"), ("watch_count", "gauge"),
                           ("ephemerals_count", "gauge"), ("approximate_data_size", "gauge"),
                           ("num_alive_connections", "gauge"), ("packets_received", "gauge"),
                           ("packets_sent", "gauge"), ("outstanding_requests", "gauge"),
                           ("avg_latency", "gauge"), ("min_latency", "gauge"),
                           ("max_latency", "gauge"), ("uptime", "gauge"),
                           ("open_file_descriptor_count", "gauge"),
                           ("max_file_descriptor_count", "gauge"), ("global_sessions", "gauge"),
                           ("fsynctime", "summary"), ("snapshottime", "summary"),
                           ("election_time", "summary"), ("updatelatency", "summary")]:
            self.assertIn(name, before)
            self.assertEqual(before[name].type, kind, name)
            self.assertTrue(before[name].documentation, name)
        self.assertNotIn("quorum_size", before, "standalone")
        zk.create(self.path, b"")
        for i in range(4):
            zk.create("%s/n%d" % (self.path, i), b"abc", ephemeral=i == 0)
        after = metrics(self.admin)
        self.assertEqual(sample(after, "znode_count"), sample(before, "znode_count") + 5)
        self.assertEqual(sample(after, "ephemerals_count"), sample(before, "ephemerals_count") + 1)
        self.assertEqual(sample(after, "znode_count"), command(self.admin, "mntr")["znode_count"])
        self.assertGreater(sample(after, "packets_received"), sample(before, "packets_received"))
        self.assertGreaterEqual(sample(after, "fsynctime", "_count"),
                                sample(before, "fsynctime", "_count") + 1)
        self.assertGreater(sample(after, "fsynctime", "_sum"), 0)
        self.assertGreaterEqual(sample(after, "fsynctime", labels={"quantile": "0.5"}), 0)
        self.assertEqual(sample(after, "updatelatency", "_count"),
                         sample(before, "updatelatency", "_count") + 5)
        for q in ("0.5", "0.9", "0.99"):
            self.assertGreater(sample(after, "updatelatency", labels={"quantile": q}), 0)
        self.assertGreater(sample(after, "uptime"), sample(before, "uptime"))

    @ringkeeper_only  # our bounds
    def test_connections_beyond_the_bound_are_closed(self):
        socks = []
        try:
            for _ in range(64):
                socks.append(socket.create_connection(("127.0.0.1", self.admin), timeout=5))
            wait_until(lambda: False, 0.3)  # let the server accept them all
            extra = socket.create_connection(("127.0.0.1", self.admin), timeout=5)
            with extra:
                extra.sendall(b"GET /commands/ruok HTTP/1.0\r\n\r\n")
                try:
                    self.assertEqual(extra.recv(100), b"", "the 65th is closed unanswered")
                except ConnectionResetError:
                    pass
        finally:
            for s in socks:
                s.close()

        def answers():
            try:
                return http(self.admin, "/commands/ruok")[0] == 200
            except OSError:  # refused while the server has yet to see the closes
                return False
        self.assertTrue(wait_until(answers, 5), "answers again once the others left")

    @ringkeeper_only  # our bound, ADMIN_TIMEOUT_MS
    def test_a_silent_connection_is_closed_after_the_timeout(self):
        with socket.create_connection(("127.0.0.1", self.admin), timeout=30) as s:
            s.sendall(b"GET /commands/ruok HTTP/1.1\r\n")  # and never the rest
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")
            self.assertLess(time.monotonic() - t0, 15)
        self.assertEqual(command(self.admin, "ruok")["error"], None)


class AdminDisabledTest(ServerTestCase):
    """admin.enableServer=false: nothing listens on admin.serverPort."""

    @classmethod
    def make_server(cls):
        cls.admin_port = free_port()
        return Server(tick_ms=cls.tick_ms,
                      extra_cfg=["admin.serverPort=%d" % cls.admin_port])

    def test_admin_port_is_closed(self):
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.admin_port), timeout=5).close()


@ringkeeper_only  # Debian's ZooKeeper has no Prometheus provider
class MetricsPortTest(ServerTestCase):
    """ZooKeeper's Prometheus provider configured: /metrics on its port as
    well, and nothing else there; the admin server off."""

    @classmethod
    def make_server(cls):
        cls.metrics_port = free_port()
        return Server(tick_ms=cls.tick_ms, extra_cfg=[
            "metricsProvider.className="
            "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            "metricsProvider.httpHost=127.0.0.1",
            "metricsProvider.httpPort=%d" % cls.metrics_port])

    def test_metrics_on_the_provider_port(self):
        families = metrics(self.metrics_port)
        self.assertGreaterEqual(sample(families, "znode_count"), 4)
        self.assertEqual(http(self.metrics_port, "/commands/ruok")[0], 404)


@ringkeeper_only  # ZooKeeper exits too, with its own message
class AdminPortTakenTest(unittest.TestCase):
    def test_a_taken_admin_port_stops_the_server_naming_the_key(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            server = Server(admin_port=taken.getsockname()[1])
            try:
                with self.assertRaises(RuntimeError):
                    server.start()
                self.assertIn("admin.serverPort", server.log_tail())
            finally:
                server.destroy()


class AdminEnsembleTest(unittest.TestCase):
    """Three servers, one an observer: the leader, the voting view and ZAB
    state as each member reports them, and the leader's learners."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3, observers=1, admin=True)
        try:
            cls.cluster.start()
            cls.leader_id = cls.cluster.wait_quorum()
        except Exception:
            cls.cluster.destroy()
            raise

    @classmethod
    def tearDownClass(cls):
        problems = cls.cluster.problems()
        cls.cluster.destroy()
        if problems:
            raise AssertionError("\n".join(problems))

    def admin(self, i):
        return self.cluster.admin_ports[i]

    def test_leader_voting_view_and_zabstate(self):
        c = self.cluster
        for i in c.ids:
            with self.subTest(server=i):
                lead = command(self.admin(i), "leader")
                self.assertIsNone(lead["error"])
                self.assertEqual(lead["leader_id"], self.leader_id)
                self.assertEqual(lead["is_leader"], i == self.leader_id)
                self.assertEqual(lead["leader_ip"], "127.0.0.1")
                view = command(self.admin(i), "voting_view")["current_config"]
                self.assertEqual(sorted(view), ["1", "2"], "participants only")
                self.assertEqual(view["1"]["server_addresses"],
                                 ["127.0.0.1:%d" % c.quorum_ports[1]])
                self.assertEqual(view["2"]["election_addresses"],
                                 ["127.0.0.1:%d" % c.election_ports[2]])
                self.assertEqual(view["2"]["client_address"], "127.0.0.1:%d" % c.client_ports[2])
                self.assertEqual(view["1"]["learner_type"], "participant")
                zab = command(self.admin(i), "zabstate")
                self.assertEqual(zab["myid"], i)
                self.assertEqual(zab["voting"], i not in c.observer_ids)
                self.assertEqual(zab["is_leader"], i == self.leader_id)
                self.assertEqual(zab["zabstate"], "broadcast")
                self.assertEqual(zab["quorum_address"]["one"], "127.0.0.1:%d" % c.quorum_ports[i])
                self.assertEqual(command(self.admin(i), "configuration")["server_id"], i)

    def test_monitor_of_leader_and_followers(self):
        c = self.cluster
        for i in c.ids:
            with self.subTest(server=i):
                mon = command(self.admin(i), "monitor")
                want = ("leader" if i == self.leader_id
                        else "observer" if i in c.observer_ids else "follower")
                self.assertEqual(mon["server_state"], want)
                self.assertEqual(mon["quorum_size"], 2)
                self.assertTrue(mon["peer_state"].endswith(" - broadcast"))
                if i == self.leader_id:
                    self.assertEqual(mon["learners"], 2)
                    self.assertEqual(mon["synced_followers"], 1)
                    self.assertEqual(mon["synced_observers"], 1)
                else:
                    self.assertNotIn("learners", mon)

    @ringkeeper_only  # Debian's ZooKeeper has no Prometheus provider
    def test_metrics_of_an_ensemble(self):
        c = self.cluster
        for i in c.ids:
            with self.subTest(server=i):
                families = metrics(self.admin(i))
                self.assertEqual(sample(families, "quorum_size"), 2)
                self.assertGreaterEqual(sample(families, "election_time", "_count"), 1)
                self.assertGreaterEqual(sample(families, "looking_count", "_total"), 1)
                self.assertEqual(families["looking_count"].type, "counter")
                if i == self.leader_id:
                    self.assertEqual(sample(families, "learners"), 2)
                    self.assertEqual(sample(families, "synced_followers"), 1)
                else:
                    self.assertNotIn("learners", families)
