"""Installation, as an operator gets it: `cmake --install --prefix /usr`
into a staging root (DESTDIR, never the real system) lays out the
binaries, /etc/ringkeeper/zoo.cfg, the systemd unit, the sysusers.d file
and the man pages; the unit passes `systemd-analyze verify` and the
sysusers.d file makes the user (both where systemd's tools exist); the
installed binary answers --version and --check-config (0 and the
effective keys for a good file, non-zero naming the key for a bad one);
the .deb maintainer scripts run with stub commands; and cpack builds a
.deb whose contents and control fields dpkg-deb lists.

The build dir is RK_BUILD_DIR, else the one RK_BIN lives in, else build/
(configured and built if missing); it is brought up to date first, which
is a no-op after tools/test's build. No network is used."""
import glob
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import ROOT, ringkeeper_only

PROGRAMS = ("ringkeeper", "ringkeeper-bench", "ringkeeper-logdump", "ringkeeper-snapdump")
MAN_PAGES = ("man1/ringkeeper.1", "man1/ringkeeper-bench.1", "man5/zoo.cfg.5")
UNIT = "usr/lib/systemd/system/ringkeeper.service"
SYSUSERS = "usr/lib/sysusers.d/ringkeeper.conf"
CONF = "etc/ringkeeper/zoo.cfg"
STEP_TIMEOUT_S = 120  # a no-op build and install take seconds; a fresh build minutes


