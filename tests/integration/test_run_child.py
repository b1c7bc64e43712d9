"""``memguard run``'s program in a process of its own: the terminal, signals, and ends (issue 14).

The program runs in a child interpreter (:mod:`memguard.program.spawn`). These
tests drive a real ``memguard run`` from outside: on a pseudo-terminal, as a
user at a shell does (Ctrl-C, typing, Ctrl-Z then ``fg``), and with the ends
a program can come to that take its process with it. Each waits for a line
the program prints before it acts, with a generous timeout, so no timing
window decides the outcome.
"""

from __future__ import annotations

import marshal
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memguard.values.files import load

_WAIT = 60.0


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(body))
    return script


class _Terminal:
    """``memguard run`` on a pseudo-terminal it controls, as under a shell."""

    def __init__(self, tmp_path: Path, script: Path) -> None:
        self.output = tmp_path / "run.json"
        pid, fd = pty.fork()
        if pid == 0:  # the child: memguard run, with the terminal as its own
            os.chdir(tmp_path)
            os.execv(sys.executable, [sys.executable, "-m", "memguard", "run", "-o",
                                      str(self.output), str(script)])
        self.pid, self.fd = pid, fd
        self.seen = b""

    def wait_for(self, text: bytes) -> None:
        deadline = time.monotonic() + _WAIT
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the terminal's last process has gone
                    chunk = b""
                assert chunk, f"the terminal closed before {text!r}: {self.seen!r}"
                self.seen += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def finish(self) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + _WAIT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.seen += chunk
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_ctrl_c_on_the_terminal_reaches_the_program_once(tmp_path: Path) -> None:
    """The terminal is the program's: one Ctrl-C is one KeyboardInterrupt.

    Were the program and memguard both in the terminal's foreground group,
    memguard's relay would send a second one, into the program's cleanup.
    """
    script = _script(tmp_path, """\
        import time
        block = bytearray(2 * 10**6)
        try:
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
        except KeyboardInterrupt:
            print("caught", flush=True)
            time.sleep(1.0)  # a second SIGINT would land here
            print("cleaned up", flush=True)
    """)
    terminal = _Terminal(tmp_path, script)
    terminal.wait_for(b"ready")
    terminal.type(b"\x03")
    terminal.wait_for(b"cleaned up")
    code = terminal.finish()
    assert code == 0, terminal.seen
    assert terminal.seen.count(b"caught") == 1
    assert b"Traceback" not in terminal.seen
    run = load(terminal.output)
    assert run.exit_code == 0
    assert run.traced_peak_above_start_bytes >= 2 * 10**6


def test_the_program_reads_the_terminal_and_ctrl_z_stops_the_job(tmp_path: Path) -> None:
    """Typed input reaches the program; Ctrl-Z stops it and memguard (the shell
    sees the job stopped); continuing memguard continues the program."""
    script = _script(tmp_path, """\
        print("ready", flush=True)
        line = input()
        print(f"got {line}", flush=True)
        second = input()
        print(f"then {second}", flush=True)
    """)
    terminal = _Terminal(tmp_path, script)
    terminal.wait_for(b"ready")
    terminal.type(b"first\n")
    terminal.wait_for(b"got first")
    terminal.type(b"\x1a")  # Ctrl-Z
    _, status = os.waitpid(terminal.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)  # memguard stopped itself, as a job does
    os.kill(terminal.pid, signal.SIGCONT)  # fg
    terminal.type(b"second\n")
    terminal.wait_for(b"then second")
    assert terminal.finish() == 0, terminal.seen
    assert load(terminal.output).exit_code == 0


@pytest.mark.parametrize("options", [[], ["--lines", "prog.py:nothing"]],
                         ids=["agent", "in-process"])
