"""An unreachable database at start-up: the server says which host and port
it could not reach and exits non-zero within the connect timeout (plus a
margin for start-up under the sanitizers), for MariaDB and for MongoDB."""

import re
import socket
import time

import pytest

from cluster_helpers import ServerError, make_cluster, module_tag

CONNECT_TIMEOUT = 2
# Start-up itself under ASan on a loaded 2-core machine, and the exit.
MARGIN = 6


@pytest.fixture(params=["refused", "silent"])
def hole(request):
    """(kind, port): "refused" is a bound socket that does not listen, so a
    connect is refused at once; "silent" listens but never accepts nor
    answers, so only the timeout ends the attempt."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    if request.param == "silent":
        s.listen(64)
    yield request.param, s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("store", ["mysql", "mongo"])
def test_unreachable_database_at_start_up_exits_naming_it(store, hole, tmp_path, request):
    kind, port = hole
    (node,) = make_cluster(tmp_path, store, module_tag(request, store), n=1, queue=False)
    if store == "mysql":
        node.store.update(host="127.0.0.1", port=str(port), connect_timeout=str(CONNECT_TIMEOUT))
    else:
        ms = CONNECT_TIMEOUT * 1000
        node.store["uri"] = (f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS={ms}"
                             f"&connectTimeoutMS={ms}")
    request.node.eim_nodes = [node]
    t0 = time.monotonic()
    with pytest.raises(ServerError) as exc:
        node.start(timeout=CONNECT_TIMEOUT + 60)
    elapsed = time.monotonic() - t0
    assert "exited with status" in str(exc.value), exc.value
    rc = node.proc.returncode
    assert rc is not None and rc > 0, rc
    assert elapsed < CONNECT_TIMEOUT + MARGIN, f"{kind}: exit after {elapsed:.1f}s"
    where = re.compile(rf"127\.0\.0\.1\D{{1,8}}{port}\b")
    errors = [ln for ln in node.log_text().splitlines()
              if "level=error" in ln and where.search(ln)]
    assert errors, f"no error line names 127.0.0.1 and {port}:\n{node.log_tail()}"
    assert not node.sanitizer_reports(), node.sanitizer_reports()
    print(f"{store}/{kind}: exit {rc} after {elapsed:.1f}s: {errors[0][:200]}")
