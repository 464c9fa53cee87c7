"""The ``dalab`` command line: scripted use of every tool, the lecture index, the agent and the UI.

    dalab tools [--json]
    dalab tool NAME [key=value ...] [--json]
    dalab search QUERY [QUERY ...] [--k 4] [--json]
    dalab ask QUESTION [QUESTION ...] [--json] [--conversation] [--llm offline|openai]
    dalab index [--rebuild] [--add PATH ...]
    dalab ui [--host 127.0.0.1] [--port 7860] [--mcp]

Bad input exits with code 2 and a message that says what is allowed (never a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

for _key, _value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                     ("GRADIO_ANALYTICS_ENABLED", "False"), ("ANONYMIZED_TELEMETRY", "False"), ("MPLBACKEND", "Agg")):
    os.environ.setdefault(_key, _value)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130   # as shells report a command ended by Ctrl-C


class UsageError(Exception):
    """Bad command-line input: printed without a traceback, exit code 2."""


def parse_value(text: str) -> Any:
    """A ``key=value`` value: JSON when it parses (numbers, true/false, null), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on"):
            return True
        if lowered in ("false", "no", "off"):
            return False
        return text


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"arguments are key=value pairs, got {pair!r} (e.g. sigma_o=0.2)")
        args[key.strip()] = parse_value(value)
    return args


class ProgressBar:
    """A one-line progress bar on stderr for long tools."""

    def __init__(self, stream=sys.stderr, width: int = 30) -> None:
        self.stream, self.width, self.shown = stream, width, False

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(round(self.width * fraction))
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {100 * fraction:3.0f}% {message[:60]:<60}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def cmd_tools(ns: argparse.Namespace) -> int:
    from tools.registry import TOOLS  # noqa: PLC0415

    if ns.json:
        print(json.dumps([spec.json_schema() for spec in TOOLS.values()], indent=2))
        return 0
    for spec in TOOLS.values():
        first = spec.description.split("\n\n")[0].replace("\n", " ")
        print(f"{spec.name:<26} {first}")
        for name, field in spec.args.model_fields.items():
            shown = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
            print(f"    {name}={shown:<12} {field.description or ''}")
    return 0


