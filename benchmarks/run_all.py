"""Run every ``benchmarks/bench_*.py`` and collect the figures in one place.

One command::

    .venv/bin/python benchmarks/run_all.py [--quick] [--only NAME ...] [--docs]

Each benchmark runs in its own subprocess (a fresh interpreter, so one
benchmark's imports and tracing cannot colour the next) with a timeout. The
results, with the machine they came from, go to
``benchmarks/results/latest.json``, a chart of every benchmark's ratios to
``benchmarks/results/latest.png``, and with ``--docs`` the page
``docs/benchmarks.md`` (and its chart) is regenerated from them.

The protocol a ``bench_<name>.py`` follows is in ``benchmarks/README.md``:
a ``main(quick: bool) -> dict`` returning JSON-ready figures, with the
comparisons under ``"ratios"``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"
DOCS_CHART = ROOT / "docs" / "assets" / "benchmarks.png"


# -- discovery and running ---------------------------------------------------

def discover(directory: Path = HERE) -> dict[str, Path]:
    """The benchmarks in *directory*, by name (``bench_limit.py`` is ``limit``)."""
    return {path.stem.removeprefix("bench_"): path
            for path in sorted(directory.glob("bench_*.py"))}


def load_main(path: Path) -> Any:
    """Import a benchmark file by path and return its ``main``."""
    spec = importlib.util.spec_from_file_location(f"memguard_bench_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.main


def run_child(path: Path, quick: bool, out: Path) -> int:
    """In the child process: run one benchmark and write its result to *out*."""
    sys.path.insert(0, str(HERE))
    result = load_main(path)(quick)
    if not isinstance(result, dict):
        raise TypeError(f"{path.name}: main() returned {type(result).__name__}, not a dict")
    out.write_text(json.dumps(result, indent=2, default=_jsonable))
    return 0


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def run_one(name: str, path: Path, *, quick: bool, timeout: float) -> dict[str, Any]:
    """Run one benchmark in a subprocess; its entry for ``latest.json``."""
    started = time.perf_counter()
    entry: dict[str, Any] = {"file": str(path.relative_to(ROOT)), "quick": quick,
                             "date": _now()}
    with tempfile.TemporaryDirectory(prefix=f"memguard-bench-{name}-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(path),
                   "--child-out", str(out)] + (["--quick"] if quick else [])
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  cwd=ROOT, check=False)
        except subprocess.TimeoutExpired:
            entry.update(ok=False, error=f"timed out after {timeout:g} s")
        else:
            if done.returncode == 0 and out.exists():
                entry.update(ok=True, result=json.loads(out.read_text()))
            else:
                tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
                entry.update(ok=False, error=f"exit code {done.returncode}\n{tail}")
    entry["seconds"] = round(time.perf_counter() - started, 2)
    return entry


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- the machine ---------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    memory = _memory_bytes()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "memory": f"{memory / 1024**3:.1f} GiB" if memory else "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "commit": _git_commit(),
        "load_average": _load_average(),
    }


def _load_average() -> float | None:
    """The 1-minute load average as the run ends: other work on the machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# -- output --------------------------------------------------------------------

def _fmt(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}"


def _ratio_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.2f}x"


def summary(results: dict[str, Any]) -> str:
    """The text printed at the end of a run."""
    m = results["machine"]
    lines = [f"memguard benchmarks, {results['date']}"
             f"{' (quick)' if results.get('quick') else ''}",
             f"machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['python']}, "
             f"{m['platform']}, load average {m.get('load_average')}", ""]
    for name, entry in results["benchmarks"].items():
        if not entry.get("ok"):
            lines += [f"== {name}: FAILED ({entry.get('seconds')} s)",
                      *("   " + line for line in str(entry.get("error")).splitlines()), ""]
            continue
        result = entry["result"]
        lines.append(f"== {name}: {result.get('title', name)} ({entry['seconds']} s)")
        if result.get("unit"):
            lines.append(f"   ratios: {result['unit']}")
        ratios = result.get("ratios") or {}
        width = max((len(k) for k in ratios), default=0)
        lines += [f"   {label:<{width}}  {_ratio_text(v)}" for label, v in ratios.items()]
        lines += [f"   note: {note}" for note in result.get("notes", [])]
        lines.append("")
    return "\n".join(lines)