def test_the_program_ends_when_memguard_is_killed(tmp_path: Path, options: list[str]) -> None:
    """memguard killed outright (SIGKILL): the program's process ends too, and the
    folder memguard made for the child's files is removed."""
    psutil = pytest.importorskip("psutil")
    script = _script(tmp_path, """\
        import os, time
        print(os.getpid(), flush=True)
        while True:
            time.sleep(0.05)
    """)
    proc = subprocess.Popen([sys.executable, "-m", "memguard", "run", *options, "-o",
                             str(tmp_path / "run.json"), str(script)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    program = int(proc.stdout.readline())
    spec = marshal.loads(bytes.fromhex(psutil.Process(program).cmdline()[-1]))
    folder = Path(spec["folder"])
    assert folder.is_dir()
    proc.kill()
    proc.wait(timeout=_WAIT)
    deadline = time.monotonic() + _WAIT
    while time.monotonic() < deadline:
        try:
            if psutil.Process(program).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        os.kill(program, signal.SIGKILL)
        pytest.fail("the program outlived memguard")
    proc.stdout.close()
    assert not folder.exists()
    assert not (tmp_path / "run.json").exists()


@pytest.mark.parametrize(("body", "code", "said"), [
    ("import os\nblock = bytearray(10**6)\nos._exit(3)\n", 3, "it exited with status 3"),
    ("import ctypes\nctypes.string_at(0)\n", 128 + signal.SIGSEGV, "killed by SIGSEGV"),
])
def test_a_program_that_ends_its_process_gets_one_line(tmp_path: Path, body: str, code: int,
                                                       said: str) -> None:
    """os._exit() or a crash takes the program's process, not memguard's: memguard
    says how it ended, writes no run file, and exits as the process did."""
    script = _script(tmp_path, body)
    done = subprocess.run([sys.executable, "-m", "memguard", "run", "-o",
                           str(tmp_path / "run.json"), str(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=_WAIT, check=False)
    assert done.returncode == code, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("memguard")]
    assert len(lines) == 1, done.stderr
    assert said in lines[0]
    assert "no run file was written" in lines[0]
    assert not (tmp_path / "run.json").exists()


def test_a_forked_copy_of_the_program_writes_no_report(tmp_path: Path) -> None:
    """A program that forks and lets its copy run to the end: one report, the parent's."""
    script = _script(tmp_path, """\
        import os, sys
        block = bytearray(4 * 10**6)
        pid = os.fork()
        if pid:
            os.waitpid(pid, 0)
            print("parent", flush=True)
        else:
            print("child", flush=True)
            sys.exit(5)
    """)
    done = subprocess.run([sys.executable, "-m", "memguard", "run", "-o",
                           str(tmp_path / "run.json"), str(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=_WAIT, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["child", "parent"]
    assert done.stderr.count("memguard: wrote") == 1, done.stderr
    run = load(tmp_path / "run.json")
    assert run.exit_code == 0
    assert run.traced_peak_above_start_bytes >= 4 * 10**6


SELF_PORTRAIT = """\
import json, sys
portrait = {
    "argv": sys.argv, "path": sys.path, "name": __name__, "file": __file__,
    "globals": sorted(globals()), "loader": type(__loader__).__name__,
    "spec": None if __spec__ is None else [__spec__.name, __spec__.origin],
    "annotations": repr(__annotations__),
    "main": sys.modules["__main__"].__dict__ is globals(),
    "flags": list(sys.flags), "warnoptions": sys.warnoptions,
}
print(json.dumps(portrait))
"""


@pytest.mark.parametrize("how", ["script", "module"])
def test_the_program_sees_what_python_shows_it(tmp_path: Path, how: str) -> None:
    """sys.argv, sys.path (nothing of memguard's on it), __main__'s globals and
    loader, the interpreter's flags: as under ``python`` (``-W`` passed on too)."""
    (tmp_path / "portrait.py").write_text(SELF_PORTRAIT)
    target = ["portrait.py"] if how == "script" else ["-m", "portrait"]
    plain = subprocess.run([sys.executable, "-W", "error::UserWarning", *target, "x", "--y"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=_WAIT,
                           check=True)
    measured = subprocess.run([sys.executable, "-W", "error::UserWarning", "-m", "memguard",
                               "run", "-o", str(tmp_path / "run.json"), *target, "x", "--y"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=_WAIT,
                              check=True)
    assert measured.stdout == plain.stdout


def test_the_agent_copies_by_the_catchers_policy() -> None:
    """The agent cannot import memguard; its growth factor is limit()'s, by test."""
    from memguard.program import _agent
    from memguard.values.limit import CAPTURE_GROWTH

    assert _agent.CAPTURE_GROWTH == CAPTURE_GROWTH


FORK_COPY = """\
import os, sys
import memguard._native as native

calls = []
os.register_at_fork(before=lambda: calls.append("before"),
                    after_in_parent=lambda: calls.append("parent"),
                    after_in_child=lambda: calls.append("child"))
read, write = os.pipe()
pid = native.fork_copy()
if pid == 0:  # the copy: a working interpreter, its after-fork functions run
    os.write(write, repr(calls).encode())
    os._exit(7)
os.close(write)
seen = os.read(read, 100).decode()
_, status = os.waitpid(pid, 0)
print(seen, calls, os.waitstatus_to_exitcode(status))
"""


def test_a_fork_for_a_copy_runs_none_of_the_programs_fork_functions_in_its_process() -> None:
    """The copy of the sites is made in a forked copy of the program's process
    (``_native.fork_copy``): the program's own process runs none of its fork
    functions (``os.fork()`` would), the copy runs its child ones."""
    from memguard import _counter

    if not _counter.available():
        pytest.skip(f"the native counter is not built: {_counter.unavailable_reason()}")
    done = subprocess.run([sys.executable, "-c", FORK_COPY], capture_output=True, text=True,
                          timeout=_WAIT, check=True)
    assert done.stdout.split() == ["['child']", "[]", "7"], done.stdout + done.stderr


def test_the_program_reads_piped_input_and_its_output_is_its_own(tmp_path: Path) -> None:
    script = _script(tmp_path, """\
        import sys
        data = sys.stdin.read()
        sys.stdout.write(data.upper())
        print("note", file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-m", "memguard", "run", "-o",
                           str(tmp_path / "run.json"), str(script)], cwd=tmp_path,
                          input="one\ntwo\n", capture_output=True, text=True, timeout=_WAIT,
                          check=True)
    assert done.stdout == "ONE\nTWO\n"  # nothing of memguard's in it
    assert done.stderr.startswith("note\n")
    assert load(tmp_path / "run.json").exit_code == 0


def test_the_agents_own_start_is_not_the_programs(tmp_path: Path) -> None:
    """A program that allocates nothing reads (next to) nothing: the agent's thread,
    its arrays and the native counter's module are made before the program's start
    (the counter's module, loaded after it, read 5.9 KB)."""
    script = _script(tmp_path, "x = 1\n")
    subprocess.run([sys.executable, "-m", "memguard", "run", "--no-census", "-o",
                    str(tmp_path / "run.json"), str(script)], cwd=tmp_path,
                   capture_output=True, timeout=_WAIT, check=True)
    run = load(tmp_path / "run.json")
    assert run.traced_peak_above_start_bytes <= 1024


def test_run_child_refuses_what_run_program_refuses(tmp_path: Path) -> None:
    from memguard.program import Program
    from memguard.program.spawn import run_child

    with pytest.raises(FileNotFoundError):
        run_child(Program(str(tmp_path / "missing.py")))
    with pytest.raises(ModuleNotFoundError):
        run_child(Program("no_such_module_here", module=True))
    with pytest.raises(ValueError, match="interval"):
        run_child(Program(str(_script(tmp_path, "x = 1\n"))), interval=0)


def test_the_program_never_starts_if_memguard_ends_before_its_word(tmp_path: Path) -> None:
    """The agent waits for memguard's word (the terminal handed over) before the
    program: a memguard gone before it (Ctrl-C in that instant) runs nothing."""
    from memguard.program.spawn import AGENT

    marker = tmp_path / "ran"
    script = _script(tmp_path, f"open({str(marker)!r}, 'w').close()\n")
    read, write = os.pipe()
    spec = {"target": str(script), "args": [], "module": False, "interval": 0.01,
            "rss": False, "sites": False, "census": False, "limit": None, "lines": None,
            "status": False, "notice": "", "folder": str(tmp_path), "parent": os.getpid(),
            "go": read, "mode": "fresh"}
    agent = subprocess.Popen([sys.executable, AGENT, marshal.dumps(spec).hex()],
                             pass_fds=(read,))
    os.close(read)
    os.close(write)  # no word
    assert agent.wait(timeout=_WAIT) == 1
    assert not marker.exists()
