"""Never clobber what is not memguard's: one writer, on the real filesystem (issue 14).

Symbolic links are written through; device nodes (``mknod``, ``/dev/full``),
FIFOs and directories are refused with an error naming the path, before
any work; regular files are replaced atomically. Every writer goes through
:mod:`memguard.output`: ``memguard run -o``, ``report``/``diff --output``,
``save``, ``Snapshot.save``, baselines, ``memguard.report.write`` and
``--memguard-json``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from memguard.cli import main
from memguard.exceptions import OutputRefused
from memguard.output import check_writable, write_file
from memguard.values.baseline import Baseline
from memguard.values.files import load, save
from memguard.values.timeline import Timeline

TIMELINE = Timeline(interval_seconds=0.01, duration_seconds=0.5)
MODULE = [sys.executable, "-m", "memguard"]


def _char_device(path: Path) -> Path:
    """A real character device node (the null device's numbers), as ``mknod`` makes."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _run_file(folder: Path) -> Path:
    path = folder / "input.json"
    save(TIMELINE, path)
    return path


def _marker_script(folder: Path) -> tuple[Path, Path]:
    """A program that leaves a marker when it runs: a refused output must stop it running."""
    marker = folder / "ran.txt"
    script = folder / "prog.py"
    script.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                      f"block = bytearray(10**5)\n")
    return script, marker


# -- the writer itself -----------------------------------------------------------------


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    save(TIMELINE, link)
    assert link.is_symlink()
    assert os.readlink(link) == "target.json"
    assert load(target) == TIMELINE
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to("made-through-the-link.json")
    save(TIMELINE, dangling)
    assert dangling.is_symlink()
    assert load(tmp_path / "made-through-the-link.json") == TIMELINE


@pytest.mark.parametrize("make", [_char_device, _fifo], ids=["mknod-device", "fifo"])
def test_a_special_file_is_refused_and_left_as_it_was(
        tmp_path: Path, make: Callable[[Path], Path]) -> None:
    special = make(tmp_path / "special.json")
    before = os.lstat(special)
    for write in (lambda: save(TIMELINE, special),
                  lambda: write_file(special, b"x"),
                  lambda: check_writable(special)):
        with pytest.raises(OutputRefused, match="not a regular file") as refused:
            write()
        assert refused.value.path == str(special)
        assert isinstance(refused.value, OSError)
    after = os.lstat(special)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (
        before.st_ino, before.st_mode, before.st_rdev)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["special.json"]  # no partial left


def test_a_link_to_a_device_is_refused_naming_both(tmp_path: Path) -> None:
    link = tmp_path / "out.json"
    link.symlink_to("/dev/full")
    with pytest.raises(OutputRefused, match=r"character device \(the link leads to /dev/full\)"):
        save(TIMELINE, link)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with pytest.raises(OutputRefused, match="a directory"):
        write_file(tmp_path, b"x")


def test_a_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old content")
    target.chmod(0o640)
    twin = tmp_path / "hardlink.json"
    os.link(target, twin)
    old_inode = target.stat().st_ino
    save(TIMELINE, target)
    assert load(target) == TIMELINE
    assert target.stat().st_ino != old_inode  # a new file renamed into place
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert twin.read_text() == "old content"
    with pytest.raises(OutputRefused, match="it exists") as refused:
        write_file(target, b"new", overwrite=False)
    assert refused.value.exists


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "keep.json"
    target.write_text("precious")
    unsaveable = Timeline(interval_seconds=0.01, duration_seconds=float("nan"))
    with pytest.raises(ValueError, match="JSON"):
        save(unsaveable, target)
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_every_api_writer_refuses_a_fifo(tmp_path: Path) -> None:
    pytest.importorskip("psutil")
    from memguard.report import write as write_report
    from memguard.values.snapshot import take_snapshot

    fifo = _fifo(tmp_path / "pipe.json")
    writers = {
        "Snapshot.save": lambda: take_snapshot(census=False).save(fifo),
        "Baseline.save": lambda: Baseline(name="b", source="t", peaks={}).save(fifo),
        "report.write": lambda: write_report(TIMELINE, fifo),
    }
    for name, writer in writers.items():
        with pytest.raises(OutputRefused, match="a FIFO"):
            writer()
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), name