def write_chart(results: dict[str, Any], path: Path) -> Path | None:
    """A bar chart of every benchmark's ratios; ``None`` if there are none."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return None
    panels = [(name, e["result"]) for name, e in results["benchmarks"].items()
              if e.get("ok") and _numeric_ratios(e["result"])]
    if not panels:
        return None
    heights = [max(1.6, 0.32 * len(_numeric_ratios(r)) + 0.9) for _, r in panels]
    figure = Figure(figsize=(9, sum(heights)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (name, result) in zip(axes, panels, strict=True):
        ratios = _numeric_ratios(result)
        labels = list(ratios)[::-1]
        values = [ratios[label] for label in labels]
        colours = ["tab:green" if "memguard" in label else "tab:gray" for label in labels]
        ax.barh(labels, values, color=colours)
        ax.axvline(1.0, color="black", linewidth=0.8)
        if max(values) / max(min(v for v in values if v > 0), 1e-12) > 50:
            ax.set_xscale("log")
        for y, value in enumerate(values):
            ax.annotate(f"{value:.3g}x", (value, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7)
        ax.set_title(result.get("title", name), fontsize=10, loc="left")
        if result.get("unit"):
            ax.set_xlabel(result["unit"], fontsize=8)
        ax.tick_params(labelsize=7)
    m = results["machine"]
    figure.suptitle(f"memguard benchmarks — {m['cpu']}, {m['cores']} cores, {m['python']}",
                    fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _numeric_ratios(result: dict[str, Any]) -> dict[str, float]:
    ratios = result.get("ratios") or {}
    return {k: float(v) for k, v in ratios.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0}


def _md_text(text: str) -> str:
    """*text* safe in Markdown: ``<``, ``>`` and ``&`` escaped outside `code spans`."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: escape everything
        parts = [text.replace("`", "\\`")]
    for i in range(0, len(parts), 2):
        parts[i] = (parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    .replace("*", "\\*").replace("_", "\\_").replace("[", "\\[")
                    .replace("]", "\\]"))
    return "`".join(parts)


def _md_cell(value: object) -> str:
    return _md_text(_fmt(value)).replace("|", "\\|")


def render_docs(results: dict[str, Any], chart: str | None) -> str:
    """``docs/benchmarks.md`` from the results."""
    m = results["machine"]
    out = [
        "# Benchmarks",
        "",
        "memguard's costs, measured in one run next to its peers on the same workloads.",
        "This page is generated by `benchmarks/run_all.py --docs` from",
        "`benchmarks/results/latest.json`; do not edit it by hand. To reproduce:",
        "",
        "```bash",
        ".venv/bin/python benchmarks/run_all.py            # full sizes",
        ".venv/bin/python benchmarks/run_all.py --quick    # smaller sizes, fewer repeats",
        "```",
        "",
        "Each section says what its ratios divide. For an overhead (a time over the",
        "untraced or plain time), 1.00x costs nothing and 2.00x takes twice as long;",
        "other sections compare memguard with a peer (a peer's time over memguard's)",
        "or score verdicts (the share judged right). Each figure is the median of",
        "several repeats. The numbers are for the machine below, which was shared",
        "with other work while they were measured (see the load average); they move",
        "by several percent from run to run.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        f"| CPU | {m['cpu']} |",
        f"| cores | {m['cores']} |",
        f"| memory | {m['memory']} |",
        f"| Python | {m['python']} |",
        f"| platform | {m['platform']} |",
        f"| memguard commit | {m.get('commit') or 'unknown'} |",
        f"| load average (1 min) at the end of the run | {m.get('load_average', 'unknown')} |",
        f"| date | {results['date']}{' (`--quick` sizes)' if results.get('quick') else ''} |",
        "",
    ]
    if chart:
        out += [f"![benchmark ratios]({chart})", ""]
    for name, entry in results["benchmarks"].items():
        out += _docs_section(name, entry)
    return "\n".join(out).rstrip() + "\n"