def cmd_tool(ns: argparse.Namespace) -> int:
    from tools.base import ToolError  # noqa: PLC0415
    from tools.registry import run_tool  # noqa: PLC0415

    bar = ProgressBar()
    try:
        result = run_tool(ns.name, parse_pairs(ns.args), progress=None if ns.quiet else bar)
    except ToolError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        bar.close()
        print("interrupted (Ctrl-C): no run record was written; a sweep keeps the points it finished, "
              "so running it again continues where it stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.close()
    if ns.json:
        print(result.model_dump_json(indent=2))
    else:
        print(result.summary)
        for key, value in result.metrics.items():
            print(f"  {key:<32} {value}")
        for path in result.figures + result.files:
            print(f"  -> {path}")
    return 0


def cmd_search(ns: argparse.Namespace) -> int:
    from tools.retrieval import RetrievalError, ensure_index, search  # noqa: PLC0415

    try:
        ensure_index()
        for query in ns.queries:
            passages = search(query, k=ns.k)
            if ns.json:
                print(json.dumps({"query": query, "passages": [
                    {"source": p.source, "section": p.section, "text": p.text, "score": p.score} for p in passages]}))
            else:
                print(f"# {query}")
                for p in passages:
                    print(f"  {p.citation} score {p.score:.2f}\n    {p.text[:240].replace(chr(10), ' ')}...")
    except RetrievalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def cmd_index(ns: argparse.Namespace) -> int:
    from tools.retrieval import IngestError, add_files, ensure_index  # noqa: PLC0415

    try:
        info = ensure_index(rebuild=ns.rebuild)
        if ns.add:
            info = add_files([Path(p) for p in ns.add])
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("the index was left as it was", file=sys.stderr)
        return EXIT_USAGE
    state = "built" if info.built else "up to date"
    print(f"lecture index {state}: {info.n_chunks} passages from {info.n_sources} files "
          f"({info.n_user_files} added by you) in {info.seconds:.1f} s at {info.path}")
    return 0


def cmd_ask(ns: argparse.Namespace) -> int:
    """Answer each question in a fresh conversation, or with --conversation all in one (a
    scripted transcript: follow-ups resolve against the earlier turns)."""
    from assistant.agent import AgentError, Session, ask  # noqa: PLC0415

    try:
        session = Session(llm=ns.llm, tutor=ns.tutor) if ns.conversation or ns.tutor else None
        for question in ns.questions:
            answer = ask(question, llm=ns.llm, session=session)
            if ns.json:
                print(json.dumps(answer.to_dict()))
            else:
                print(answer.answer)
                for fig in answer.figures:
                    print(f"  figure: {fig}")
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def cmd_ui(ns: argparse.Namespace) -> int:
    """Serve the web app (and, with --mcp, the tools over MCP) until Ctrl-C."""
    import socket  # noqa: PLC0415

    if not 0 < ns.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {ns.port}")
    try:
        family = socket.getaddrinfo(ns.host, ns.port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise UsageError(f"--host {ns.host!r} is not an address of this machine (e.g. 127.0.0.1, 0.0.0.0)") from None
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn does
        try:
            probe.bind((ns.host, ns.port))
        except OSError as exc:
            raise UsageError(f"cannot serve on {ns.host}:{ns.port} ({exc.strerror}); "
                             "choose another with --port, e.g. --port 7861") from None
    from assistant.agent import AgentError  # noqa: PLC0415
    from assistant.ui import serve  # noqa: PLC0415

    from tools.settings import SettingsError  # noqa: PLC0415

    try:
        serve(host=ns.host, port=ns.port, mcp=ns.mcp)
    except (AgentError, SettingsError) as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return 0


def cmd_chat(ns: argparse.Namespace) -> int:
    """An interactive conversation in the terminal (follow-ups work; 'quit' or Ctrl-D ends it)."""
    from assistant.agent import AgentError, Session  # noqa: PLC0415

    try:
        session = Session(llm=getattr(ns, "llm", None), tutor=getattr(ns, "tutor", False))
    except AgentError as exc:
        raise UsageError(str(exc)) from None
    if session.tutor:
        print("Tutor mode: I will ask you to predict each experiment's outcome before I run it; "
              "ask for a hint whenever you are stuck.")
    print(f"dalab chat — answering: {session.model_name}. Try: 'run a 3D-Var cycle with sigma_o 0.2', "
          "'now with the covariance update', 'why does fixed-B 3D-Var plateau?'. Type 'quit' to leave.")
    while True:
        try:
            message = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if message.lower() in ("quit", "exit", "q"):
            return 0
        if not message:
            continue
        try:
            answer = session.ask(message)
        except AgentError as exc:
            print(f"error: {exc}")
            continue
        print(f"\ndalab> {answer.answer}")
        for fig in answer.figures:
            print(f"  figure: {fig}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dalab", description="dalab: the ML-in-data-assimilation lab assistant")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("tools", help="list the tools")
    s.add_argument("--json", action="store_true", help="JSON schemas of the tools")
    s.set_defaults(fn=cmd_tools)
    s = sub.add_parser("tool", help="run one tool: dalab tool NAME key=value ...")
    s.add_argument("name")
    s.add_argument("args", nargs="*", metavar="key=value")
    s.add_argument("--json", action="store_true", help="print the ToolResult as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_tool)
    s = sub.add_parser("search", help="search the lecture notes")
    s.add_argument("queries", nargs="+", metavar="QUERY")
    s.add_argument("--k", type=int, default=4)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_search)
    s = sub.add_parser("ask", help="ask the assistant (one fresh conversation per question, or --conversation)")
    s.add_argument("questions", nargs="+", metavar="QUESTION")
    s.add_argument("--json", action="store_true", help="one JSON line per question")
    s.add_argument("--conversation", action="store_true",
                   help="ask the questions in turn in one conversation (follow-ups use the earlier turns)")
    s.add_argument("--tutor", action="store_true",
                   help="tutor mode (predictions before runs, hints); the questions form one conversation")
    s.add_argument("--llm", choices=["offline", "openai"], default=None)
    s.set_defaults(fn=cmd_ask)
    s = sub.add_parser("chat", help="talk to the assistant in this terminal")
    s.add_argument("--llm", choices=["offline", "openai"], default=None)
    s.add_argument("--tutor", action="store_true", help="tutor mode: predict before each run, hints, misconceptions")
    s.set_defaults(fn=cmd_chat)
    s = sub.add_parser("index", help="build the lecture index; --add your own lecture files")
    s.add_argument("--rebuild", action="store_true")
    s.add_argument("--add", nargs="+", metavar="PATH")
    s.set_defaults(fn=cmd_index)
    s = sub.add_parser("ui", help="serve the web app")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--mcp", action="store_true", help="also serve the tools over MCP")
    s.set_defaults(fn=cmd_ui)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure ends in one ``error: ...`` line on stderr and exit code 2:
    bad input and configuration with their own messages, anything else as an unexpected failure
    named by its type (never a traceback)."""
    from tools.base import ToolError  # noqa: PLC0415
    from tools.settings import SettingsError  # noqa: PLC0415

    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.fn(ns)
    except (UsageError, ToolError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `dalab tools | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 — the promise: a message, never a traceback
        from assistant.agent import AgentError  # noqa: PLC0415

        if isinstance(exc, (AgentError, ValueError, OSError)):
            print(f"error: {exc}", file=sys.stderr)
        else:
            print(f"error: dalab {ns.command} failed unexpectedly ({type(exc).__name__}: {str(exc)[:300]}); "
                  "please report this with the command you ran", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
