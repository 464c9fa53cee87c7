"""Serve the real app (uvicorn, a free port, a thread) for the UI, browser, MCP and classroom tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(home: Path, mcp: bool = False, model: Any = None, workers: int = 0) -> Iterator[str]:
    """The app with DALAB_HOME=home (and ``model`` answering, default: the settings'), served on
    127.0.0.1, its runs in ``workers`` worker processes as `dalab ui` does (0: in this process);
    yields its base URL."""
    import uvicorn

    from tools.registry import install
    from tools.settings import from_env, get_settings
    from tools.workers import RunWorkers
    from assistant.ui import create_app

    old = os.environ.get("DALAB_HOME")
    os.environ["DALAB_HOME"] = str(home)
    # each app its own file cache: Gradio names cached files by their content and deletes an app's
    # files when it stops, so a stopping app of an earlier test module removed the identical
    # figure a later module's app was serving (a 403 in one full run of five)
    old_cache = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(Path(home) / f"gradio_tmp_{free_port()}")
    get_settings.cache_clear()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(from_env(), model=model, mcp=mcp), host="127.0.0.1", port=port,
                                           log_level="warning"))
    pool = RunWorkers(workers) if workers else None
    if pool is not None:
        pool.warm()
        install(pool)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dalab app did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)
        if pool is not None:
            install(None)
            pool.close()
        if old_cache is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old_cache
        if old is None:
            os.environ.pop("DALAB_HOME", None)
        else:
            os.environ["DALAB_HOME"] = old
        get_settings.cache_clear()
