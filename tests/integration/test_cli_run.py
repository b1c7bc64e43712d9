"""``memguard run`` in-process through ``main([...])``: real programs, real tracing."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memguard.cli import main
from memguard.report import render
from memguard.values.files import load
from memguard.values.run import RunReport

MB = 1_000_000


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _run(tmp_path: Path, *argv: str, census: bool = False) -> tuple[int, RunReport | None]:
    """Run through main(); the object census (a pass over pytest's whole heap) only
    when asked for, to keep these tests quick."""
    output = tmp_path / "run.json"
    extra = [] if census else ["--no-census"]
    code = main(["run", "--output", str(output), "--force", *extra, *argv])
    value = load(output) if output.exists() else None
    assert value is None or isinstance(value, RunReport)
    return code, value


def test_script_runs_as_main_with_its_argv_and_its_peak_is_exact(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = _script(tmp_path, "alloc.py", """\
        import json, pathlib, sys, time
        info = {"argv": sys.argv, "name": __name__, "path0": sys.path[0]}
        pathlib.Path(sys.argv[1]).write_text(json.dumps(info))
        time.sleep(0.2)
        block = bytearray(20_000_000)
        time.sleep(0.05)
        del block
        time.sleep(0.05)
        print("done")
    """)
    seen = tmp_path / "seen.json"
    path_before, main_before = sys.path[:], sys.modules["__main__"]
    path_list, argv_list = sys.path, sys.argv
    code, run = _run(tmp_path, str(script), str(seen), "--flag", census=True)
    assert code == 0
    assert sys.path == path_before
    assert sys.path is path_list
    assert sys.argv is argv_list
    assert sys.modules["__main__"] is main_before
    info = json.loads(seen.read_text())
    assert info == {"argv": [str(script), str(seen), "--flag"], "name": "__main__",
                    "path0": str(tmp_path)}
    assert run is not None
    assert run.exit_code == 0
    assert run.error is None
    assert run.argv == (str(script), str(seen), "--flag")
    assert 20 * MB <= run.traced_peak_above_start_bytes <= 20 * MB + 200_000
    assert run.traced_end_above_start_bytes < MB
    # The peak came after the 0.2 s sleep (sleep() never returns early) and
    # within the run; how soon after depends on the machine's load.
    assert 0.2 <= run.peak_seconds <= run.duration_seconds
    assert run.duration_seconds >= 0.3
    assert run.sites[0].filename == str(script)
    assert run.sites[0].lineno == 5
    assert run.sites[0].size_bytes >= 20 * MB
    assert run.sites[0].source == "block = bytearray(20_000_000)"
    shown = render(run, "text", width=160)
    assert f"{script}:5 block = bytearray(20_000_000)" in " ".join(shown.split())
    assert len(run.timeline.samples) >= 2  # the first and the last; more as the load allows
    assert run.timeline.rss_peak_bytes is None  # not asked for (--rss)
    assert all(sample.rss_bytes is None for sample in run.timeline.samples)
    assert run.final is not None
    assert run.final.types
    assert run.final.sites is not None
    captured = capfd.readouterr()  # the program's output: its process's
    assert captured.out == "done\n"
    assert f"memguard: wrote {tmp_path / 'run.json'}; report on it with: memguard report" \
        in captured.err
    assert "\r" not in captured.err  # no status line when stderr is not a terminal
    code, run = _run(tmp_path, str(script), str(seen))
    assert run is not None
    assert run.final is not None
    assert run.final.types is None
    assert run.final.reason("types") is not None


def test_exit_codes_are_the_programs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    for body, expected in (("raise SystemExit(7)\n", 7), ("import sys; sys.exit()\n", 0),
                           ("import sys; sys.exit('bad input')\n", 1),
                           ("raise KeyboardInterrupt\n", 130)):
        script = _script(tmp_path, "exit.py", body)
        code, run = _run(tmp_path, str(script))
        assert code == expected
        assert run is not None
        assert run.exit_code == expected
    err = capfd.readouterr().err
    assert "bad input\n" in err
    assert "KeyboardInterrupt" in err


def test_a_raising_script_shows_its_own_traceback_and_is_still_measured(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = _script(tmp_path, "boom.py", """\
        kept = bytearray(5_000_000)
        def fail():
            raise ValueError("boom")
        fail()
    """)
    code, run = _run(tmp_path, str(script))
    assert code == 1
    assert run is not None
    assert run.error == "ValueError: boom"
    assert run.traced_peak_above_start_bytes >= 5 * MB
    err = capfd.readouterr().err
    trace = err[err.index("Traceback"):err.index("ValueError: boom")]
    assert f'File "{script}", line 4, in <module>' in trace
    assert f'File "{script}", line 3, in fail' in trace
    assert "memguard" not in trace
    assert "runpy" not in trace


def test_module_form_runs_like_python_dash_m(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "mgpkg_cli"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # Imports nothing but sys: the imports a program makes are its own to
    # count now (test_run_imports), and the bound below is the block's.
    (package / "tool.py").write_text(textwrap.dedent("""\
        import sys
        data = [bytes(1000) for _ in range(2000)]
        with open("seen.txt", "w") as seen:
            seen.write(repr({"argv": sys.argv, "name": __name__}))
        sys.exit(int(sys.argv[1]))
    """))
    monkeypatch.chdir(tmp_path)
    code, run = _run(tmp_path, "-m", "mgpkg_cli.tool", "5", "-x")
    assert code == 5
    seen = ast.literal_eval((tmp_path / "seen.txt").read_text())
    assert seen == {"argv": [str(package / "tool.py"), "5", "-x"], "name": "__main__"}
    assert run is not None
    assert run.command == "-m mgpkg_cli.tool 5 -x"
    # What python -m costs from the same point: runpy finds, compiles and runs
    # the module (the package's import included), the block among it.
    plain = subprocess.run([sys.executable, "-X", "tracemalloc", "-c", textwrap.dedent("""\
        import _tracemalloc, runpy, sys
        sys.argv = ["-m", "5", "-x"]
        start = _tracemalloc.get_traced_memory()[0]
        _tracemalloc.reset_peak()
        try:
            runpy._run_module_as_main("mgpkg_cli.tool")
        except SystemExit:
            pass
        print(_tracemalloc.get_traced_memory()[1] - start)
    """)], capture_output=True, text=True, check=True, timeout=120)
    expected = int(plain.stdout)
    assert expected >= 2000 * 1000
    assert abs(run.traced_peak_above_start_bytes / expected - 1) <= 0.02, expected


def test_a_directory_with_main_runs_like_python_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "helper.py").write_text("VALUE = 6\n")
    (app / "__main__.py").write_text(textwrap.dedent("""\
        import sys
        from helper import VALUE
        sys.exit(VALUE if sys.path[0] == sys.argv[0] else 99)
    """))
    monkeypatch.chdir(tmp_path)
    code, run = _run(tmp_path, "app")
    assert code == 6
    assert run is not None
    assert run.exit_code == 6


def test_limit_exceeded_exits_3_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script(tmp_path, "big.py", """\
        import time
        big = bytearray(8_000_000)
        time.sleep(0.03)
    """)
    code, run = _run(tmp_path, "--limit", "5 MB", str(script))
    assert code == 3
    assert run is not None
    assert run.limit is not None
    assert run.limit.exceeded
    assert run.limit.limit_bytes == 5 * MB
    err = capsys.readouterr().err
    assert "Memory limit exceeded in " in err
    assert f"{script}:2" in err
    site_line = next(line for line in err.splitlines() if f"{script}:2" in line)
    assert site_line.endswith("  big = bytearray(8_000_000)")
    code, run = _run(tmp_path, "--limit", "50 MB", str(script))
    assert code == 0
    assert run is not None
    assert run.limit is not None
    assert not run.limit.exceeded
    failing = _script(tmp_path, "fail.py", "x = bytearray(8_000_000)\nraise SystemExit(4)\n")
    assert _run(tmp_path, "--limit", "5 MB", str(failing))[0] == 4


CTYPES_SCRIPT = """\
    import ctypes, time
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 60_000_000
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)   # touch every page: resident now
    time.sleep(0.05)
    libc.free(block)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ctypes.CDLL(None) is libc")
