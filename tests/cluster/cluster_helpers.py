"""Helpers of the cluster and store-fault suite (fixtures: conftest.py).

They reuse the e2e suite's black-box helpers (tests/e2e: eim_server, eim_http,
eim_ws, and the Harness of its conftest) and add:

- `Node`: a Server whose plugins.d holds extra files (30-queue-kafka.conf),
  so several nodes share one store, one JWT secret and one set of topics.
- `make_cluster`: such nodes with a topic prefix and (for mongo) a database
  unique to the run and module, so runs never see each other's records.
- `ClusterHarness`: users, groups and WebSockets on any node.

The services come from tests/services/up; a missing variable fails the test.
"""

import concurrent.futures
import importlib.util
import os
import re
import secrets
import sys
import time
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

from eim_http import Http, assert_status  # noqa: E402
from eim_server import Server, ServerError  # noqa: E402

# The e2e conftest is a helper module here (its Harness, User, unique_name),
# loaded under another name so it does not shadow this conftest.
_spec = importlib.util.spec_from_file_location("eim_e2e_conftest", E2E / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

RUN = e2e.RUN
STORES = ("mysql", "mongo")
# How long cross-node effects may take (Kafka consumer latency, heartbeats)
# on a loaded 2-core machine.
CLUSTER_TIMEOUT = float(os.environ.get("EIM_CLUSTER_TIMEOUT", "20"))


def require_env(*names):
    """The values of the named variables; fails (never skips) the test when
    one is missing, naming the command that sets them."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set: run "
                    "`set -a; eval \"$(tests/services/up mariadb kafka ferretdb)\"; set +a`",
                    pytrace=False)
    return [os.environ[n] for n in names]


def store_entry(kind, tag):
    """The plugins.d entry of a store shared by the nodes of one fixture:
    MariaDB's given database (usernames are unique per run), or a fresh
    FerretDB database named after tag."""
    if kind == "mysql":
        keys = ("host", "port", "user", "password", "database")
        vals = require_env(*("MYSQL_" + k.upper() for k in keys))
        return {"plugin": "store-mysql", "enabled": "true", **dict(zip(keys, vals)),
                "connect_timeout": "5"}
    if kind == "mongo":
        (uri,) = require_env("MONGO_URI")
        return {"plugin": "store-mongo", "enabled": "true", "uri": uri,
                "database": f"eim_cl_{RUN}_{tag}"[:63]}
    raise ValueError(kind)


def queue_entry(prefix):
    (brokers,) = require_env("KAFKA_BROKERS")
    return {"plugin": "queue-kafka", "enabled": "true", "brokers": brokers,
            "topic_prefix": prefix, "partitions": "2"}


def write_conf(path, entries):
    path.write_text("".join(f"{k} = {v}\n" for k, v in entries.items()))
    path.chmod(0o600)  # may hold a database password


class Node(Server):
    """A Server with extra plugins.d files: `extra` maps a file name (e.g.
    30-queue-kafka.conf) to its entries."""

    def __init__(self, root, name, store, jwt, extra=None, conf=None):
        super().__init__(root, conf=conf, jwt=jwt, store=store)
        self.name = name
        self.extra = dict(extra or {})
        self.reported = False  # its crash already failed a test

    def _write_config(self):
        super()._write_config()
        for fname, entries in self.extra.items():
            write_conf(self.plugins_d / fname, entries)

    def __repr__(self):
        return f"<Node {self.name} :{self.port}>"


def check_stop(node):
    """Stops a node gracefully; returns a problem description or None (it
    crashed earlier, did not exit 0 on SIGTERM, or a sanitizer reported)."""
    try:
        e2e._stop(node)
    except ServerError as e:
        return f"{node.name}: {e}"
    return None


def start_all(nodes):
    """Starts nodes in parallel; on a failure stops the ones that started
    and fails the test with the failing node's log."""
    with concurrent.futures.ThreadPoolExecutor(len(nodes)) as ex:
        futs = [ex.submit(n.start) for n in nodes]
        errors = []
        for n, f in zip(nodes, futs):
            try:
                f.result()
            except ServerError as e:
                errors.append(f"{n.name}: {e}")
    if errors:
        for n in nodes:
            n.kill()
        pytest.fail("\n".join(errors), pytrace=False)


class ClusterHarness:
    """Users, conversations and WebSockets over several nodes. Users are
    registered round-robin over the nodes (they share the store); `ws(user,
    k)` connects to node k."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.h = [e2e.Harness(n) for n in nodes]

    def http(self, k):
        return Http(self.nodes[k])

    def users(self, n, label="u"):
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(n, 6)) as ex:
            return list(ex.map(lambda i: self.h[i % len(self.h)].user(label), range(n)))

    def ws(self, user, k, barrier=True):
        return self.h[k].ws(user, barrier=barrier)

    def get(self, user, path, k):
        return self.http(k).get(path, token=user.token)

    def post(self, user, path, body, k):
        return self.http(k).post(path, body, token=user.token)

    def group(self, creator, members, name="team", k=0):
        return assert_status(self.post(creator, "/api/v1/conversations", {
            "type": "group", "name": name, "members": [m.id for m in members]}, k), 201)

    def history(self, user, conv_id, k, query="?after_seq=0&limit=200"):
        return assert_status(self.get(user, f"/api/v1/conversations/{conv_id}/messages{query}",
                                      k), 200)

    def all_history(self, user, conv_id, k):
        """Every message of the conversation, paging after_seq from node k."""
        out, after = [], 0
        while True:
            page = self.history(user, conv_id, k, f"?after_seq={after}&limit=200")
            out += page["messages"]
            if not page["has_more"]:
                return out
            after = out[-1]["seq"]

    def close_all(self):
        for h in self.h:
            h.close_all()


def sync_all(ws, conv_id, limit=200):
    """Every message of the conversation by conversation.sync over ws."""
    out, after = [], 0
    while True:
        page = ws.ack("conversation.sync", {"conversation_id": conv_id, "after_seq": after,
                                            "limit": limit})
        out += page["messages"]
        if not page["has_more"]:
            return out
        after = out[-1]["seq"]


def wait_until(what, fn, timeout=CLUSTER_TIMEOUT, interval=0.1):
    """Polls fn() until it returns something truthy and returns that; fails
    naming `what` and the last value after timeout. For states that no event
    announces (health, a database coming back)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r:.300})")
        time.sleep(interval)


def module_tag(request, extra=""):
    """A short name for topics and databases, unique per run and module."""
    mod = re.sub(r"[^a-z0-9]", "", request.module.__name__.rsplit(".", 1)[-1].lower())[-16:]
    return f"{mod}{extra}"


def make_cluster(root, store_kind, tag, n=3, queue=True, conf=None):
    """n nodes sharing a store, a JWT secret and (with queue) Kafka topics
    named <run>-<tag>. Not started."""
    store = store_entry(store_kind, tag)
    jwt = {"secret": secrets.token_hex(32), "ttl": "3600", "issuer": "exampleim-cluster"}
    extra = {}
    if queue:
        extra["30-queue-kafka.conf"] = queue_entry(f"eimcl-{RUN}-{tag}")
    return [Node(Path(root) / f"node{i}", f"node{i}", store, jwt, extra, conf)
            for i in range(n)]
