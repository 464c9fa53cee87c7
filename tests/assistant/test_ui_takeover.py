"""A class on one server: a student's session cannot be taken over by another client that learnt
its id. The attack of issue 17, replayed: read the id (here from the server's disk, as if it had
leaked), present it as a cookie (bare, or with a forged signature), load the session, read the
transcript and the runs, delete a run, download a file by its server path. All of it fails; the
owner still has everything."""

from __future__ import annotations

import urllib.error
import urllib.request
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from assistant.sessions import COOKIE

SECRET_WORDS = ("secret", "dalab-session")


def get(url: str, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.fixture(scope="module")
def victim(ui_url, lecture_home, tmp_path_factory):
    """A student who ran a 3D-Var cycle through the chat."""
    client = Client(ui_url, verbose=False, download_files=str(tmp_path_factory.mktemp("victim")))
    client.predict("run a 3D-Var cycle with observation error 0.3 and seed 11", api_name="/chat")
    _, table, *_ = client.predict(api_name="/runs")
    (run,) = table["data"]
    (folder,) = lecture_home.glob(f"sessions/*/runs/{run[0]}")
    return {"client": client, "run": run[0], "folder": folder, "sid": folder.parent.parent.name}


def test_the_page_config_carries_no_key_and_cookies_are_httponly(ui_url, lecture_home):
    secret = (lecture_home / "ui_secret").read_text().strip()
    with urllib.request.urlopen(ui_url + "config", timeout=30) as r:
        config = r.read().decode()
        set_cookie = r.headers.get("set-cookie", "")
    assert secret not in config and "dalab-session" not in config
    assert set_cookie.startswith(f"{COOKIE}=") and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert (lecture_home / "ui_secret").stat().st_mode & 0o077 == 0


def test_records_and_the_code_view_do_not_name_the_session(victim):
    reproduce = (victim["folder"] / "reproduce.py").read_text()
    assert victim["sid"] not in reproduce and "workspace=WORKSPACE" in reproduce
    details = victim["client"].predict(api_name="/runs")[3]
    assert victim["sid"] not in details and "sessions/" not in details
    assert victim["folder"].parent.parent.stat().st_mode & 0o077 == 0        # the session folder is 700


@pytest.mark.parametrize("forged", ["bare", "bad-signature", "other-signature"])
def test_a_known_session_id_does_not_open_the_session(ui_url, victim, tmp_path, forged):
    sid = victim["sid"]
    mine = Client(ui_url, verbose=False, download_files=str(tmp_path))     # a real session of the attacker
    value = {"bare": sid, "bad-signature": f"{sid}.{'0' * 64}",
             "other-signature": f"{sid}.{mine.cookies[COOKIE].partition('.')[2]}"}[forged]
    attacker = Client(ui_url, verbose=False, download_files=str(tmp_path), httpx_kwargs={"cookies": {COOKIE: value}})
    assert attacker.cookies[COOKIE] == value

    where, table, *_ = attacker.predict(api_name="/runs")                 # the run list: empty, not the victim's
    assert table["data"] == [] and sid[:8] not in where
    try:                                                                  # deleting by name: not theirs
        attacker.predict(victim["run"], api_name="/delete_run")
    except AppError as exc:                                               # (refused: not among their runs)
        assert victim["sid"] not in str(exc)
    assert victim["folder"].is_dir()
    history, *_ = attacker.predict("hello", api_name="/chat")             # the transcript: only their own
    assert [m for m in history if m["role"] == "user"] and "seed 11" not in str(history)
    assert not list(victim["folder"].parent.parent.glob("runs/*-search_lectures"))

    for path in (victim["folder"] / "reproduce.py", victim["folder"] / "timeseries.png"):   # by server path
        for cookie in (value, mine.cookies[COOKIE], None):
            status, body = get(f"{ui_url}gradio_api/file={path}", cookie)
            assert status == 403 and "import" not in body, (cookie, status)

    owner = victim["client"]
    assert owner.predict(api_name="/runs")[1]["data"][0][0] == victim["run"]   # the owner still has it all
    status, body = get(f"{ui_url}gradio_api/file={victim['folder'] / 'reproduce.py'}", owner.cookies[COOKIE])
    assert status == 200 and "run_tool('run_3dvar_cycle'" in body


def test_another_sessions_products_are_not_reachable_by_path_through_the_chat_or_forms(ui_url, victim, tmp_path):
    attacker = Client(ui_url, verbose=False, download_files=str(tmp_path))
    for target in (f"../../{victim['sid']}/runs/{victim['run']}", str(victim["folder"] / "reproduce.py"),
                   f"sessions/{victim['sid']}/runs/{victim['run']}"):
        status, *_ = attacker.predict(time_index="", model=target, dataset="", api_name="/reconstruct_field")
        assert "among your runs" in status, status
        bogus = target.replace(victim["run"], "20000101-000000-000000-run_3dvar_cycle")
        other, *_ = attacker.predict(time_index="", model=bogus, dataset="", api_name="/reconstruct_field")
        assert other.replace(bogus, target) == status      # the same answer: whether it exists is not revealed
