"""The lab in the browser: a Gradio Blocks app over the agent and the tool registry.

    dalab ui [--host 127.0.0.1] [--port 7860] [--mcp]     # serve(); make run does this

* **Chat**: the agent's answer streams in; every tool call is a collapsible step with its
  arguments, a live progress line while it runs, its status and summary; the run's figures appear
  inline; beside the chat, the latest run's metrics and its ``reproduce.py``. The model answering
  (the offline model or the configured endpoint) is named at the top; example prompts cover a
  3D-Var run, a concept question and the whole lab sequence.
* **Tools**: a form per registry tool, generated from its arguments schema, to run it without
  the LLM.  **Lectures**: search the notes with sources, add your own lecture files (the same checks
  as ``dalab index --add``).  **Runs**: this session's runs with figures, metrics and downloads.

Every browser session gets its own workspace, ``DALAB_HOME/sessions/<id>/``, so two students never
see each other's runs. Tools run in a worker thread while the event streams updates, so the page
stays responsive and many sessions run at once; the sessions themselves (registry, turns,
transcript) are in ``assistant.sessions``. ``--mcp`` also serves the registry's tools over MCP at
``/mcp/`` (``assistant.mcp_server``).
"""

from __future__ import annotations

import inspect
import logging
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Offline and quiet before gradio is imported (it reads these at import time).
for _key, _value in {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                     "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "MPLBACKEND": "Agg"}.items():
    os.environ.setdefault(_key, _value)
# Uploads and served copies of figures go under DALAB_HOME, not /tmp/gradio.
os.environ.setdefault("GRADIO_TEMP_DIR",
                      str(Path(os.environ.get("DALAB_HOME") or Path.home() / ".dalab").expanduser() / "gradio_tmp"))

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from assistant.agent import resolve_model  # noqa: E402
from assistant.display import CSS, HEAD, READ_ONLY, metric_help  # noqa: E402
from assistant.sessions import (  # noqa: E402
    LabSession,
    SessionKeys,
    SessionRegistry,
    args_text,
    chat_turn,
    drain,
    fmt,
    in_background,
    load_result,
    no_html,
    progress_bar,
    server_secret,
    session_cookies,
)
from tools.settings import Settings, SettingsError, get_settings  # noqa: E402
from tools.base import RunCancelled, ToolError, ToolResult, Workspace, clean_partials  # noqa: E402
from tools.registry import TOOLS, ToolSpec, cut, run_tool  # noqa: E402

TITLE = "dalab — machine learning in data assimilation, the lab"
EXAMPLES = [
    "Run a 3D-Var cycle with observation error 0.2",
    "Why does 3D-Var with a fixed B plateau?",
    "Generate observations, train the obs2obs network for 20 epochs, then reconstruct the field",
    "Run ORIGEN on the oscillator with the covariance update",
    "What is the difference between mode A and mode B?",
]
METRIC_HEADERS = ["metric", "value", "meaning (unit)"]
RUN_HEADERS = ["run", "tool", "key numbers"]
log = logging.getLogger("dalab.ui")
CHAT_TURNS_AT_ONCE = 32   # chat turns served (or waiting their session's turn) at once
TOOL_RUNS_AT_ONCE = 8   # Tools-tab runs the server does at once (more wait in Gradio's queue)
MATH = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


# ----------------------------------------------------------------------------- formatting

def metrics_frame(result: ToolResult | None) -> pd.DataFrame:
    rows = [] if result is None else [[k, fmt(v), metric_help(k)] for k, v in result.metrics.items()]
    return pd.DataFrame(rows, columns=METRIC_HEADERS)


def result_card(result: ToolResult | None) -> str:
    if result is None:
        return "_No run yet. Ask for one in the chat or use the Tools tab._"
    return f"**{result.tool}** · `{result.run_dir.name}`\n\n{result.summary}"


def key_numbers(result: ToolResult, n: int = 3) -> str:
    nums = [(k, v) for k, v in result.metrics.items() if not isinstance(v, str)][:n]
    return ", ".join(f"{k}={fmt(v)}" for k, v in nums)


# ----------------------------------------------------------------------------- tools without the LLM

def form_component(name: str, schema: dict[str, Any], required: bool) -> gr.components.Component:
    """An input for one tool argument, from its JSON schema (allowed range in the hint)."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    base = options[0] if options else schema
    kind = base.get("type", "string")
    default = schema.get("default")
    bounds = [f"≥ {base['minimum']}" if "minimum" in base else "", f"> {base['exclusiveMinimum']}"
              if "exclusiveMinimum" in base else "", f"≤ {base['maximum']}" if "maximum" in base else ""]
    hint = schema.get("description", "")
    if any(bounds):
        hint += f" (allowed: {' and '.join(b for b in bounds if b)})"
    if "anyOf" in schema and not required:
        hint += "; leave empty for the default"
    if "enum" in base:
        return gr.Dropdown(choices=list(base["enum"]), value=default, label=name, info=hint)
    if kind == "boolean":
        return gr.Checkbox(value=bool(default), label=name, info=hint)
    if kind in ("integer", "number") and "anyOf" in schema:   # optional: empty means the default, not 0
        return gr.Textbox(value="" if default is None else str(default), label=name, info=hint,
                          placeholder="empty: the default")
    if kind in ("integer", "number"):
        return gr.Number(value=default, label=name, info=hint, precision=0 if kind == "integer" else None)
    return gr.Textbox(value=default or "", label=name, info=hint,
                      placeholder="required" if required else "empty: the latest one")


def form_args(names: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
    """Arguments from a form: empty fields are left out, so the tool's defaults apply."""
    return {n: v for n, v in zip(names, values) if v is not None and not (isinstance(v, str) and not v.strip())}


def tool_downloads(result: ToolResult, products: bool = False) -> list[str]:
    files = [result.run_dir / "reproduce.py", result.run_dir / "args.json", result.run_dir / "metrics.json"]
    if products:
        files += list(result.files)
    return [str(p) for p in files if Path(p).is_file()]


def run_form_tool(lab: LabSession, name: str, args: dict[str, Any]) -> Iterator[tuple[str, ToolResult | None]]:
    """Run one tool from its form in a worker thread; yields (status text, result when done)."""
    sink: queue.Queue = queue.Queue()
    box: dict[str, ToolResult] = {}

    def work(out: queue.Queue) -> None:
        box["result"] = run_tool(name, args, workspace=lab.workspace, cancel=lab.cancel,
                                 progress=lambda f, m: out.put(("progress", f, m)))

    lab.cancel.clear()

    start = time.perf_counter()
    in_background(work, sink)
    yield f"Running **{name}** (`{args_text(args)}`)…", None
    done = False
    while not done:
        items, done = drain(sink)
        for item in items:
            if item[0] == "progress":
                yield f"Running **{name}** {progress_bar(item[1], item[2])}", None
            elif item[0] == "error":
                exc = item[1]
                if isinstance(exc, RunCancelled):
                    yield f"**Stopped:** {name} was {exc}; its partial run folder was removed.", None
                    return
                if not isinstance(exc, ToolError):
                    log.error("%s failed", name, exc_info=exc)
                text = str(exc) if isinstance(exc, ToolError) else f"{name} failed unexpectedly ({type(exc).__name__}: {exc})"
                yield f"**Error:** {name} could not run: {lab.workspace.scrub(text)}", None
                return
    result = box["result"]
    where = ""
    if TOOLS[name].records:
        lab.latest = result
        where = f" · `{result.run_dir.name}`"
    yield f"**Done:** {name} in {time.perf_counter() - start:.1f} s{where}\n\n{result.summary}", result


# ----------------------------------------------------------------------------- the app

def build_app(settings: Settings | None = None, model: Any = None) -> gr.Blocks:
    """The Blocks app (not launched)."""
    settings = settings or get_settings()
    model = model if model is not None else resolve_model(None, settings)
    from assistant.llm import describe  # noqa: PLC0415

    model_name = describe(model)
    home = Path(settings.home)

    registry = SessionRegistry(home, model, runs_at_once=settings.runs_per_session)
    keys = SessionKeys(server_secret(home))

    def ensure(lab: LabSession | None) -> LabSession:
        """The session of the request being served: the one its signed cookie names (set by
        ``session_cookies``), whatever the page's state says; outside a request, ``lab`` or a new one."""
        from gradio.context import LocalContext  # noqa: PLC0415

        request = LocalContext.request.get(None)
        sid = keys.from_headers(request.headers.get("cookie")) if request is not None else None
        if sid is None:
            return lab if isinstance(lab, LabSession) else registry.new()
        if isinstance(lab, LabSession) and lab.id == sid:
            return lab
        return registry.open(sid)

    def restore(lab: LabSession | None):
        lab = ensure(None)
        return (lab, list(lab.history), *latest_panel(lab), gr.update(choices=uploads_of(lab)))

    def latest_panel(lab: LabSession) -> tuple[str, pd.DataFrame, list[str]]:
        r = lab.latest
        return result_card(r), metrics_frame(r), [] if r is None else tool_downloads(r)

    # ---- runs tab
    def runs_view(lab: LabSession | None):
        lab = ensure(lab)
        runs = list(reversed(lab.run_dirs()))
        rows, names = [], []
        for d in runs:
            r = load_result(d)
            if r is not None:
                rows.append([d.name, r.tool, key_numbers(r)])
                names.append(d.name)
        pick = names[0] if names else None       # the newest; the dropdown shows any other
        size = sum(f.stat().st_size for d in runs for f in d.rglob("*") if f.is_file()) / 1e6
        where = (f"Runs of this browser session (workspace `sessions/{lab.id[:8]}…`): {len(names)}. "
                 f"They take {size:.1f} MB on the server.")
        return (where, pd.DataFrame(rows, columns=RUN_HEADERS), gr.update(choices=names, value=pick),
                *run_details(lab, pick), lab)

    def run_details(lab: LabSession, name: str | None) -> tuple[str, list[str], pd.DataFrame, list[str]]:
        run = lab.run(name)
        r = load_result(run) if run is not None else None
        if r is None:
            return "_Pick a run._", [], metrics_frame(None), []
        code = f"```python\n{r.code}```"
        return (f"**{r.tool}** · `{r.run_dir.name}`\n\n{r.summary}\n\nReproduce it:\n{code}",
                [str(p) for p in r.figures], metrics_frame(r), tool_downloads(r, products=True))

    def delete_run(lab: LabSession | None, name: str | None):
        """Remove one of this session's runs (only a run the session owns, by its exact name)."""
        lab = ensure(lab)
        target = lab.run(name)
        if target is not None:
            shutil.rmtree(target)
            if lab.latest is not None and lab.latest.run_dir == target:
                lab.latest = None
        return runs_view(lab)

    def ask_delete(name: str | None):
        """Deleting a run asks first (the run's figures and files cannot be brought back)."""
        if not name:
            return gr.update(visible=False), ""
        return gr.update(visible=True), f"Delete the run `{name}` with its figures and files? This cannot be undone."

    def show_run(lab: LabSession | None, name: str | None):
        lab = ensure(lab)
        return (*run_details(lab, name), lab)

    def pick_row(lab: LabSession | None, evt: gr.SelectData):
        lab = ensure(lab)
        row = evt.row_value or []
        name = row[0] if row else None
        return (gr.update(value=name), *run_details(lab, name), lab)

    # ---- chat
    def take(message: str) -> tuple[str, str]:
        """The message leaves the box at once (the student can type the next one meanwhile)."""
        return "", message

    def respond(message: str, lab: LabSession | None):
        lab = ensure(lab)
        shown, skipped, last = False, False, object()
        for _ in chat_turn(lab, message, on_wait=lambda: gr.Info(
                "Your question is queued: it runs as soon as the current one has finished.")):
            shown = True
            now = lab.latest.run_dir if lab.latest is not None else None
            # the latest-run panel (and its files) only when it changed: under load, every update counts
            skipped = now == last
            yield (list(lab.history), *((gr.skip(),) * 3 if skipped else latest_panel(lab)), lab)
            last = now
        if not shown or skipped:   # the final state whole (an empty message: the page stays as it is)
            yield (list(lab.history), *latest_panel(lab), lab)

    def set_tutor(on: bool, lab: LabSession | None):
        lab = ensure(lab)
        lab.agent.set_tutor(bool(on))
        return lab

    def clear(lab: LabSession | None):
        lab = ensure(lab)
        if lab.busy:
            gr.Warning("Wait for the current answer to finish, then start a new conversation.")
            return list(lab.history), *latest_panel(lab), lab
        lab.reset()
        lab.latest = None          # a new conversation starts with an empty Latest-run card
        return [], *latest_panel(lab), lab

    # ---- lectures
    def search_notes(query: str, k: float):
        try:
            result = run_tool("search_lectures", {"query": query or "", "k": int(k or 4)})
        except ToolError as exc:
            return no_html(f"**Error:** {exc}")
        if not result.passages:
            return no_html(f"No lecture passage matches {cut(repr(query or ''))}.")
        return "\n\n---\n\n".join(no_html(f"**{p['citation']}** · score {p['score']:.2f}\n\n{p['text']}")
                                     for p in result.passages)

    def uploads_of(lab: LabSession) -> list[str]:
        from tools.retrieval import user_files  # noqa: PLC0415

        return user_files(home, owner=lab.id)

    def add_lectures(files: list[Any] | None, lab: LabSession | None = None, progress=gr.Progress()):
        from tools.retrieval import IngestError, add_files  # noqa: PLC0415

        lab = ensure(lab)
        paths = [Path(getattr(f, "name", f)) for f in (files or [])]
        try:
            info = add_files(paths, home=home, owner=lab.id,
                             progress=lambda f, m: progress(f, desc=m))
        except IngestError as exc:
            text = str(exc)
            for p in paths:
                text = text.replace(str(p), p.name)
            return no_html(f"**Error:** {text}"), gr.update(choices=uploads_of(lab)), lab
        return (no_html(f"**Done:** added {', '.join(info.added)}. The index now holds {info.n_chunks} passages from "
                        f"{info.n_sources} files ({info.n_user_files} added by users).")
                + ("" if [p.name for p in paths] == info.added else
                   " A file with the same name was already there, so yours is kept beside it under the name shown."),
                gr.update(choices=uploads_of(lab), value=None), lab)

    def remove_lecture(name: str | None, lab: LabSession | None):
        from tools.retrieval import IngestError, remove_file  # noqa: PLC0415

        lab = ensure(lab)
        try:
            info = remove_file(name or "", home=home, owner=lab.id)
        except IngestError as exc:
            return no_html(f"**Error:** {exc}"), gr.update(choices=uploads_of(lab)), lab
        return (no_html(f"**Done:** removed {name}. The index now holds {info.n_chunks} passages from "
                        f"{info.n_sources} files."), gr.update(choices=uploads_of(lab), value=None), lab)

    def cancel_runs(lab: LabSession | None):
        lab = ensure(lab)
        lab.cancel.set()
        gr.Info("Stopping the running tool at its next progress step; its partial run folder is removed.")
        return lab

    def add_data(files: list[Any] | None, lab: LabSession | None):
        """Uploads of the student's observations/truth into their own workspace (run_da_experiment)."""
        from tools.dafiles import import_data  # noqa: PLC0415

        lab = ensure(lab)
        lab.workspace.prepare()             # the session's folder exists, private (700), before a file lands in it
        stored, problems = [], []
        for f in files or []:
            path = Path(getattr(f, "name", f))
            try:
                stored.append(import_data(path, lab.workspace, name=path.name).name)
            except ToolError as exc:
                problems.append(str(exc))
        lines = [f"**Stored** {', '.join(stored)} in your workspace: give the name to `run_da_experiment`, e.g. "
                 f"`observations={stored[0]}` (and `truth=` for a truth file)."] if stored else []
        lines += [f"**Not stored:** {p}" for p in problems]
        return "\n\n".join(lines) or "Choose a .csv or .nc file first.", lab

    # Gradio's copies of served files older than a day are removed every hour.
    with gr.Blocks(title="dalab", fill_width=True, delete_cache=(3600, 86400)) as demo:
        lab_state = gr.State(None)     # the session itself comes from the signed cookie (see ensure)
        gr.Markdown(f"## {TITLE}\nAnswering: **{model_name}** · tools run in your own workspace; "
                    "figures, numbers and lecture passages come with every answer.", elem_id="header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(label="dalab", elem_id="chat", height="calc(100vh - 240px)",
                                             min_height=480, buttons=["copy"],
                                             latex_delimiters=MATH,
                                             feedback_options=None,
                                             placeholder="Ask to run an experiment or about a lecture concept.")
                        with gr.Row():
                            box = gr.Textbox(placeholder="e.g. run a 3D-Var cycle with observation error 0.2",
                                             show_label=False, scale=6, elem_id="message", autofocus=True)
                            send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                            sent = gr.Textbox(visible=False, label="message")   # the message being answered
                        gr.Examples(EXAMPLES, inputs=box, label="Try")
                        with gr.Row():
                            clear_btn = gr.Button("New conversation", size="sm")
                            stop_btn = gr.Button("Cancel the running tool", size="sm", variant="stop",
                                                   elem_id="cancel")
                            tutor_box = gr.Checkbox(False, label="Tutor mode", elem_id="tutor",
                                                    info="predict before each run, hints, misconceptions")
                    with gr.Column(scale=2):
                        gr.Markdown("### Latest run")
                        latest_md = gr.Markdown(result_card(None), elem_id="latest-run", latex_delimiters=MATH)
                        latest_metrics = gr.Dataframe(metrics_frame(None), label="metrics", elem_id="metrics",
                                                      interactive=False, wrap=True,
                                                      column_widths=["30%", "17%", "53%"])
                        latest_files = gr.File(label="reproduce.py and the run record", file_count="multiple",
                                               interactive=False, elem_classes=READ_ONLY)
            with gr.Tab("Tools", id="tools"):
                gr.Markdown("Run any tool directly, without the assistant. Empty fields take the defaults.")
                with gr.Accordion("Your own data for run_da_experiment: observations or truth as CSV "
                                  "(time, then one column per variable; empty = not observed) or NetCDF", open=False):
                    data_files = gr.File(file_count="multiple", file_types=[".csv", ".nc"], label="data files",
                                         elem_id="data-upload")
                    data_btn = gr.Button("Store in my workspace", elem_id="data-store")
                    data_status = gr.Markdown(elem_id="data-status")
                forms = [_tool_form(spec, lab_state, ensure, latest_panel) for spec in TOOLS.values()]
                # one result panel for every form (the one picked shows above it): a page of 18
                # galleries, tables and file lists cost every student's browser and the server alike
                with gr.Column(elem_id="tool-result"):
                    with gr.Row():
                        tool_status = gr.Markdown(latex_delimiters=MATH, elem_id="tool-status")
                        tool_stop = gr.Button("Cancel", variant="stop", scale=0, min_width=120, elem_id="tool-cancel")
                    with gr.Row():
                        tool_gallery = figure_gallery(scale=3)
                        with gr.Column(scale=2):
                            tool_metrics = gr.Dataframe(metrics_frame(None), label="metrics", interactive=False)
                            tool_files = gr.File(label="reproduce.py and the run record", file_count="multiple",
                                                 interactive=False, elem_classes=READ_ONLY)
            with gr.Tab("Lectures", id="lectures"):
                with gr.Row():
                    query = gr.Textbox(label="Search the lecture notes", scale=5,
                                       placeholder="e.g. why normalise each satellite channel?")
                    k = gr.Slider(1, 10, value=4, step=1, label="passages", scale=1)
                search_btn = gr.Button("Search", variant="primary")
                hits = gr.Markdown(latex_delimiters=MATH)
                with gr.Accordion("Add lecture files (PDF, Markdown, text) to this server's shared index — "
                                  "every session's search and answers can use them", open=False):
                    uploads = gr.File(file_count="multiple", file_types=[".pdf", ".md", ".markdown", ".txt"],
                                      label="lecture files")
                    add_btn = gr.Button("Add to the index")
                    add_status = gr.Markdown()
                    with gr.Row():
                        my_uploads = gr.Dropdown(label="files you added", choices=[], interactive=True, scale=3)
                        remove_btn = gr.Button("Remove from the index", size="sm", scale=1)
            with gr.Tab("Runs", id="runs") as runs_tab:
                runs_where = gr.Markdown()
                with gr.Row():
                    refresh = gr.Button("Refresh", size="sm")
                    delete_btn = gr.Button("Delete the selected run", size="sm", variant="stop")
                with gr.Row(visible=False, elem_id="confirm-delete") as confirm_row:
                    confirm_md = gr.Markdown()
                    confirm_btn = gr.Button("Yes, delete it", size="sm", variant="stop", elem_id="confirm-delete-yes")
                    cancel_btn = gr.Button("Cancel", size="sm", elem_id="confirm-delete-no")
                runs_table = gr.Dataframe(pd.DataFrame([], columns=RUN_HEADERS), interactive=False, wrap=True,
                                          elem_id="runs-table")
                run_pick = gr.Dropdown(label="run", choices=[], interactive=True)
                with gr.Row():
                    with gr.Column(scale=3):
                        run_gallery = figure_gallery()
                    with gr.Column(scale=2):
                        run_md = gr.Markdown(latex_delimiters=MATH)
                        run_metrics = gr.Dataframe(metrics_frame(None), label="metrics", interactive=False)
                        run_files = gr.File(label="downloads", file_count="multiple", interactive=False,
                                            elem_classes=READ_ONLY)

        for connect in forms:
            connect([tool_status, tool_gallery, tool_metrics, tool_files], [latest_md, latest_metrics, latest_files])
        tool_stop.click(cancel_runs, [lab_state], [lab_state], queue=False, api_name=False)
        chat_outputs = [chatbot, latest_md, latest_metrics, latest_files, lab_state]
        runs_outputs = [runs_where, runs_table, run_pick, run_md, run_gallery, run_metrics, run_files, lab_state]
        # A message sent while a turn runs is taken at once and answered after it (see chat_turn).
        # The Runs tab lists the runs when it is opened (or refreshed), not after every turn.
        for trigger, api in ((box.submit, False), (send.click, "chat")):
            (trigger(take, [box], [box, sent], queue=False, api_name=False, trigger_mode="multiple")
             .then(respond, [sent, lab_state], chat_outputs, show_progress="minimal", trigger_mode="multiple",
                   concurrency_limit=CHAT_TURNS_AT_ONCE, concurrency_id="chat", api_name=api))
        tutor_box.change(set_tutor, [tutor_box, lab_state], [lab_state], api_name="tutor")
        for trigger in (clear_btn.click, chatbot.clear):
            trigger(clear, [lab_state], [chatbot, latest_md, latest_metrics, latest_files, lab_state], api_name=False)
        demo.load(restore, [lab_state], [lab_state, chatbot, latest_md, latest_metrics, latest_files, my_uploads],
                  api_name=False)
        stop_btn.click(cancel_runs, [lab_state], [lab_state], queue=False, api_name="cancel")
        search_btn.click(search_notes, [query, k], hits, api_name="search_lectures_text")
        query.submit(search_notes, [query, k], hits, api_name=False)
        add_btn.click(add_lectures, [uploads, lab_state], [add_status, my_uploads, lab_state], api_name="add_lectures")
        remove_btn.click(remove_lecture, [my_uploads, lab_state], [add_status, my_uploads, lab_state],
                         api_name="remove_lecture")
        data_btn.click(add_data, [data_files, lab_state], [data_status, lab_state], api_name="add_data")
        refresh.click(runs_view, [lab_state], runs_outputs, api_name="runs")
        delete_btn.click(ask_delete, [run_pick], [confirm_row, confirm_md], api_name=False)
        cancel_btn.click(lambda: gr.update(visible=False), None, confirm_row, api_name=False)
        (confirm_btn.click(delete_run, [lab_state, run_pick], runs_outputs, api_name="delete_run")
         .then(lambda: gr.update(visible=False), None, confirm_row, api_name=False))
        runs_tab.select(runs_view, [lab_state], runs_outputs, api_name=False)
        run_pick.input(show_run, [lab_state, run_pick], [run_md, run_gallery, run_metrics, run_files, lab_state],
                       api_name=False)
        runs_table.select(pick_row, [lab_state], [run_pick, run_md, run_gallery, run_metrics, run_files, lab_state],
                          api_name=False)
    return demo


def figure_gallery(**kwargs: Any) -> gr.Gallery:
    """A run's figures, one per row at full width and never cropped (click one to enlarge)."""
    return gr.Gallery(label="figures (click one to enlarge)", columns=1, height=900, format="png",
                      object_fit="contain", preview=False, **kwargs)


def _tool_form(spec: ToolSpec, lab_state: gr.State, ensure: Callable[[Any], LabSession],
               latest_panel: Callable[[LabSession], tuple[Any, ...]]) -> Callable[[list[Any], list[Any]], None]:
    """One tab of the Tools tab: the tool's arguments as inputs and its Run button. Returns
    ``connect(result, panel)``, which wires the button to the Tools tab's shared result panel
    (status, figures, metrics, files) and the chat tab's latest-run panel (which follows every run
    of the session) once both exist."""
    schema = spec.args.model_json_schema()
    required = set(schema.get("required", []))
    names = list(schema["properties"])
    with gr.Tab(spec.name):
        gr.Markdown(spec.description.split("\n\n")[0].replace("\n", " "))
        with gr.Row():
            inputs = [form_component(n, schema["properties"][n], n in required) for n in names]
        button = gr.Button(f"Run {spec.name}", variant="primary")

    def run(lab: LabSession | None, *values: Any):
        lab = ensure(lab)
        args = form_args(names, values)
        for text, result in run_form_tool(lab, spec.name, args):
            panel = latest_panel(lab) if result is not None else (gr.skip(),) * 3
            if result is None:
                yield text, [], metrics_frame(None), [], *panel, lab
            else:
                yield text, [str(p) for p in result.figures], metrics_frame(result), tool_downloads(result), *panel, lab

    # Named parameters for the API page and gradio_client (the function itself takes them positionally).
    run.__name__ = spec.name
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("lab", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    def connect(result: list[Any], panel: list[Any]) -> None:
        button.click(run, [lab_state, *inputs], [*result, *panel, lab_state],
                     api_name=spec.name, concurrency_limit=TOOL_RUNS_AT_ONCE, concurrency_id="tool-forms")

    return connect


# ----------------------------------------------------------------------------- serving

def create_app(settings: Settings | None = None, model: Any = None, mcp: bool = False):
    """The ASGI app: the UI at ``/`` and, with ``mcp``, the tools over MCP at ``/mcp/`` (behind
    ``DALAB_MCP_TOKEN`` when one is set), wrapped in the signed session cookies.

    At start-up, partial run folders that killed processes left behind are removed, and
    ``DALAB_HOME/sessions`` is made private to the server's user (mode 700)."""
    from contextlib import asynccontextmanager  # noqa: PLC0415

    from fastapi import FastAPI  # noqa: PLC0415

    settings = settings or get_settings()
    home = Path(settings.home)
    sessions = home / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    os.chmod(sessions, 0o700)
    removed = clean_partials(home)
    if removed:
        log.warning("removed %d partial run folder(s) left by stopped processes", removed)
    demo = build_app(settings, model)
    demo.queue(default_concurrency_limit=None)
    manager = None
    if mcp:
        from assistant.mcp_server import session_manager, with_token  # noqa: PLC0415

        manager = session_manager(Workspace(home, confined=True, max_active=4 * settings.runs_per_session))

    @asynccontextmanager
    async def lifespan(_app):
        if manager is None:
            yield
        else:
            async with manager.run():
                yield

    app = FastAPI(lifespan=lifespan)
    if manager is not None:
        async def mcp_endpoint(scope, receive, send) -> None:
            await manager.handle_request(scope, receive, send)

        app.mount("/mcp", with_token(mcp_endpoint, settings.mcp_token))
    gr.mount_gradio_app(app, demo, path="/", allowed_paths=[str(sessions)], css=CSS, head=HEAD,
                        blocked_paths=[str(home / "ui_secret")], footer_links=["api"], max_file_size="20mb")
    return session_cookies(app, SessionKeys(server_secret(home)), sessions)


def share_cores() -> None:
    """Few torch threads for the whole server (half the cores, 1 on a 2-core machine): sessions run
    tools side by side, and torch's spinning worker threads slow everything down when the cores
    are already busy (measured: a 10 ms query took 500 ms with 2 threads on 2 busy cores)."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(max(1, min(4, (os.cpu_count() or 1) // 2)))


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def start_workers(settings: Settings) -> Any:
    """Run tools in worker processes (``DALAB_RUN_WORKERS``, default one per core), started now so
    that the first run does not wait for them; the workers, or None where runs stay in this process."""
    from tools.registry import install  # noqa: PLC0415
    from tools.workers import RunWorkers, workers_wanted  # noqa: PLC0415

    n = workers_wanted(settings.run_workers)
    if n == 0:
        return None
    workers = RunWorkers(n)
    workers.warm()
    install(workers)
    return workers


def warm_up(home: Path) -> None:
    """Open the lecture index and load the embedding model in the background (building the index if
    there is none), so that the first student's question does not wait for it."""

    def work() -> None:
        try:
            from tools.retrieval import search  # noqa: PLC0415

            search("data assimilation", k=1, home=home)
        except Exception as exc:  # noqa: BLE001 — the first search will report it properly
            print(f"dalab: the lecture index is not ready ({exc}); searching will try again", flush=True)

    threading.Thread(target=work, daemon=True, name="dalab-warm-up").start()


def serve(host: str = "127.0.0.1", port: int = 7860, mcp: bool = False) -> None:
    """Serve until interrupted (``dalab ui``)."""
    import uvicorn  # noqa: PLC0415

    from assistant.mcp_server import is_loopback  # noqa: PLC0415

    settings = get_settings()
    if mcp and not settings.mcp_token and not is_loopback(host):
        raise SettingsError(f"--mcp on {host} (beyond this machine) needs a token: set DALAB_MCP_TOKEN to a long "
                            "random string (e.g. `export DALAB_MCP_TOKEN=$(openssl rand -hex 32)`) and give it to "
                            "the MCP clients, which send it as 'Authorization: Bearer <token>'")
    share_cores()
    workers = start_workers(settings)
    app = create_app(settings, mcp=mcp)
    warm_up(Path(settings.home))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if not is_loopback(host):
        print(f"dalab: serving on {host}: anyone who can reach this machine can use the app; each browser gets "
              "its own workspace (a signed cookie)" + (", and MCP needs DALAB_MCP_TOKEN" if mcp else "")
              + f". Limits per run: {settings.max_memory_gb:g} GiB, {settings.max_run_seconds:g} s; "
              f"{settings.runs_per_session} run(s) at once per session; runs go to "
              f"{f'{workers.n} worker processes' if workers else 'the server process'}.", flush=True)
    print(f"dalab UI: http://{shown}:{port}/" + (f"   MCP: http://{shown}:{port}/mcp/" if mcp else ""), flush=True)
    # uvicorn ends on SIGTERM by raising it again once it has stopped: as an exit, the workers are closed
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if workers is not None:
            from tools.registry import install  # noqa: PLC0415

            install(None)
            workers.close()
