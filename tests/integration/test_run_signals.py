"""SIGTERM and a second Ctrl-C to a real ``memguard run`` keep what was measured (issue 14).

Real signals to a real subprocess. Each test waits for a line the program or
memguard prints before it signals, so no timing window decides the outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memguard.values.files import load

MB = 1_000_000
#: The run's traced peak is the block plus the interpreter's own small
#: allocations while the program runs (compiling it, runpy, the signal).
SLACK = 512 * 1024


def _start(tmp_path: Path, body: str, *extra: str) -> subprocess.Popen[str]:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, "-m", "memguard", "run", *extra, "-o", str(tmp_path / "run.json"),
         str(script)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(stream: object, text: str) -> str:
    seen = ""
    while text not in seen:
        line = stream.readline()  # type: ignore[attr-defined]
        assert line, f"the stream ended before {text!r}: {seen!r}"
        seen += line
    return seen


SLEEPER = """\
    import sys, time
    block = bytearray(8 * 10**6)
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
"""


def test_sigterm_keeps_the_run_and_exits_143(tmp_path: Path) -> None:
    proc = _start(tmp_path, SLEEPER)
    _wait_for(proc.stdout, "ready")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "SIGTERM received: writing what was measured to" in err
    assert "the run was stopped by SIGTERM: exit code 143" in err
    run = load(tmp_path / "run.json")
    assert run.exit_code == 143
    assert run.error == "terminated by SIGTERM"
    assert 8 * MB <= run.traced_peak_above_start_bytes <= 8 * MB + SLACK
    assert run.final.reason("types").startswith("not counted: the run was interrupted")


def test_two_ctrl_c_in_quick_succession_keep_the_run(tmp_path: Path) -> None:
    # The program's cleanup never ends by itself, so the second Ctrl-C
    # lands in it: as under python, it interrupts the cleanup; the run is
    # measured and written all the same.
    proc = _start(tmp_path, """\
        import time
        block = bytearray(6 * 10**6)
        try:
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
        finally:
            print("cleaning up", flush=True)
            while True:
                time.sleep(0.05)
    """)
    _wait_for(proc.stdout, "ready")
    proc.send_signal(signal.SIGINT)
    _wait_for(proc.stdout, "cleaning up")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("\nKeyboardInterrupt\n") == 2  # the program's two, as python shows them
    assert "memguard/" not in err  # no memguard frame in them
    assert "the run was stopped by SIGINT: exit code 130" in err
    run = load(tmp_path / "run.json")
    assert run.exit_code == 130
    assert 6 * MB <= run.traced_peak_above_start_bytes <= 6 * MB + SLACK


def test_a_signal_after_the_program_ended_is_held_until_the_file_is_written(
        tmp_path: Path) -> None:
    # The program leaves a finalizer on an object only its kept globals
    # hold: it fires when memguard lets go of them, after the program has
    # ended, while the run is being finished, and sends SIGTERM then SIGINT
    # (the later finalizer runs first) to its own process: two interrupts
    # in the worst place. Both are held; the first decides the exit code.
    proc = _start(tmp_path, """\
        import os, signal, weakref
        block = bytearray(3 * 10**6)
        anchor = {0}
        weakref.finalize(anchor, os.kill, os.getpid(), signal.SIGINT)
        weakref.finalize(anchor, os.kill, os.getpid(), signal.SIGTERM)
    """)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert "SIGTERM received: writing what was measured to" in err
    assert "SIGINT received again: writing what was measured to" in err
    assert proc.returncode == 143, err
    run = load(tmp_path / "run.json")
    assert run.exit_code == 0
    assert 3 * MB <= run.traced_peak_above_start_bytes <= 3 * MB + SLACK
    assert os.path.getsize(tmp_path / "run.json") > 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_handlers_are_restored_after_a_run(tmp_path: Path, signum: int,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from memguard.cli import main

    before = signal.getsignal(signum)
    script = tmp_path / "quiet.py"
    script.write_text("x = 1\n")
    assert main(["run", "-o", str(tmp_path / "r.json"), str(script)]) == 0
    capsys.readouterr()
    assert signal.getsignal(signum) is before
