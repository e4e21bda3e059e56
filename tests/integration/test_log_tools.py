"""The txn log on disk, through ringkeeper-logdump and the server's recovery
(docs/storage.md): after a clean stop logdump lists every write; a flipped
byte in a frame that a valid frame follows is corruption: logdump exits 1
and the server refuses to start, both naming the file and offset; a torn
tail (the newest segment's last frame cut short) is cut at start-up with a
log line saying so, and every earlier write is still there.

Segment layout (storage/wal.h): a 64-byte segment header in block 0, then
frames at 4 KiB boundaries, each a 48-byte frame header (magic "RKWF",
records, db_id, zxid_first, zxid_last, bytes, batches, checksum) followed by
records (24-byte header: zxid, len, type, checksum; then the payload)."""
import glob
import os
import re
import struct
import subprocess
import unittest

import zkwire
from harness import ROOT, Server

LOGDUMP = os.environ.get("RK_LOGDUMP", os.path.join(ROOT, "build/bin/ringkeeper-logdump"))
BLOCK = 4096
FRAME_MAGIC = 0x46574B52
FRAME_HDR = struct.Struct("<IIQqqIIQ")  # struct wal_frame_header, 48 bytes
REC_HDR = struct.Struct("<qIIQ")  # struct wal_record_header, 24 bytes
WRITES = 24
LAST_DATA = bytes(range(256)) * 40
RUN_TIMEOUT_S = 30


def frames(path):
    """(offset, zxid_first, zxid_last, bytes) of each frame of a segment, in
    order, up to the first block that does not start a frame."""
    out = []
    with open(path, "rb") as f:
        off = BLOCK
        while True:
            f.seek(off)
            head = f.read(FRAME_HDR.size)
            if len(head) < FRAME_HDR.size:
                return out
            magic, _, _, first, last, nbytes, _, _ = FRAME_HDR.unpack(head)
            if magic != FRAME_MAGIC or nbytes < FRAME_HDR.size:
                return out
            out.append((off, first, last, nbytes))
            off += (nbytes + BLOCK - 1) // BLOCK * BLOCK


def newest_segment(log_dir):
    segs = sorted(p for p in glob.glob(os.path.join(log_dir, "log.*")) if not p.endswith(".tmp"))
    assert segs, "no segment in " + log_dir
    return segs[-1]