def test_memguard_json_refuses_a_fifo(pytester: pytest.Pytester) -> None:
    fifo = _fifo(pytester.path / "results.json")
    pytester.makepyfile("def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("--memguard", f"--memguard-json={fifo}")
    assert "a FIFO" in result.stdout.str() + result.stderr.str()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# -- the command line ------------------------------------------------------------------


def test_run_refuses_dev_full_before_the_program_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script, marker = _marker_script(tmp_path)
    assert main(["run", "--force", "-o", "/dev/full", str(script)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'/dev/full'" in err
    assert "character device" in err
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)
    assert not marker.exists()


def test_run_refuses_a_device_node_and_a_fifo(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script, marker = _marker_script(tmp_path)
    for special in (_char_device(tmp_path / "dev.json"), _fifo(tmp_path / "fifo.json")):
        assert main(["run", "--force", "-o", str(special), str(script)]) == 2
        assert "not a regular file" in capsys.readouterr().err
        assert not stat.S_ISREG(os.lstat(special).st_mode)
    assert not marker.exists()


def test_run_writes_through_a_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    script, marker = _marker_script(tmp_path)
    (tmp_path / "target.json").write_text("old")
    (tmp_path / "link.json").symlink_to("target.json")
    assert main(["run", "--force", "-o", "link.json", str(script)]) == 0
    capsys.readouterr()
    assert (tmp_path / "link.json").is_symlink()
    assert load(tmp_path / "target.json").command == str(script)
    assert marker.exists()


def test_run_refuses_a_folder_that_takes_no_files_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("no /sys/kernel here")
    assert os.access("/sys/kernel", os.W_OK) == (os.geteuid() == 0)  # it looks writable to root
    script, marker = _marker_script(tmp_path)
    assert main(["run", "-o", "/sys/kernel/run.json", str(script)]) == 2
    err = capsys.readouterr().err
    assert "'/sys/kernel/run.json'" in err
    assert "cannot create a file in its folder" in err
    assert not marker.exists()
    assert main(["run", "-o", str(tmp_path / "no" / "such" / "run.json"), str(script)]) == 2
    assert "its folder does not exist" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("command", ["report", "diff"])
def test_report_and_diff_refuse_special_outputs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    pytest.importorskip("psutil")
    from memguard.values.snapshot import take_snapshot

    snap = tmp_path / "snap.json"
    take_snapshot(census=False).save(snap)
    inputs = [str(snap)] if command == "report" else [str(snap), str(snap)]
    fifo = _fifo(tmp_path / "out.txt")
    assert main([command, *inputs, "--force", "--output", str(fifo)]) == 2
    assert "a FIFO (named pipe)" in capsys.readouterr().err
    assert main([command, *inputs, "--force", "--format", "text", "-o", "/dev/full"]) == 2
    assert "character device" in capsys.readouterr().err
    link = tmp_path / "link.txt"
    link.symlink_to("real.txt")
    assert main([command, *inputs, "--output", str(link)]) == 0
    assert link.is_symlink()
    assert (tmp_path / "real.txt").read_text().strip()


@pytest.mark.parametrize("redirect", ["> /dev/full", ">&-"], ids=["full", "closed"])
def test_a_full_or_closed_stdout_is_one_line_and_exit_1(tmp_path: Path, redirect: str) -> None:
    data = _run_file(tmp_path)
    command = " ".join([*MODULE, "report", str(data), "--format", "text"])
    done = subprocess.run(f"{command} {redirect}", shell=True, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("memguard: cannot write to stdout: "), done.stderr
    assert ("No space left on device" in done.stderr) == (redirect == "> /dev/full")


def test_a_closed_reader_still_ends_quietly(tmp_path: Path) -> None:
    data = _run_file(tmp_path)
    script = textwrap.dedent(f"""\
        import subprocess, sys
        reader = subprocess.Popen({MODULE!r} + ["report", {str(data)!r}, "--format", "json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        reader.stdout.close()  # the reader leaves before reading anything
        err = reader.stderr.read().decode()
        print(reader.wait(), repr(err))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "1 ''"
