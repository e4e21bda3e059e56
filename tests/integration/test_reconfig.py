"""reconfig (opcode 16) answered as ZooKeeper 3.8 answers it: "Reconfig is
disabled" (ZRECONFIGDISABLED) while reconfigEnabled is false, the default,
on a standalone server and on every member of an ensemble; and
ZUNIMPLEMENTED on a standalone server with reconfigEnabled=true, where
ZooKeeper supports no reconfiguration. Either way the request is a failed
write: it takes a zxid, which the reply carries, and the session goes on.
Ringkeeper does not reconfigure ensembles, so it is not asked to here
(ZooKeeper with reconfigEnabled=true would)."""
import struct

import zkwire
from harness import Server, ServerTestCase, fourlw
from test_ensemble import EnsembleCase

OP_RECONFIG = 16
ZRECONFIGDISABLED, ZUNIMPLEMENTED = -123, -6


def reconfig_body(joining="", leaving="", members=None, config_id=-1):
    """ReconfigRequest: joiningServers, leavingServers, newMembers (ustring,
    -1 for null), curConfigId."""
    def ustring(s):
        return struct.pack(">i", -1) if s is None else zkwire.put_string(s)
    return ustring(joining) + ustring(leaving) + ustring(members) + struct.pack(">q", config_id)


def srvr_zxid(port):
    for line in fourlw(port, "srvr").splitlines():
        if line.startswith("Zxid: "):
            return int(line[6:], 16)
    raise AssertionError("no Zxid line in srvr")


class ReconfigChecks:
    def reconfig(self, port, expected_err):
        c = zkwire.session(port)
        self.addCleanup(c.close)
        before = srvr_zxid(port)
        xid = c.send_request(OP_RECONFIG, reconfig_body("server.5=127.0.0.1:1234:1235;1236"))
        rxid, zxid, err, _ = c.read_reply()
        self.assertEqual((rxid, err), (xid, expected_err))
        # An error txn: the zxid moved past what it was, and the reply says so.
        self.assertGreater(zxid, before)
        self.assertEqual(srvr_zxid(port), zxid)
        # The session is still good for reads and writes.
        self.assertEqual(c.create("/after-reconfig-%d" % port)[0], 0)
        self.assertEqual(c.exists("/")[0], 0)


class ReconfigDisabledTest(ServerTestCase, ReconfigChecks):
    def test_standalone_default_says_disabled(self):
        self.reconfig(self.server.port, ZRECONFIGDISABLED)

    def test_remove_and_new_members_say_disabled_too(self):
        c = self.raw()
        for body in (reconfig_body(leaving="3"),
                     reconfig_body(joining=None, leaving=None, members="server.1=127.0.0.1:1:2;3")):
            xid = c.send_request(OP_RECONFIG, body)
            rxid, _, err, _ = c.read_reply()
            self.assertEqual((rxid, err), (xid, ZRECONFIGDISABLED))


class ReconfigEnabledStandaloneTest(ServerTestCase, ReconfigChecks):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(tick_ms=cls.tick_ms)
        with open(cls.server.cfg, "a") as f:
            f.write("reconfigEnabled=true\n")
        try:
            cls.server.start()
        except Exception:
            cls.server.destroy()
            raise

    def test_standalone_with_reconfig_enabled_says_unimplemented(self):
        self.reconfig(self.server.port, ZUNIMPLEMENTED)


class ReconfigEnsembleTest(EnsembleCase, ReconfigChecks):
    def test_leader_and_follower_say_disabled(self):
        c = self.cluster(3)
        leader = c.wait_quorum()
        follower = next(i for i in c.ids if i != leader)
        self.reconfig(c.client_ports[leader], ZRECONFIGDISABLED)
        self.reconfig(c.client_ports[follower], ZRECONFIGDISABLED)