def test_rss_sees_native_memory_that_tracing_cannot(tmp_path: Path) -> None:
    script = _script(tmp_path, "native.py", CTYPES_SCRIPT)
    code, run = _run(tmp_path, "--rss", "--limit", "40 MB", str(script))
    assert code == 3  # the limit is on RSS with --rss
    assert run is not None
    assert run.rss
    assert run.traced_peak_above_start_bytes < 2 * MB
    start, peak = run.timeline.rss_start_bytes, run.timeline.rss_peak_bytes
    assert start is not None
    assert peak is not None
    # 60 MB of touched native pages; other memory the process frees meanwhile
    # (earlier tests' garbage) may lower the level a little.
    assert peak - start >= 55 * MB
    assert run.limit is not None
    assert run.limit.source == "rss"
    assert run.limit.peak_above_start_bytes == peak - start
    assert run.sites == ()  # no site captures: their copies of the traces would count in RSS


def test_children_memory_is_sampled(tmp_path: Path) -> None:
    script = _script(tmp_path, "parent.py", """\
        import subprocess, sys
        child = "import time; block = bytearray(80_000_000); block[::4096] = b'x' * 19532; " \\
                "time.sleep(0.4)"
        subprocess.run([sys.executable, "-c", child], check=True)
    """)
    code, run = _run(tmp_path, "--children", "--interval", "0.02", str(script))
    assert code == 0
    assert run is not None
    assert run.children
    peak = run.children_peak_bytes
    assert peak is not None
    before_child = run.children[0][1]  # this process alone, as the program began
    assert peak - before_child >= 80 * MB  # the child's 80 MB, measured from outside it


