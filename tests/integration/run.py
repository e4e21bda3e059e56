#!/usr/bin/python3
"""Runs the integration tests (every test_*.py here, or the names given, e.g.
`run.py test_acl test_watches.WatchTest.test_exists_watch`) and closes with
`N passed, N failed`. A test whose class could not start its server counts
as failed, so a server that does not start cannot pass silently."""
import logging
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0
        self.class_s = {}  # seconds per test class, server start included
        self.t_last = time.monotonic()

    def startTest(self, test):
        # Time since the previous test is the class's set-up (server start).
        self.t0 = self.t_last
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.t_last = time.monotonic()
        name = type(test).__module__ + "." + type(test).__name__
        self.class_s[name] = self.class_s.get(name, 0) + self.t_last - self.t0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(names):
    # kazoo logs each reconnect at WARNING; the tests assert on states instead.
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    loader = unittest.TestLoader()
    if names:
        suite = loader.loadTestsFromNames(names)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    total = suite.countTestCases()
    print("target: %s, %d tests" % (os.environ.get("RK_TARGET", "ringkeeper"), total),
          flush=True)
    start = time.monotonic()
    runner = unittest.TextTestRunner(resultclass=CountingResult, verbosity=2,
                                     stream=sys.stdout)
    try:
        result = runner.run(suite)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 143
    skipped = len(result.skipped)
    # Tests that never ran (their class failed to start a server) count as
    # failed; so does a class whose server crashed or logged a sanitizer report.
    teardowns = sum(1 for t, _ in result.errors
                    if isinstance(t, unittest.suite._ErrorHolder) and "tearDown" in str(t))
    failed = total - result.passed - skipped + teardowns
    for name, secs in sorted(result.class_s.items()):
        print("  %6.1f s  %s" % (secs, name))
    print("integration time: %.1f s" % (time.monotonic() - start))
    line = "%d passed, %d failed" % (result.passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line, flush=True)
    return 0 if failed == 0 and result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
