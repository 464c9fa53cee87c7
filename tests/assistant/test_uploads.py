"""The shared lecture index of a class server: upload names are sanitised (no hidden or path-like
names), a second file with the same name is kept beside the first, each session can remove only
its own uploads, passages are shown without raw HTML, and an upload's embedding time is bounded
(and reported)."""

from __future__ import annotations

import pytest

from tools import retrieval
from tools.retrieval import IngestError, add_files, remove_file, safe_name, search, user_files


@pytest.mark.parametrize("given,stored", [
    (".hidden.md", "hidden.md"), ("../../etc/passwd.txt", "passwd.txt"), ("C:\\notes\\week1.md", "week1.md"),
    ("<script>x</script>.md", "script.md"), ("<b>x.md", "b_x.md"), ("...", "upload"), ("Kalman filter (v2).PDF", "Kalman filter _v2.pdf"),
    ("a" * 400 + ".md", "a" * 88 + ".md"),
])
def test_upload_names_are_sanitised(given, stored):
    assert safe_name(given) == stored
    assert not safe_name(given).startswith(".") and "/" not in safe_name(given)


def test_hidden_names_are_kept_and_same_names_sit_beside(lecture_home_copy, tmp_path):
    home = lecture_home_copy
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / ".notes.md", tmp_path / "b" / ".notes.md"
    first.write_text("# Week one\n\nThe quokka covariance is diagonal.\n")
    second.write_text("# Week two\n\nThe wombat covariance is dense.\n")
    assert add_files([first], home=home, owner="s1").added == ["notes.md"]
    info = add_files([second], home=home, owner="s2")
    assert info.added == ["notes-2.md"] and info.n_user_files == 2
    assert add_files([first], home=home, owner="s1").added == ["notes.md"]        # the same file again: no copy
    assert user_files(home) == ["notes-2.md", "notes.md"]
    retrieval.ensure_index(home, rebuild=True)                                   # both survive a rebuild
    assert search("quokka covariance", k=1, home=home, mode="bm25")[0].source == "user/notes.md"
    assert search("wombat covariance", k=1, home=home, mode="bm25")[0].source == "user/notes-2.md"


def test_each_owner_removes_only_their_own_upload(lecture_home_copy, tmp_path):
    home = lecture_home_copy
    mine = tmp_path / "mine.md"
    mine.write_text("# Mine\n\nThe platypus gain is one half.\n")
    add_files([mine], home=home, owner="s1")
    assert user_files(home, owner="s1") == ["mine.md"] and user_files(home, owner="s2") == []
    for owner, name in (("s2", "mine.md"), ("s1", "../index/CURRENT"), ("s1", "nope.md")):
        with pytest.raises(IngestError, match="that you added"):
            remove_file(name, home=home, owner=owner)
    assert search("platypus gain", k=1, home=home, mode="bm25")[0].source == "user/mine.md"
    remove_file("mine.md", home=home, owner="s1")
    assert user_files(home) == [] and all(p.source != "user/mine.md" for p in search("platypus gain", k=3, home=home))


def test_embedding_time_is_bounded_and_reported(lecture_home_copy, tmp_path, monkeypatch):
    home = lecture_home_copy
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join(f"Paragraph {i} about the echidna analysis increment number {i}." * 12
                               for i in range(4000)))
    with pytest.raises(IngestError, match=r"passages to index \(at most 1500 per upload"):
        add_files([big], home=home)
    assert user_files(home) == []
    monkeypatch.setattr(retrieval, "MAX_NEW_PASSAGES", 10_000)
    small = tmp_path / "small.md"
    small.write_text("\n\n".join(f"## Part {i}\n\nThe numbat innovation {i} is y minus H x_b." for i in range(150)))
    seen = []
    add_files([small], home=home, progress=lambda f, m: seen.append((f, m)))
    assert seen and all(0 <= f < 1 for f, _ in seen) and [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert "embedding passages" in seen[-1][1]


def test_the_ui_shows_passages_without_raw_html_and_removes_only_ones_own(lecture_home_copy, tmp_path):
    from gradio_client import Client, handle_file
    from ui_server import running_app

    evil = tmp_path / "evil.md"
    evil.write_text("# Injected\n\nThe dugong <img src=x onerror=alert(1)> <b>bold</b> assimilation window.\n")
    with running_app(lecture_home_copy) as url:
        author = Client(url, verbose=False, download_files=str(tmp_path))
        other = Client(url, verbose=False, download_files=str(tmp_path))
        status, uploads = author.predict([handle_file(str(evil))], api_name="/add_lectures")
        assert status.startswith("**Done:** added evil.md") and uploads["choices"] == [["evil.md", "evil.md"]]
        hits = other.predict("dugong assimilation window", 3, api_name="/search_lectures_text")
        assert "dugong" in hits and "<img" not in hits and "<b>" not in hits and "&lt;img" in hits
        long_query = "q" * 2000 + " nothing"
        assert len(other.predict(long_query, 3, api_name="/search_lectures_text")) < 1000
        try:
            status, _ = other.predict("evil.md", api_name="/remove_lecture")
        except Exception as exc:                                          # not among the other's choices
            status = str(exc)
        assert "Done" not in status and user_files(lecture_home_copy) == ["evil.md"]
        status, _ = author.predict("evil.md", api_name="/remove_lecture")
        assert status.startswith("**Done:** removed evil.md") and user_files(lecture_home_copy) == []
