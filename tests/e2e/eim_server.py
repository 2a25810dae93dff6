"""Starts and stops a real exampleim server process for the e2e suite.

The server is the binary built in $EIM_BUILD_DIR (default: build/ at the top
of the work tree), started with a config file and a plugins.d directory that
this module writes into a private temporary directory. The store plugin is
chosen by $EIM_E2E_STORE (sqlite, mysql or mongo); see README.md.
"""

import os
import re
import secrets
import signal
import subprocess
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r'\bmsg="?listening"?(\s|$)')
ADDR = re.compile(r'\baddr="?(?P<host>[^\s"]+):(?P<port>\d+)')
START_TIMEOUT = float(os.environ.get("EIM_E2E_START_TIMEOUT", "30"))


class ServerError(Exception):
    """The server did not start, or misbehaved on shutdown."""


def build_dir():
    return Path(os.environ.get("EIM_BUILD_DIR", REPO / "build"))


def store_kind():
    return os.environ.get("EIM_E2E_STORE", "sqlite")


def store_settings(data_dir):
    """The plugins.d entry of the store selected by $EIM_E2E_STORE, as an
    ordered dict of keys. Each call for mongo names a fresh database, so a
    server restarted on the same data must reuse the dict, not call again."""
    kind = store_kind()
    if kind == "sqlite":
        return {"plugin": "store-sqlite", "enabled": "true",
                "path": str(Path(data_dir) / "exampleim.sqlite")}
    if kind == "mysql":
        env = {k: os.environ.get("MYSQL_" + k.upper())
               for k in ("host", "port", "user", "password", "database")}
        missing = [f"MYSQL_{k.upper()}" for k, v in env.items() if v is None]
        if missing:
            raise ServerError(f"EIM_E2E_STORE=mysql needs {', '.join(missing)}")
        return {"plugin": "store-mysql", "enabled": "true", **env}
    if kind == "mongo":
        uri = os.environ.get("MONGO_URI")
        if not uri:
            raise ServerError("EIM_E2E_STORE=mongo needs MONGO_URI")
        return {"plugin": "store-mongo", "enabled": "true", "uri": uri,
                "database": "eim_e2e_" + secrets.token_hex(6)}
    raise ServerError(f"unknown EIM_E2E_STORE={kind!r} (sqlite, mysql or mongo)")


def _write_conf(path, entries):
    lines = [f"{k} = {v}" for k, v in entries.items()]
    path.write_text("\n".join(lines) + "\n")
    # The plugins.d files may hold a database password and the JWT secret.
    path.chmod(0o600)


class Server:
    """One server process. `root` is a private directory (the data dir and
    the config live under it); `conf` overrides exampleim.conf keys and
    `jwt` the auth-jwt keys. The same Server can be started again after a
    stop or kill, on the same data, store and secret."""

    def __init__(self, root, conf=None, jwt=None, store=None, binary=None, plugin_path=None,
                 extra_plugins=None):
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.plugins_d = self.root / "plugins.d"
        self.config = self.root / "exampleim.conf"
        self.log_path = self.root / "server.log"
        self.conf = {"log_level": "info", **(conf or {})}
        self.jwt = {"secret": secrets.token_hex(32), "ttl": "3600",
                    "issuer": "exampleim-e2e", **(jwt or {})}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.plugins_d.mkdir(parents=True, exist_ok=True)
        self.store = store or store_settings(self.data_dir)
        # An installed tree instead of the build tree, and more plugins.d
        # files ({"50-filter.conf": {"plugin": ...}}) after auth and store.
        self.binary = Path(binary) if binary else build_dir() / "bin" / "exampleim"
        self.plugin_path = (Path(plugin_path) if plugin_path
                            else build_dir() / "lib" / "exampleim" / "plugins")
        self.extra_plugins = extra_plugins or {}
        self.proc = None
        self.reaped = True  # no process, or its exit was collected on purpose
        self.host = None
        self.port = None
        self._reader = None
        self._log = None

    @property
    def ttl(self):
        return int(self.jwt["ttl"])

    @property
    def secret(self):
        return self.jwt["secret"]

    @property
    def issuer(self):
        return self.jwt["issuer"]

    def _write_config(self):
        _write_conf(self.config, self.conf)
        _write_conf(self.plugins_d / "10-auth-jwt.conf",
                    {"plugin": "auth-jwt", "enabled": "true", **self.jwt})
        _write_conf(self.plugins_d / "20-store.conf", self.store)
        for name, entries in self.extra_plugins.items():
            _write_conf(self.plugins_d / name, entries)

    def start(self, timeout=START_TIMEOUT):
        """Starts the process and returns once it logged that it listens
        (the port is then in self.port). Raises ServerError with the log's
        tail when it exits or stays silent instead."""
        binary = self.binary
        if not os.access(binary, os.X_OK):
            raise ServerError(f"no server binary at {binary} (build it, or set EIM_BUILD_DIR)")
        self._write_config()
        cmd = [str(binary), "--config", str(self.config), "--listen", "127.0.0.1:0",
               "--data-dir", str(self.data_dir), "--plugins-dir", str(self.plugins_d),
               "--plugin-path", str(self.plugin_path)]
        self._log = open(self.log_path, "a", buffering=1)
        self._log.write(f"=== start: {' '.join(cmd)}\n")
        ready = threading.Event()
        found = {}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self.reaped = False

        # stderr is drained for the process's whole life, so a chatty server
        # never blocks on a full pipe; the first "listening" line wakes start().
        def pump(stream, log):
            for line in stream:
                log.write(line)
                if not found and READY.search(line):
                    m = ADDR.search(line)
                    if m:
                        found.update(m.groupdict())
                        ready.set()
            ready.set()

        self._reader = threading.Thread(target=pump, args=(self.proc.stderr, self._log),
                                        daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or not found:
            exited = None
            if ready.is_set():  # stderr ended: the process is exiting
                try:
                    exited = self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self.kill()
            why = (f"exited with status {exited} before listening" if exited is not None
                   else f"did not report listening within {timeout}s")
            raise ServerError(f"server {why}:\n" + self.log_tail())
        self.host, self.port = found["host"], int(found["port"])
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=20):
        """Waits for the process to exit (after a signal sent by the caller)
        and returns its exit status; a process that hangs is killed and
        ServerError raised."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._finish()
            raise ServerError(f"server did not exit within {timeout}s of the signal:\n"
                              + self.log_tail())
        self._finish()
        return rc

    def _finish(self):
        self.reaped = True
        if self._reader:
            self._reader.join(5)
            self._reader = None
        if self._log:
            self._log.close()
            self._log = None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Sends sig and waits for the exit; returns the exit status."""
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        """SIGKILL: no shutdown work at all, like a power cut of the process."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
            self._finish()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_reports(self):
        """Lines where ASan, LSan or UBSan reported a problem in the log."""
        pat = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")
        return [ln for ln in self.log_text().splitlines() if pat.search(ln)]