def logdump(path):
    return subprocess.run([LOGDUMP, path], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


class LogToolsTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.destroy)
        self.addCleanup(self.assert_no_problems)
        self.server.start()
        self.log_dir = os.path.join(self.server.data_dir, "txnlog")
        self.acked = self.write_some()
        self.server.stop()  # SIGTERM: a clean stop

    def write_some(self):
        """Serial writes, each its own frame, the last a create of
        /logtools/last with 10 KiB of data; returns {path: (data, mzxid)}
        for the nodes left, as a read at the end sees them."""
        self.gone = "/logtools/k01"
        c = zkwire.session(self.server.port)
        try:
            base = "/logtools"
            self.assertEqual(c.create(base)[0], zkwire.ZOK)
            for i in range(WRITES):
                self.assertEqual(c.create("%s/k%02d" % (base, i), b"v%d" % i)[0], zkwire.ZOK)
            for i in range(0, WRITES, 3):
                err, _ = c.call(zkwire.OP_SET_DATA,
                                zkwire.set_body("%s/k%02d" % (base, i), b"w%d" % i, 0))
                self.assertEqual(err, zkwire.ZOK)
            self.assertEqual(c.call(zkwire.OP_DELETE, zkwire.delete_body(self.gone))[0],
                             zkwire.ZOK)
            # Bigger than a block, so its frame spans three of them.
            self.assertEqual(c.create(base + "/last", LAST_DATA)[0], zkwire.ZOK)
            out = {}
            for i in range(WRITES):
                err, got = c.get("%s/k%02d" % (base, i))
                if err == zkwire.ZOK:
                    out["%s/k%02d" % (base, i)] = (got[0], got[1]["mzxid"])
            err, got = c.get(base + "/last")
            out[base + "/last"] = (got[0], got[1]["mzxid"])
            return out
        finally:
            c.close()  # the session stays open: its close would be a txn

    def assert_tree(self, want):
        c = zkwire.session(self.server.port)
        try:
            self.assertEqual(c.get(self.gone)[0], zkwire.ZNONODE, self.gone)
            for path in sorted(self.acked):
                err, got = c.get(path)
                if path in want:
                    self.assertEqual(err, zkwire.ZOK, path)
                    self.assertEqual((got[0], got[1]["mzxid"]), want[path], path)
                else:
                    self.assertEqual(err, zkwire.ZNONODE, path + " should be gone")
        finally:
            c.close()

    def run_server_expecting_refusal(self):
        """Runs the server on the data dir; it must exit non-zero by itself."""
        try:
            p = subprocess.run(self.server.command(), cwd=self.server.dir, capture_output=True,
                               text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.fail("the server started on a corrupt log")
        self.assertNotEqual(p.returncode, 0, "the server exited 0 on a corrupt log")
        return p.stdout + p.stderr

    def test_logdump_lists_every_write(self):
        p = logdump(self.log_dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        seg = os.path.basename(newest_segment(self.log_dir))
        self.assertIn("%s: OK" % seg, p.stdout)
        listed = {int(z, 16) for z in re.findall(r"^ +zxid 0x([0-9a-f]+) type \d+ len \d+ @\d+ "
                                                  r"checksum OK$", p.stdout, re.M)}
        self.assertNotIn("BAD", p.stdout)
        # creates + sets + the delete + two sessions (the harness's probe, ours)
        self.assertGreaterEqual(len(listed), 1 + WRITES + WRITES // 3 + 1 + 2)
        for path, (_, mzxid) in self.acked.items():
            self.assertIn(mzxid, listed, path)
        # One file works too.
        p = logdump(newest_segment(self.log_dir))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(set(map(lambda z: int(z, 16),
                                 re.findall(r"^ +zxid 0x([0-9a-f]+) type", p.stdout, re.M))),
                         listed)

    def test_flipped_byte_mid_log_is_refused(self):
        seg = newest_segment(self.log_dir)
        fr = frames(seg)
        self.assertGreaterEqual(len(fr), 10)
        off, first, _, nbytes = fr[len(fr) // 2]  # valid frames follow it
        with open(seg, "rb") as f:
            f.seek(off + FRAME_HDR.size)
            _, plen, _, _ = REC_HDR.unpack(f.read(REC_HDR.size))
        at = off + FRAME_HDR.size + REC_HDR.size + plen // 2  # in the first record's payload
        self.assertLess(at, off + nbytes)
        flip(seg, at)
        before = read_upto(seg, fr[-1][0] + BLOCK)

        p = logdump(self.log_dir)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        m = re.search(re.escape(seg) + r": corrupt at offset (\d+)", p.stderr)
        self.assertTrue(m, p.stderr)
        self.assertTrue(off <= int(m.group(1)) < off + nbytes, (m.group(0), off, nbytes))

        out = self.run_server_expecting_refusal()
        m = re.search(re.escape(seg) + r": corrupt at offset (\d+)", out)
        self.assertTrue(m, "the refusal names no file and offset:\n" + out)
        self.assertTrue(off <= int(m.group(1)) < off + nbytes, (m.group(0), off, nbytes))
        self.assertEqual(read_upto(seg, fr[-1][0] + BLOCK), before, "the refused log was changed")

        # The flip is all that was wrong: undone, the log is whole again.
        flip(seg, at)
        self.server.start()
        self.assert_tree(self.acked)
        self.assertNotIn("torn tail", self.server_log())

    def test_torn_tail_truncated_is_cut_and_earlier_writes_stay(self):
        """The newest segment's file ends a few bytes short of its last
        frame. (The cut keeps the file's shorter size, so the server goes on
        in a new segment; a crash cannot shorten a preallocated segment.)"""
        seg = newest_segment(self.log_dir)
        off, first, _, nbytes = frames(seg)[-1]
        self.assertGreater(nbytes, BLOCK)  # else the cut lands in a partial block
        os.truncate(seg, off + nbytes - 3)
        self.check_torn_tail_cut(seg, off, first)

    def test_torn_write_zeroed_tail_is_cut_and_earlier_writes_stay(self):
        """The last write landed but for its final bytes: what a torn write
        leaves in a preallocated segment (still zeros there)."""
        seg = newest_segment(self.log_dir)
        off, first, _, nbytes = frames(seg)[-1]
        with open(seg, "r+b") as f:
            f.seek(off + nbytes - 5)
            f.write(b"\0" * 5)
        after = self.check_torn_tail_cut(seg, off, first)
        # The next frames went where the torn one was, in the same segment.
        self.assertEqual(newest_segment(self.log_dir), seg)
        self.assertIn(off, [f[0] for f in after])

    def check_torn_tail_cut(self, seg, off, first):
        """The frame at off (zxid first, the create of /logtools/last) is torn:
        logdump still passes the log, the server cuts it there, says so, and
        keeps every earlier write; the log goes on from the cut."""
        p = logdump(self.log_dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("torn tail at offset %d" % off, p.stdout)

        self.server.start()
        log = self.server_log()
        m = re.search(r"torn tail in " + re.escape(seg) + r" at offset (\d+).*truncat", log)
        self.assertTrue(m, "no log line about cutting the torn tail:\n" + log)
        self.assertEqual(int(m.group(1)), off)
        want = {p: v for p, v in self.acked.items() if v[1] < first}
        self.assertEqual(sorted(set(self.acked) - set(want)), ["/logtools/last"])
        self.assert_tree(want)

        c = zkwire.session(self.server.port)
        self.assertEqual(c.create("/after-cut", b"x")[0], zkwire.ZOK)
        c.close()
        self.server.restart()
        self.assert_tree(want)
        c = zkwire.session(self.server.port)
        self.assertEqual(c.get("/after-cut")[1][0], b"x")
        c.close()
        self.server.stop()
        p = logdump(self.log_dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("torn tail", p.stdout)
        self.assertEqual(self.server_log().count("torn tail"), 1)
        return frames(seg)

    def assert_no_problems(self):
        self.server.stop()
        problems = self.server.problems()
        self.assertEqual(problems, [], self.server.log_tail())

    def server_log(self):
        with open(self.server.log_path, errors="replace") as f:
            return f.read()


def read_upto(path, n):
    """The file's size and its first n bytes."""
    with open(path, "rb") as f:
        return os.fstat(f.fileno()).st_size, f.read(n)


def flip(path, at):
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0xFF]))


if __name__ == "__main__":
    unittest.main()
