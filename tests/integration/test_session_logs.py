"""The server log names the session a line is about ("[session 0x...]"), so
one session's connection, requests and end can be followed with grep:
established, resumed, refused, closed by its client, expired."""
import re
import time

import zkwire
from harness import ServerTestCase, ringkeeper_only, wait_until


@ringkeeper_only  # reads Ringkeeper's own log format
class SessionLogTest(ServerTestCase):
    tick_ms = 200  # sessions may be as short as 400 ms

    def log(self):
        with open(self.server.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout_s=10):
        rx = re.compile(pattern, re.M)
        if not wait_until(lambda: rx.search(self.log()), timeout_s, 0.05):
            self.fail("no log line matches /%s/; log tail:\n%s"
                      % (pattern, self.server.log_tail()))

    def tag(self, session_id):
        return re.escape("[session 0x%x]" % session_id)

    def test_open_resume_and_close_carry_the_session_id(self):
        c = zkwire.session(self.server.port, 4000)
        sid, pw = c.session_id, c.passwd
        tag = self.tag(sid)
        self.wait_log(tag + r" session established from 127\.0\.0\.1, timeout 4000 ms$")
        c.close()
        self.wait_log(tag + r" closing connection from 127\.0\.0\.1: client closed the connection$")
        again = zkwire.Conn(self.server.port)
        self.addCleanup(again.close)
        self.assertEqual(again.handshake(4000, sid, pw)[1], sid)
        self.wait_log(tag + r" session resumed from 127\.0\.0\.1, timeout 4000 ms$")
        self.assertEqual(again.close_session(), 0)
        self.wait_log(tag + r" session closed by client$")

    def test_expiry_and_a_refused_resume_carry_the_session_id(self):
        c = zkwire.session(self.server.port, 400)
        sid, pw = c.session_id, c.passwd
        tag = self.tag(sid)
        # No pings: the session expires, and its connection is closed.
        self.wait_log(tag + r" session expired after 400 ms without contact$")
        self.wait_log(tag + r" closing connection from 127\.0\.0\.1: session expired$")
        c.close()
        late = zkwire.Conn(self.server.port)
        self.addCleanup(late.close)
        self.assertEqual(late.handshake(4000, sid, pw)[1], 0)
        self.wait_log(tag + r" refusing resume from 127\.0\.0\.1: session expired or invalid$")
