#!/usr/bin/env python3
"""Runs the real server against plugins.d directories that each hold one
defect, and proves the loader refuses every one: the server exits non-zero
within 10 s, never listens, and its stderr names the offending plugins.d
file and the reason. A positive control (the same directory without the
defect) must start, listen and stop cleanly on SIGTERM.

usage: run_broken.py --build-dir BUILD --fixtures DIR

BUILD holds bin/exampleim and lib/exampleim/plugins/{auth-jwt,store-sqlite}.so;
DIR holds the fixtures built by this folder's CMakeLists.txt. Exits 0 when
every case passes, 1 when one fails, 77 (skip) while the server or
store-sqlite is not built yet.
"""
import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
TIMEOUT = 10.0
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


class Case:
    """One plugins.d set-up. confs: [(file name, text)]; blame: the file
    name the error must cite (None: the plugins.d directory itself)."""

    def __init__(self, name, confs, expect=(), blame=None, starts=False):
        self.name = name
        self.confs = confs
        self.expect = expect
        self.blame = blame
        self.starts = starts


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Server:
    """The server process with its stderr collected as it arrives."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.err = b""

    def pump(self, timeout):
        """Waits up to timeout for stderr output; False once it is closed."""
        fd = self.proc.stderr.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(fd, 65536)
        self.err += chunk
        return bool(chunk)

    def text(self):
        return self.err.decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish(TIMEOUT)

    def finish(self, timeout):
        """Drains stderr and reaps; returns the exit status or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pump(max(0.0, deadline - time.monotonic())):
            pass
        try:
            return self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None


def write_setup(tmp, case):
    """Writes the server config, the plugins.d files and a data directory;
    returns (config path, plugins.d path, data dir)."""
    pdir = os.path.join(tmp, "plugins.d")
    data = os.path.join(tmp, "data")
    os.mkdir(pdir)
    os.mkdir(data)
    conf = os.path.join(tmp, "exampleim.conf")
    with open(conf, "w") as f:
        f.write("# plugins-broken test: everything else comes from flags\n")
    for name, text in case.confs:
        with open(os.path.join(pdir, name), "w") as f:
            f.write(text)
    return conf, pdir, data


def check_refused(srv, port, pdir, case):
    """Watches a server that must refuse to start. Returns a list of
    problems (empty on success)."""
    problems = []
    listened = False
    deadline = time.monotonic() + TIMEOUT
    start = time.monotonic()
    # Probe the port between reads: a server that listens, even briefly,
    # before giving up has failed the contract.
    while srv.proc.poll() is None and time.monotonic() < deadline:
        srv.pump(0.02)
        listened = listened or port_accepts(port)
    if srv.proc.poll() is None:
        problems.append("still running after %.0f s" % TIMEOUT)
        srv.kill()
        return problems
    rc = srv.finish(TIMEOUT)
    elapsed = time.monotonic() - start
    err = srv.text()
    blame = os.path.join(pdir, case.blame) if case.blame else pdir
    if rc is None or rc == 0:
        problems.append("exit status %r, expected non-zero" % rc)
    elif rc < 0:
        problems.append("killed by signal %d (a crash, not a refusal)" % -rc)
    if listened or 'msg="listening"' in err:
        problems.append("the server listened on port %d" % port)
    if not port_free(port):
        problems.append("port %d still taken after exit" % port)
    if blame not in err:
        problems.append("stderr does not name %s" % blame)
    for phrase in case.expect:
        if phrase not in err:
            problems.append("stderr lacks %r" % phrase)
    for mark in SANITIZER_MARKS:
        if mark in err:
            problems.append("sanitizer report in stderr (%s)" % mark)
    if not problems:
        print("    exited %d after %.2f s" % (rc, elapsed))
    return problems


def check_starts(srv, port):
    """Watches a server that must start: the listening log line, a
    connection accepted, then exit 0 on SIGTERM."""
    problems = []
    deadline = time.monotonic() + TIMEOUT
    start = time.monotonic()
    while 'msg="listening"' not in srv.text():
        if time.monotonic() >= deadline:
            problems.append('no msg="listening" within %.0f s' % TIMEOUT)
            break
        if not srv.pump(max(0.0, deadline - time.monotonic())):
            problems.append("stderr closed (exit %r) before listening" % srv.proc.poll())
            break
    if problems:
        srv.kill()
        return problems
    up = time.monotonic() - start
    if not port_accepts(port):
        problems.append("logged listening but port %d refuses connections" % port)
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.finish(TIMEOUT)
    if rc is None:
        problems.append("did not exit within %.0f s of SIGTERM" % TIMEOUT)
        srv.kill()
    elif rc != 0:
        problems.append("exit status %d after SIGTERM, expected 0" % rc)
    for mark in SANITIZER_MARKS:
        if mark in srv.text():
            problems.append("sanitizer report in stderr (%s)" % mark)
    if not problems:
        print("    listening after %.2f s, exited 0 on SIGTERM" % up)
    return problems