def _docs_section(name: str, entry: dict[str, Any]) -> list[str]:
    if not entry.get("ok"):
        return [f"## {name}", "", f"Did not complete in the last run: {entry.get('error', '')}"
                .splitlines()[0], ""]
    result = entry["result"]
    out = [f"## {_md_text(str(result.get('title', name)))}", ""]
    if result.get("description"):
        out += [_md_text(str(result["description"])), ""]
    source = (f"From `{entry['file']}`{' (quick sizes)' if entry.get('quick') else ''}, "
              f"measured {entry.get('date', 'at an unknown date')}")
    unit = f"; ratios: {_md_text(str(result['unit']))}" if result.get("unit") else ""
    out += [f"{source}{unit}.", ""]
    table = result.get("table")
    if isinstance(table, list) and table and all(isinstance(r, dict) for r in table):
        columns = list(dict.fromkeys(k for row in table for k in row))
        out += ["| " + " | ".join(_md_cell(c) for c in columns) + " |",
                "|" + " --- |" * len(columns)]
        out += ["| " + " | ".join(_md_cell(row.get(c, "")) for c in columns) + " |"
                for row in table]
        out.append("")
    elif result.get("ratios"):
        out += [f"| comparison | {_md_cell(result.get('unit') or 'ratio')} |", "| --- | --- |"]
        out += [f"| {_md_cell(k)} | {_ratio_text(v)} |" for k, v in result["ratios"].items()]
        out.append("")
    out += [f"- {_md_text(str(note))}" for note in result.get("notes", [])]
    if result.get("notes"):
        out.append("")
    return out


def write_docs(results: dict[str, Any], chart: Path | None) -> None:
    """Write ``docs/benchmarks.md`` (and copy the chart next to it)."""
    doc_chart = None
    if chart is not None:
        DOCS_CHART.parent.mkdir(parents=True, exist_ok=True)
        DOCS_CHART.write_bytes(chart.read_bytes())
        doc_chart = "assets/benchmarks.png"
    DOCS_PAGE.write_text(render_docs(results, doc_chart))
    print(f"wrote {DOCS_PAGE}")


# -- main ----------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these benchmarks (bench_NAME.py)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per benchmark (default 180 with --quick, else 900)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="directory for latest.json and latest.png")
    parser.add_argument("--docs", action="store_true",
                        help="regenerate docs/benchmarks.md from the results")
    parser.add_argument("--docs-only", action="store_true",
                        help="run nothing: regenerate docs/benchmarks.md from latest.json")
    parser.add_argument("--no-chart", action="store_true", help="skip the chart")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return run_child(args.child, args.quick, args.child_out)
    found = discover()
    if args.list:
        print("\n".join(f"{name}: {path.name}" for name, path in found.items()))
        return 0
    if args.docs_only:
        results = json.loads((args.out / "latest.json").read_text())
        chart = args.out / "latest.png"
        write_docs(results, chart if chart.exists() else None)
        return 0
    names = list(found)
    if args.only:
        unknown = sorted(set(args.only) - set(found))
        if unknown:
            print(f"unknown benchmark(s) {unknown}; known: {sorted(found)}", file=sys.stderr)
            return 2
        names = [n for n in names if n in args.only]
    timeout = args.timeout or (180.0 if args.quick else 900.0)
    json_path = args.out / "latest.json"
    previous: dict[str, Any] = {}
    if args.only and json_path.exists():
        # A partial run keeps the other benchmarks' last figures.
        previous = json.loads(json_path.read_text()).get("benchmarks", {})
    benchmarks = {n: e for n, e in previous.items() if n in found and n not in names}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        benchmarks[name] = run_one(name, found[name], quick=args.quick, timeout=timeout)
    results = {"format": "memguard-benchmarks/1", "date": _now(), "quick": args.quick,
               "machine": machine_info(), "benchmarks": dict(sorted(benchmarks.items()))}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    chart = None if args.no_chart else write_chart(results, args.out / "latest.png")
    print(summary(results))
    print(f"wrote {json_path}" + (f" and {chart}" if chart else ""))
    if args.docs:
        write_docs(results, chart)
    return 0 if all(e.get("ok") for e in results["benchmarks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
