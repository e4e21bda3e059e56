"""tools/status against a live three-server ensemble and a standalone
server: it finds the servers from a member's zoo.cfg or from HOST:PORT
arguments, reports one leader and two followers at the leader's zxid, the
leader's learner counts from mntr, a killed server as down (exit 1), and
says so when mntr is not whitelisted. The same four-letter words come from
Apache ZooKeeper, so it runs against either target."""
import json
import os
import subprocess

from harness import ROOT, Server, wait_until
from test_ensemble import EnsembleCase

STATUS = os.path.join(ROOT, "tools", "status")
RUN_TIMEOUT_S = 30


def status(*args):
    return subprocess.run(["/usr/bin/python3", STATUS, *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


def summary(hosts):
    return json.loads(status("--json", *hosts.split(",")).stdout)["summary"]


class StatusToolTest(EnsembleCase):
    def test_ensemble_at_a_glance(self):
        c = self.cluster(3)
        c.wait_quorum()
        zk = self.kazoo(c.hosts)
        for i in range(20):
            zk.create("/status-%d" % i, b"x")
        lead = c.members[c.leader()].hosts
        # The leader's mntr counts its followers once they are in sync.
        self.assertTrue(wait_until(lambda: summary(c.hosts).get("synced_followers") == 2, 20))

        r = status(c.members[1].cfg)  # the servers come from the server.N lines
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("SERVER"), r.stdout)
        rows = {ln.split()[0]: ln.split() for ln in lines[1:4]}
        self.assertEqual(set(rows), set(c.hosts.split(",")), r.stdout)
        self.assertEqual(sorted(row[1] for row in rows.values()),
                         ["follower", "follower", "leader"], r.stdout)
        self.assertEqual(rows[lead][1], "leader", r.stdout)
        self.assertIn("leader %s" % lead, r.stdout)
        self.assertIn("3 of 3 servers answered", r.stdout)

        r = status("--json", *c.hosts.split(","))
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        by_server = {s["server"]: s for s in doc["servers"]}
        self.assertEqual(doc["summary"]["leader"], lead)
        self.assertEqual(doc["summary"]["learners"], 2)
        self.assertEqual(doc["summary"]["synced_followers"], 2)
        self.assertGreaterEqual(by_server[lead]["znodes"], 20)
        for s in doc["servers"]:
            self.assertGreaterEqual(s["zxid"], 20, s)
            self.assertIsInstance(s["connections"], int, s)
            self.assertEqual(s["outstanding"], 0, s)
            self.assertRegex(s["latency_ms"], r"^\d+/[\d.]+/\d+$", s)
            if s["server"] != lead:
                # No writes in flight: every follower has what the leader has.
                self.assertEqual(s["lag"], 0, s)

        follower = next(i for i in c.ids if c.members[i].hosts != lead)
        c.kill(follower)
        r = status(*c.hosts.split(","))
        self.assertEqual(r.returncode, 1, r.stdout)
        down = [ln for ln in r.stdout.splitlines() if ln.startswith(c.members[follower].hosts)]
        self.assertEqual(len(down), 1, r.stdout)
        self.assertEqual(down[0].split()[1], "down", r.stdout)
        self.assertIn("2 of 3 servers answered", r.stdout)

    def test_standalone_without_mntr(self):
        s = Server(tick_ms=2000, extra_cfg=["4lw.commands.whitelist=srvr"])
        self.addCleanup(s.destroy)
        s.start()
        r = status(s.hosts)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[1].split()[1], "standalone", r.stdout)
        self.assertIn("mntr not in the whitelist", r.stdout)

    def test_bad_arguments(self):
        r = status("no-port-here")
        self.assertEqual(r.returncode, 2)
        self.assertIn("HOST:PORT", r.stderr)
