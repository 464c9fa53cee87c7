"""`dalab ui` as a user starts it: serves the page on 127.0.0.1, refuses a port in use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ui_server import free_port

DALAB = Path(sys.executable).with_name("dalab")


def listening_addresses(port: int) -> set[str]:
    """The IPv4/IPv6 addresses listening on ``port`` (from /proc/net/tcp*, Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:        # 0A = LISTEN
                found.add(addr)
    return found


def test_dalab_ui_serves_the_page_on_localhost_only(tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(DALAB), "ui", "--port", str(port)], env=dict(os.environ, DALAB_HOME=str(tmp_path)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    page = r.read().decode()
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "dalab ui did not serve its page in 90 s"
                time.sleep(0.1)
        assert r.status == 200 and "dalab" in page
        assert listening_addresses(port) == {"0100007F"}          # 127.0.0.1 only, not 0.0.0.0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"dalab UI: http://127.0.0.1:{port}/" in out


def test_dalab_ui_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run([str(DALAB), "ui", "--port", str(port)], env=dict(os.environ, DALAB_HOME=str(tmp_path)),
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in res.stderr and "--port" in res.stderr
    assert "Traceback" not in res.stderr