def cases(fixtures, secret_file):
    def so(name):
        return os.path.join(fixtures, name + ".so")

    auth = ("10-auth-jwt.conf",
            "# the real auth plugin\nplugin = auth-jwt\nenabled = true\n"
            "secret_file = %s\n" % secret_file)
    store = ("20-store-sqlite.conf", "plugin = store-sqlite\nenabled = true\n")

    def broken(fixture, extra=""):
        return ("30-broken.conf", "plugin = %s\nenabled = true\n%s" % (so(fixture), extra))

    return [
        Case("control: auth-jwt + store-sqlite start", [auth, store], starts=True),
        Case("control: a disabled broken plugin is not loaded",
             [auth, store, ("30-off.conf", "plugin = %s\nenabled = false\n"
                            % so("broken_abi_major"))], starts=True),
        Case("wrong ABI major", [auth, store, broken("broken_abi_major")],
             ["ABI major"], "30-broken.conf"),
        Case("descriptor too small", [auth, store, broken("broken_small_desc")],
             ["descriptor"], "30-broken.conf"),
        Case("store without append",
             [auth, ("20-store-broken.conf",
                     "plugin = %s\nenabled = true\n" % so("broken_no_append"))],
             ["missing", "append"], "20-store-broken.conf"),
        Case("no eim_plugin_describe symbol", [auth, store, broken("broken_no_symbol")],
             ["eim_plugin_describe"], "30-broken.conf"),
        Case("init fails", [auth, store, broken("broken_init_fails")],
             ["init failed", "cannot reach the licence server at 127.0.0.1:9"],
             "30-broken.conf"),
        Case("unknown key", [auth, store, broken("broken_unknown_key", "bogus_key = 1\n")],
             ["unknown key 'bogus_key'"], "30-broken.conf"),
        Case("two stores",
             [auth, store, ("30-store-second.conf",
                            "plugin = %s\nenabled = true\n" % so("fixture_store"))],
             ["exactly one store"], "30-store-second.conf"),
        Case("no auth", [store], ["exactly one auth"], None),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--fixtures", required=True)
    args = ap.parse_args()

    server = os.path.join(args.build_dir, "bin", "exampleim")
    plugin_path = os.path.join(args.build_dir, "lib", "exampleim", "plugins")
    needed = [server] + [os.path.join(plugin_path, p + ".so")
                         for p in ("auth-jwt", "store-sqlite")]
    missing = [p for p in needed if not os.path.exists(p)]
    if missing:
        print("SKIP: not built yet: " + ", ".join(missing))
        return SKIP
    fixtures = ["broken_abi_major", "broken_small_desc", "broken_no_append",
                "broken_no_symbol", "broken_init_fails", "broken_unknown_key",
                "fixture_store"]
    missing = [f for f in fixtures
               if not os.path.exists(os.path.join(args.fixtures, f + ".so"))]
    if missing:
        print("FAIL: fixtures not built (cmake --build BUILD --target "
              "plugins-broken-fixtures): " + ", ".join(missing))
        return 1

    failed = 0
    with tempfile.TemporaryDirectory(prefix="plugins-broken.") as root:
        secret_file = os.path.join(root, "jwt-secret")
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (os.urandom(32).hex() + "\n").encode())
        os.close(fd)
        for i, case in enumerate(cases(os.path.abspath(args.fixtures), secret_file)):
            tmp = os.path.join(root, "case%d" % i)
            os.mkdir(tmp)
            conf, pdir, data = write_setup(tmp, case)
            port = free_port()
            print("case: %s" % case.name, flush=True)
            srv = Server([server, "--config", conf, "--listen", "127.0.0.1:%d" % port,
                          "--data-dir", data, "--plugins-dir", pdir,
                          "--plugin-path", plugin_path])
            problems = (check_starts(srv, port) if case.starts
                        else check_refused(srv, port, pdir, case))
            if problems:
                failed += 1
                print("  FAIL: " + "; ".join(problems))
                print("  --- server stderr ---\n" + srv.text() + "  ---------------------")
            else:
                print("  ok")
            sys.stdout.flush()
    print("%d case(s) failed" % failed if failed else "all cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