def test_lines_profiles_the_named_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script(tmp_path, "lines.py", """\
        def load(n):
            keep = [bytes(1000) for _ in range(n)]
            return keep

        a = load(100)
        b = load(200)
    """)
    code, run = _run(tmp_path, "--lines", f"{script}:load", str(script))
    assert code == 0
    assert run is not None
    assert run.lines_target == f"{script}:load"
    (profile,) = run.lines
    assert profile.calls == 2
    assert 300 * 1000 <= profile.row(2).allocated_bytes <= 300 * 1000 + 20_000
    assert "load (" in capsys.readouterr().err


def test_bad_run_inputs_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    script = _script(tmp_path, "touch.py",
                     f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n")
    existing = tmp_path / "existing.json"
    existing.write_text("keep me")
    cases = [
        ["run", str(tmp_path / "missing.py")],
        ["run", "-m", "no_such_module_for_memguard"],
        ["run", "--output", str(existing), str(script)],
        ["run", "--limit", "12 parsecs", str(script)],
        ["run", "--lines", "no-colon", str(script)],
        ["run", "--interval", "0", str(script)],
        ["run", "--output", str(tmp_path / "no" / "such" / "dir.json"), str(script)],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err
    assert not marker.exists()  # refused before the program ran
    assert existing.read_text() == "keep me"


def test_output_dash_is_refused_before_the_run(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    script = _script(tmp_path, "prog.py", f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    code = main(["run", "-o", "-", str(script)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--output -: memguard run writes its run to a file" in err
    assert err.count("\n") == 1
    assert not marker.exists()  # refused before the program ran
    assert not (tmp_path / "-").exists()


def test_default_output_name_is_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    script = _script(tmp_path, "tiny.py", "x = 1\n")
    assert main(["run", str(script)]) == 0
    (written,) = tmp_path.glob("memguard-tiny.*.json")
    assert f"memguard report {written.name}" in capsys.readouterr().err
    assert isinstance(load(written), RunReport)


def test_a_program_that_stops_tracing_gets_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script(tmp_path, "stopper.py", "import tracemalloc\ntracemalloc.stop()\n")
    code, run = _run(tmp_path, str(script))
    assert code == 1
    assert run is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "did the program stop tracemalloc itself?" in err


def test_sites_at_the_peak_without_the_counter(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's pure-Python path: its sampler sees the new high, and has the
    main thread copy the sites (``_thread.interrupt_main``)."""
    monkeypatch.setenv("MEMGUARD_NO_NATIVE", "1")
    script = _script(tmp_path, "spike.py", """\
        import time
        kept = [bytearray(1000) for _ in range(100)]
        block = bytearray(20_000_000)
        time.sleep(0.05)  # the sampler reads the level every 10 ms
        del block
    """)
    code, run = _run(tmp_path, str(script))
    assert code == 0
    assert run is not None
    assert run.sites[0].filename == str(script)
    assert run.sites[0].lineno == 3
    assert 20 * MB <= run.sites[0].size_bytes <= 20 * MB + 4096
    assert 20 * MB <= run.sites_above_start_bytes <= 20 * MB + 200_000
    assert run.sites_seconds < run.duration_seconds  # copied while it ran, not at the end
    assert 20 * MB <= run.traced_peak_above_start_bytes <= 20 * MB + 200_000


def test_the_exact_peak_survives_site_captures(tmp_path: Path) -> None:
    # Many small blocks make every capture slow; the program frees them all
    # right after, while a capture may still be grouping: the peak it
    # reached must be reported all the same (tracemalloc's own counter).
    script = _script(tmp_path, "churn.py", """\
        import pathlib, sys
        blocks = [bytes(100) for _ in range(250_000)]
        size = sys.getsizeof(blocks) + sum(map(sys.getsizeof, blocks))
        pathlib.Path(sys.argv[1]).write_text(str(size))
        del blocks
        kept = bytearray(1_000_000)  # held to the end: the last sample captures it at least
    """)
    expected = tmp_path / "expected.txt"
    code, run = _run(tmp_path, "--interval", "0.005", str(script), str(expected))
    assert code == 0
    assert run is not None
    size = int(expected.read_text())
    assert size <= run.traced_peak_above_start_bytes <= size + 300_000
    # Captured while the blocks lived (when the watcher got the CPU then), or
    # at the end: sites of the script either way.
    assert run.sites
    assert run.sites[0].filename == str(script)
    code, run = _run(tmp_path, "--no-sites", str(script), str(expected))
    assert code == 0
    assert run is not None
    assert run.sites == ()
    assert size <= run.traced_peak_above_start_bytes <= size + 300_000


def test_the_run_file_lands_where_memguard_started_even_if_the_program_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = _script(tmp_path, "mover.py", f"import os\nos.chdir({str(elsewhere)!r})\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-census", "-o", "here.json", str(script)]) == 0
    assert (tmp_path / "here.json").exists()
    assert not (elsewhere / "here.json").exists()
