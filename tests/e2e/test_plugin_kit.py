"""The plugin author kit and the filter chain, end to end.

The server built in $EIM_BUILD_DIR is installed into a temporary prefix; the
example filter (plugins/examples/filter-links) is copied outside the source
tree and built against the installed header through pkg-config; the installed
server loads it, with filter-sensitive, from a plugins.d file; and both
filters pass the installed conformance kit.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

from eim_server import REPO, build_dir

WORDS = "# test list\nbadword\n敏感词\n"


def chat(conv, cmid, content):
    return {"conversation_id": conv, "client_msg_id": cmid, "content": content}


def wait_log(srv, text, timeout=10):
    """Waits until the server's log holds text (a line it writes on an event)."""
    deadline = time.monotonic() + timeout
    while text not in srv.log_text():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{srv.log_tail()}"
        time.sleep(0.05)


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Installs the build into a prefix and builds filter-links out of tree."""
    root = tmp_path_factory.mktemp("kit")
    prefix = root / "prefix"
    run(["cmake", "--install", str(build_dir()), "--prefix", str(prefix)])
    src = root / "filter-links"
    shutil.copytree(REPO / "plugins" / "examples" / "filter-links", src)
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    run(["cmake", "-S", str(src), "-B", str(root / "build")], env=env)
    run(["cmake", "--build", str(root / "build")], env=env)
    run(["cmake", "--install", str(root / "build")], env=env)
    words = root / "words.txt"
    words.write_text(WORDS, encoding="utf-8")
    return {"prefix": prefix, "root": root, "words": words,
            "plugins": prefix / "lib" / "exampleim" / "plugins"}


def test_install_lays_out_the_kit(kit):
    p = kit["prefix"]
    for rel in ("bin/exampleim", "bin/exampleim-conformance", "include/exampleim/plugin.h",
                "lib/pkgconfig/exampleim.pc", "etc/exampleim/exampleim.conf",
                "etc/exampleim/plugins.d/20-store-sqlite.conf",
                "share/exampleim/contrib/exampleim.service",
                "lib/exampleim/plugins/store-sqlite.so", "lib/exampleim/plugins/auth-jwt.so",
                "lib/exampleim/plugins/filter-sensitive.so",
                "lib/exampleim/plugins/filter-links.so"):
        assert (p / rel).exists(), rel
    pc = (p / "lib/pkgconfig/exampleim.pc").read_text()
    assert "prefix=${pcfiledir}/../.." in pc and "plugindir=" in pc
    conf = (p / "etc/exampleim/exampleim.conf").read_text()
    assert f"plugin_path = {p}/lib/exampleim/plugins" in conf


@pytest.mark.parametrize("plugin,conf", [
    ("filter-links.so", "plugin = filter-links\nallow_domains = example.com\n"),
    ("filter-sensitive.so", "plugin = filter-sensitive\nmode = mask\nskip_separators = true\n"),
    ("filter-sensitive.so", "plugin = filter-sensitive\nmode = reject\n"),
])
def test_installed_conformance_kit_passes_on_both_filters(kit, plugin, conf, tmp_path):
    cfg = tmp_path / "filter.conf"
    text = conf if "sensitive" not in plugin else conf + f"words_file = {kit['words']}\n"
    cfg.write_text(text)
    out = run([str(kit["prefix"] / "bin" / "exampleim-conformance"), "filter",
               str(kit["plugins"] / plugin), str(cfg)])
    assert out.strip().splitlines()[-1].endswith(" 0 failed"), out


def filters(kit, mode):
    return {
        "40-filter-sensitive.conf": {"plugin": "filter-sensitive", "enabled": "true",
                                     "words_file": str(kit["words"]), "mode": mode,
                                     "skip_separators": "true"},
        "50-filter-links.conf": {"plugin": "filter-links", "enabled": "true",
                                 "allow_domains": "example.com"},
    }


def test_installed_server_runs_both_filters_end_to_end(kit, start_server):
    srv, im = start_server(binary=kit["prefix"] / "bin" / "exampleim",
                           plugin_path=kit["plugins"], extra_plugins=filters(kit, "mask"))
    a, b = im.users(2, "kit")
    conv = im.single(a, b)["conversation_id"]
    wa, wb = im.ws(a), im.ws(b)

    masked = {"a BaDwOrD here": "a ******* here", "这是敏感词": "这是***",
              "b.a d-w o r d": "*************", "敏 感 词": "*****",
              "ｂａｄｗｏｒｄ": "*******"}
    for i, (sent, want) in enumerate(masked.items()):
        ack = wa.ack("conversation.chat", chat(conv, f"m{i}", sent))
        assert ack["content"] == want, sent
        ev = wb.wait_event("conversation.chat", lambda m, k=f"m{i}": m["client_msg_id"] == k)
        assert ev["content"] == want

    err = wa.expect_error("conversation.chat", chat(conv, "l1", "see https://evil.test/x"), "rejected")
    assert "evil.test" in err["data"]["error"]["message"]
    ok = wa.ack("conversation.chat", chat(conv, "l2", "see https://docs.example.com/a"))
    assert ok["content"] == "see https://docs.example.com/a"

    history = [m["content"] for m in im.history(b, conv, "?limit=200")["messages"]]
    assert history == list(masked.values()) + ["see https://docs.example.com/a"]
    wb.expect_no_event("conversation.chat", lambda m: m["client_msg_id"] == "l1")


def test_reject_mode_stores_and_delivers_nothing(kit, start_server):
    srv, im = start_server(plugin_path=kit["plugins"], extra_plugins=filters(kit, "reject"))
    a, b = im.users(2, "rej")
    conv = im.single(a, b)["conversation_id"]
    wa, wb = im.ws(a), im.ws(b)
    wa.expect_error("conversation.chat", chat(conv, "r1", "a BaDwOrD here"), "rejected")
    wb.expect_no_event("conversation.chat")
    assert im.history(b, conv)["messages"] == []
    assert wa.ack("conversation.chat", chat(conv, "r2", "fine"))["seq"] == 1


def test_invalid_utf8_is_refused_before_any_filter(kit, start_server):
    """Text that is not UTF-8 never reaches a filter or the store: as raw
    bytes in a text frame the WebSocket layer closes with 1007 (RFC 6455
    requires it); as a JSON escape (a lone surrogate) the request gets
    bad_request and the connection stays open."""
    srv, im = start_server(plugin_path=kit["plugins"], extra_plugins=filters(kit, "mask"))
    a, b = im.users(2, "utf")
    conv = im.single(a, b)["conversation_id"]
    wa, wb = im.ws(a), im.ws(b)
    escaped = ('{"type":"conversation.chat","id":"x","data":{"conversation_id":"%s",'
               '"client_msg_id":"u1","content":"bad \\ud800 half"}}' % conv)
    wa.send_raw(escaped)
    reply = wa.anonymous_reply()  # not parsable, so the id is unknown
    assert reply["type"] == "error" and reply["data"]["error"]["code"] == "bad_request"
    assert wa.ack("ping") == {}

    raw = ('{"type":"conversation.chat","id":"y","data":{"conversation_id":"%s",'
           '"client_msg_id":"u2","content":"bad \xff byte"}}' % conv).encode("latin-1")
    wa.conn.send(raw, text=True)  # a text frame whose bytes are not UTF-8
    assert wa.wait_close() == 1007
    assert im.history(b, conv)["messages"] == []
    wb.expect_no_event("conversation.chat")
    assert wb.ack("ping") == {}


def test_sighup_reloads_the_word_list_and_keeps_it_when_broken(kit, start_server, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("firstword\n", encoding="utf-8")
    plugins = filters(kit, "mask")
    plugins["40-filter-sensitive.conf"]["words_file"] = str(words)
    srv, im = start_server(plugin_path=kit["plugins"], extra_plugins=plugins)
    a, b = im.users(2, "hup")
    conv = im.single(a, b)["conversation_id"]
    wa, wb = im.ws(a), im.ws(b)
    assert wa.ack("conversation.chat", chat(conv, "h1", "firstword secondword"))["content"] \
        == "********* secondword"

    words.write_text("secondword\n", encoding="utf-8")
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, 'msg="filter reloaded"')
    assert wa.ack("conversation.chat", chat(conv, "h2", "firstword secondword"))["content"] \
        == "firstword **********"

    words.unlink()
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "keeping the old configuration")
    assert wa.ack("conversation.chat", chat(conv, "h3", "firstword secondword"))["content"] \
        == "firstword **********"
