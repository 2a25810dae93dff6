"""Fixtures of the cluster and store-fault suite (helpers: cluster_helpers.py).

- `cluster` (module scope, parametrized over the store: `mysql` on MariaDB,
  `mongo` on FerretDB): three started nodes sharing the store, one JWT
  secret and Kafka topics of their own.
- `cl`: a ClusterHarness over those nodes for one test; its WebSockets close
  when the test ends.
- `pair` / `ph`: two servers sharing the store of the param, no queue, and
  a harness over them.
- `start_nodes`: starts Node objects a test made itself (other plugins.d, no
  queue, a restart) and stops and checks them when the test ends.
"""

import tempfile

import pytest

from cluster_helpers import STORES, ClusterHarness, check_stop, make_cluster, module_tag, start_all


@pytest.fixture(scope="module", params=STORES)
def cluster(request):
    """Three started nodes (store from the param, Kafka queue). Stopped and
    checked at the end of the module."""
    with tempfile.TemporaryDirectory(prefix="eim-cluster-") as root:
        nodes = make_cluster(root, request.param, module_tag(request, request.param))
        start_all(nodes)
        yield nodes
        stop_checked(nodes)


@pytest.fixture(scope="module", params=STORES)
def pair(request):
    """Two started servers sharing the store of the param, without a queue
    (two processes on one database, not a cluster)."""
    with tempfile.TemporaryDirectory(prefix="eim-pair-") as root:
        nodes = make_cluster(root, request.param, module_tag(request, request.param), n=2,
                             queue=False)
        start_all(nodes)
        yield nodes
        stop_checked(nodes)


def stop_checked(nodes):
    """Stops module-scoped nodes; fails for problems no test reported yet
    (pytest reports a failure here against the test that runs next)."""
    problems = [p for n in nodes if not n.reported for p in [check_stop(n)] if p]
    for n in nodes:
        if n.reported and not n.reaped:
            n.kill()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def harness(nodes, request):
    """A ClusterHarness over module-scoped nodes for one test. A node that
    died (a crash, a sanitizer abort) during the test fails that test, not
    the next one; the module's other tests then fail at once."""
    if any(n.reported for n in nodes):
        pytest.fail("a node died in an earlier test", pytrace=False)
    request.node.eim_nodes = nodes
    h = ClusterHarness(nodes)
    yield h
    h.close_all()
    dead = [n.name for n in nodes if not n.alive() and not n.reaped]
    if dead:
        # The cluster is broken: stop and check every node now, so nothing
        # is left to report against the next test.
        problems = [p for n in nodes for p in [check_stop(n)] if p]
        for n in nodes:
            n.reported = True
        pytest.fail(f"nodes died during the test: {dead}\n" + "\n".join(problems),
                    pytrace=False)


@pytest.fixture
def ph(pair, request):
    """A ClusterHarness over the `pair` servers for one test."""
    yield from harness(pair, request)


@pytest.fixture
def cl(cluster, request):
    """A ClusterHarness over the `cluster` nodes for one test."""
    yield from harness(cluster, request)


@pytest.fixture
def start_nodes(request):
    """start_nodes(nodes) starts Node objects made by the test (e.g. with
    make_cluster) and stops and checks them when the test ends."""
    started = []

    def start(nodes):
        start_all(nodes)
        started.extend(nodes)
        request.node.eim_nodes = started
        return ClusterHarness(nodes)

    yield start
    problems = [p for p in map(check_stop, started) if p]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # A failing test's report ends with the log tails of the nodes it used.
    report = yield
    if report.failed:
        for n in getattr(item, "eim_nodes", []) or []:
            report.sections.append((f"exampleim {n.name} log (tail)", n.log_tail(40)))
            first = first_sanitizer_report(n.log_text())
            if first:
                report.sections.append((f"exampleim {n.name} first sanitizer report", first))
    return report


def first_sanitizer_report(log, lines=40):
    """The first sanitizer report of a log with the stack under it (the
    tail may show only its end), or ""."""
    out = log.splitlines()
    for i, ln in enumerate(out):
        if "Sanitizer" in ln and "ERROR" in ln or "runtime error:" in ln:
            return "\n".join(out[i:i + lines])
    return ""