def build_dir():
    if os.environ.get("RK_BUILD_DIR"):
        return os.path.abspath(os.environ["RK_BUILD_DIR"])
    if os.environ.get("RK_BIN"):
        d = os.path.dirname(os.path.dirname(os.path.abspath(os.environ["RK_BIN"])))
        if os.path.exists(os.path.join(d, "CMakeCache.txt")):
            return d
    return os.path.join(ROOT, "build")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", STEP_TIMEOUT_S)
    return subprocess.run(cmd, **kw)


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(ringkeeper VERSION ([0-9.]+)", f.read()).group(1)


@ringkeeper_only
class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build = build_dir()
        if not os.path.exists(os.path.join(cls.build, "CMakeCache.txt")):
            r = run(["cmake", "-S", ROOT, "-B", cls.build, "-DCMAKE_BUILD_TYPE=Release"],
                    timeout=600)
            assert r.returncode == 0, r.stdout + r.stderr
        r = run(["cmake", "--build", cls.build, "-j", str(os.cpu_count() or 2)], timeout=1800)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        cls.tmp = tempfile.mkdtemp(prefix="rk-install-")
        cls.stage = os.path.join(cls.tmp, "stage")
        env = dict(os.environ, DESTDIR=cls.stage)
        r = run(["cmake", "--install", cls.build, "--prefix", "/usr", "--config", "Release"],
                env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        cls.install_log = r.stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def staged(self, rel):
        return os.path.join(self.stage, rel)

    def man_page(self, rel):
        """The staged man page's text, gzipped or not."""
        base = self.staged(os.path.join("usr/share/man", rel))
        if os.path.exists(base + ".gz"):
            with gzip.open(base + ".gz", "rt") as f:
                return f.read()
        with open(base) as f:
            return f.read()

    def test_layout(self):
        for p in PROGRAMS:
            path = self.staged("usr/bin/" + p)
            self.assertTrue(os.access(path, os.X_OK), path)
        if os.path.exists(os.path.join(self.build, "bin", "ringkeeper-import")):
            self.assertTrue(os.access(self.staged("usr/bin/ringkeeper-import"), os.X_OK))
            self.assertTrue(self.man_page("man1/ringkeeper-import.1").startswith(
                ".TH RINGKEEPER\\-IMPORT 1 "))
        for page in MAN_PAGES:
            text = self.man_page(page)
            self.assertTrue(text.startswith(".TH "), page)
        self.assertTrue(os.path.isfile(self.staged(CONF)))
        self.assertTrue(os.path.isfile(self.staged(UNIT)))
        self.assertTrue(os.path.isfile(self.staged("usr/share/doc/ringkeeper/operations.md")))
        with open(self.staged(SYSUSERS)) as f:
            self.assertRegex(f.read(), r"(?m)^u ringkeeper - ")
        # Nothing outside /usr and /etc.
        self.assertEqual(sorted(os.listdir(self.stage)), ["etc", "usr"])

    def test_default_config(self):
        with open(self.staged(CONF)) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^dataDir=/var/lib/ringkeeper$")
        self.assertRegex(text, r"(?m)^clientPortAddress=127\.0\.0\.1$")
        self.assertRegex(text, r"(?m)^4lw\.commands\.whitelist=srvr$")
        self.assertRegex(text, r"(?m)^admin\.serverAddress=127\.0\.0\.1$")

    def test_unit(self):
        with open(self.staged(UNIT)) as f:
            unit = f.read()
        # The paths of this install, whatever prefix the build was configured with.
        self.assertIn("\nExecStart=/usr/bin/ringkeeper /etc/ringkeeper/zoo.cfg\n", unit)
        for line in ("User=ringkeeper", "Restart=on-failure", "StateDirectory=ringkeeper",
                     "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes",
                     "PrivateTmp=yes"):
            self.assertRegex(unit, r"(?m)^%s$" % re.escape(line))
        self.assertRegex(unit, r"(?m)^LimitNOFILE=\d{6,}$")
        # io_uring must survive every system call filter.
        filters = re.findall(r"(?m)^SystemCallFilter=(.*)$", unit)
        self.assertTrue(filters)
        for f in filters:
            if f.startswith("~"):
                self.assertNotRegex(f, r"io_uring|@aio|@system-service", f)
        self.assertTrue(any("io_uring_setup" in f and "io_uring_enter" in f
                            and "io_uring_register" in f for f in filters), filters)

    def test_unit_verifies(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        # verify checks ExecStart's binary exists and Documentation's man
        # pages resolve: point both at the staging root.
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(self.staged(UNIT)) as f:
            unit = f.read().replace("ExecStart=/usr/bin/", "ExecStart=%s/usr/bin/" % self.stage)
        with open(os.path.join(d, "ringkeeper.service"), "w") as f:
            f.write(unit)
        env = dict(os.environ, MANPATH=self.staged("usr/share/man"))
        r = run([analyze, "verify", os.path.join(d, "ringkeeper.service")], env=env)
        # Unknown keys and bad values are only warnings: any output fails.
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_sysusers_makes_the_user(self):
        sysusers = shutil.which("systemd-sysusers")
        if not sysusers:
            self.skipTest("systemd-sysusers is not installed (Debian package systemd)")
        root = tempfile.mkdtemp(dir=self.tmp)
        os.mkdir(os.path.join(root, "etc"))
        r = run([sysusers, "--root", root, self.staged(SYSUSERS)])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(root, "etc/passwd")) as f:
            self.assertRegex(f.read(), r"(?m)^ringkeeper:x:\d+:\d+:[^:]*:/var/lib/ringkeeper:")

    def test_version(self):
        r = run([self.staged("usr/bin/ringkeeper"), "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("ringkeeper %s " % project_version()), r.stdout)
        self.assertRegex(r.stdout, r"(?m)^build: ")
        self.assertRegex(r.stdout, r"(?m)^formats: txn log \d+, snapshot \d+")

    def test_check_config(self):
        bin_ = self.staged("usr/bin/ringkeeper")
        r = run([bin_, "--check-config", self.staged(CONF)])
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in ("dataDir=/var/lib/ringkeeper", "clientPort=2181",
                     "clientPortAddress=127.0.0.1", "4lw.commands.whitelist=srvr",
                     "autopurge.purgeInterval=1"):
            self.assertIn(line, r.stdout.splitlines())
        bad = os.path.join(self.tmp, "bad.cfg")
        with open(bad, "w") as f:
            f.write("dataDir=%s\ntickTime=soon\n" % self.tmp)
        r = run([bin_, "--check-config", bad])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "")
        self.assertIn("tickTime", r.stderr)
        self.assertIn("bad.cfg:2", r.stderr)

    def test_check_config_ensemble(self):
        bin_ = self.staged("usr/bin/ringkeeper")
        data = os.path.join(self.tmp, "ens-data")
        os.makedirs(data, exist_ok=True)
        cfg = os.path.join(self.tmp, "ens.cfg")
        with open(cfg, "w") as f:
            f.write("dataDir=%s\n" % data)
            for i in (1, 2, 3):
                f.write("server.%d=127.0.0.1:%d:%d;%d\n" % (i, 2887 + i, 3887 + i, 2180 + i))
        r = run([bin_, "--check-config", cfg])  # no myid yet
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("myid", r.stderr)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write("2\n")
        r = run([bin_, "--check-config", cfg])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.splitlines()
        self.assertIn("serverId=2", out)
        self.assertIn("clientPort=2182", out)  # from server.2's client part
        with open(os.path.join(data, "myid"), "w") as f:
            f.write("7\n")
        r = run([bin_, "--check-config", cfg])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("myid 7", r.stderr)

    def test_maintainer_scripts(self):
        """postinst makes the user and the data dir, with every command it
        runs replaced by a stub that logs its arguments."""
        d = os.path.join(ROOT, "dist", "debian")
        stubs = tempfile.mkdtemp(dir=self.tmp)
        log = os.path.join(stubs, "calls")
        for cmd in ("systemd-sysusers", "getent", "adduser", "install", "systemctl"):
            with open(os.path.join(stubs, cmd), "w") as f:
                f.write('#!/bin/sh\necho "%s $*" >> %s\n' % (cmd, log))
            os.chmod(os.path.join(stubs, cmd), 0o755)
        env = dict(os.environ, PATH=stubs + ":/usr/bin:/bin")
        for script in ("postinst", "prerm", "postrm"):
            r = run(["sh", "-n", os.path.join(d, script)])
            self.assertEqual(r.returncode, 0, script + ": " + r.stderr)
        r = run(["sh", os.path.join(d, "postinst"), "configure"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(log) as f:
            calls = f.read()
        self.assertIn("systemd-sysusers /usr/lib/sysusers.d/ringkeeper.conf", calls)
        if not os.path.isdir("/var/lib/ringkeeper"):
            self.assertIn("install -d -o ringkeeper -g ringkeeper -m 0750 /var/lib/ringkeeper",
                          calls)
        with open(os.path.join(d, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/ringkeeper/zoo.cfg"])

    def test_deb(self):
        cpack, dpkg_deb = shutil.which("cpack"), shutil.which("dpkg-deb")
        if not cpack or not dpkg_deb:
            self.skipTest("cpack or dpkg-deb is not installed")
        out = tempfile.mkdtemp(dir=self.tmp)
        r = run([cpack, "-G", "DEB", "-B", out, "--config",
                 os.path.join(self.build, "CPackConfig.cmake")], cwd=self.build)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        debs = glob.glob(os.path.join(out, "ringkeeper_*.deb"))
        self.assertEqual(len(debs), 1, os.listdir(out))
        contents = run([dpkg_deb, "-c", debs[0]]).stdout
        print("\n" + contents)
        for p in PROGRAMS:
            self.assertIn(" ./usr/bin/%s\n" % p, contents)
        for p in (CONF, UNIT, SYSUSERS):
            self.assertIn(" ./%s\n" % p, contents)
        for page in MAN_PAGES:
            self.assertRegex(contents, r" \./usr/share/man/%s(\.gz)?\n" % re.escape(page))
        info = run([dpkg_deb, "-I", debs[0]]).stdout
        self.assertRegex(info, r"(?m)^ Package: ringkeeper$")
        self.assertRegex(info, r"(?m)^ Version: %s$" % re.escape(project_version()))
        self.assertRegex(info, r"(?m)^ Maintainer: .+<.+>$")
        depends = re.search(r"(?m)^ Depends: (.*)$", info).group(1)
        with open(os.path.join(self.build, "CMakeCache.txt")) as f:
            sanitized = re.search(r"(?m)^RK_SANITIZE:BOOL=ON$", f.read())
        # A sanitizer build links ASan's allocator instead of jemalloc.
        for lib in ("liburing2", "libxxhash0") + (() if sanitized else ("libjemalloc2",)):
            self.assertIn(lib, depends)
        ctrl = run([dpkg_deb, "-e", debs[0], os.path.join(out, "DEBIAN")])
        self.assertEqual(ctrl.returncode, 0, ctrl.stderr)
        with open(os.path.join(out, "DEBIAN", "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/ringkeeper/zoo.cfg"])
        for script in ("postinst", "prerm", "postrm"):
            self.assertTrue(os.access(os.path.join(out, "DEBIAN", script), os.X_OK), script)


if __name__ == "__main__":
    unittest.main()
