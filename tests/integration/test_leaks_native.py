"""Leaks made in C (issue 20): a small test-only extension, compiled here with gcc.

Three leaks and their fixed twins, each judged with ``check_leaks``'s
defaults:

* ``leak_tuple``: a tuple of 100 ints built and given an extra reference
  that nobody owns (a refcount leak: no referrer anywhere);
* ``leak_bytes``: a ``bytes`` object (untracked by gc) leaked the same way;
* ``leak_malloc``: 128 bytes of ``malloc`` per call, never freed.

Each leak's message must name the call (its source line and the C
function) and what leaked; the twins must be clean.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

import memguard
from memguard.values.leak import LeakReport

SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

static PyObject *make_tuple(void) {
    PyObject *t = PyTuple_New(100);
    if (t == NULL) return NULL;
    for (Py_ssize_t i = 0; i < 100; i++) {
        PyTuple_SET_ITEM(t, i, PyLong_FromLong(100000 + i));
    }
    return t;
}

static PyObject *leak_tuple(PyObject *self, PyObject *args) {
    PyObject *t = make_tuple();
    Py_XINCREF(t);                      /* the bug: a reference nobody owns */
    return t;
}

static PyObject *fixed_tuple(PyObject *self, PyObject *args) {
    return make_tuple();
}

static PyObject *leak_bytes(PyObject *self, PyObject *args) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, 200);
    if (b == NULL) return NULL;
    memset(PyBytes_AS_STRING(b), 'x', 200);
    Py_INCREF(b);                       /* the bug */
    return b;
}

static PyObject *fixed_bytes(PyObject *self, PyObject *args) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, 200);
    if (b == NULL) return NULL;
    memset(PyBytes_AS_STRING(b), 'x', 200);
    return b;
}

static volatile char *last;

static PyObject *leak_malloc(PyObject *self, PyObject *args) {
    char *block = malloc(128);         /* the bug: never freed */
    if (block == NULL) return PyErr_NoMemory();
    memset(block, 1, 128);
    last = block;
    Py_RETURN_NONE;
}

static PyObject *fixed_malloc(PyObject *self, PyObject *args) {
    char *block = malloc(128);
    if (block == NULL) return PyErr_NoMemory();
    memset(block, 1, 128);
    last = block;
    free(block);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"leak_tuple", leak_tuple, METH_NOARGS, NULL},
    {"fixed_tuple", fixed_tuple, METH_NOARGS, NULL},
    {"leak_bytes", leak_bytes, METH_NOARGS, NULL},
    {"fixed_bytes", fixed_bytes, METH_NOARGS, NULL},
    {"leak_malloc", leak_malloc, METH_NOARGS, NULL},
    {"fixed_malloc", fixed_malloc, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "mg_cleaks", NULL, -1, methods};

PyMODINIT_FUNC PyInit_mg_cleaks(void) { return PyModule_Create(&module); }
"""


@pytest.fixture(scope="module")
def cleaks(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    compiler = shutil.which("gcc") or shutil.which("cc")
    include = sysconfig.get_paths().get("include")
    if compiler is None:
        pytest.skip("no C compiler (gcc or cc) on this machine")
    if not include or not Path(include, "Python.h").exists():
        pytest.skip(f"no Python.h under {include!r} (the Python headers are not installed)")
    folder = tmp_path_factory.mktemp("cleaks")
    source = folder / "mg_cleaks.c"
    source.write_text(SOURCE)
    target = folder / f"mg_cleaks{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", f"-I{include}", str(source), "-o",
                    str(target)], check=True, capture_output=True)
    spec = importlib.util.spec_from_file_location("mg_cleaks", target)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["mg_cleaks"] = module
    return module


def decode_tuple(ext: ModuleType) -> None:
    ext.leak_tuple()


def decode_tuple_fixed(ext: ModuleType) -> None:
    ext.fixed_tuple()


def make_bytes(ext: ModuleType) -> None:
    ext.leak_bytes()


def make_bytes_fixed(ext: ModuleType) -> None:
    ext.fixed_bytes()


def native_block(ext: ModuleType) -> None:
    ext.leak_malloc()


def native_block_fixed(ext: ModuleType) -> None:
    ext.fixed_malloc()


def _check(fn: object, ext: ModuleType) -> LeakReport:
    return memguard.track_leaks(fail=False).check(fn, ext)  # type: ignore[arg-type]


def _line(fn: object) -> str:
    code = fn.__code__  # type: ignore[attr-defined]
    return f"{code.co_filename}:{code.co_firstlineno + 1}"


@pytest.mark.parametrize(("fn", "c_name", "leaked_type"), [
    (decode_tuple, "mg_cleaks.leak_tuple", "tuple"),
    (make_bytes, "mg_cleaks.leak_bytes", "bytes"),
])
def test_a_reference_leaked_in_c_is_caught_and_its_call_named(
        cleaks: ModuleType, fn: object, c_name: str, leaked_type: str) -> None:
    report = _check(fn, cleaks)
    message = report.message()
    assert report.leaked, message
    # The call: the user's line, its text, and the C function it calls.
    assert _line(fn) in message, message
    assert f"ext.{c_name.split('.')[1]}()" in message, message
    assert f"calls {c_name}" in message, message
    # The leaked objects have no referrer: the report says so rather than
    # blame a type that is not the leak; the allocation site names the type's
    # size (a tuple of 100 items is 856 bytes, a 200-byte bytes 233).
    assert report.sample is None, message
    assert any("no referrer" in note for note in report.notes), message
    assert leaked_type not in {name for name, _ in report.types} or report.types[0][0] == \
        leaked_type, message


def test_a_malloc_leak_of_128_bytes_per_call_is_caught_and_named(cleaks: ModuleType) -> None:
    report = _check(native_block, cleaks)
    message = report.message()
    assert report.leaked, message
    fired = {s.name: s for s in report.fired}
    native = fired.get("malloc") or fired.get("rss")
    assert native is not None, message
    if native.name == "malloc":
        # malloc's counter is exact: 128 bytes and its 16-byte header, per call.
        assert 128 <= native.per_call <= 160, message
    assert "mg_cleaks.leak_malloc" in message, message
    assert _line(native_block) in message, message
    assert "ext.leak_malloc()" in message, message


@pytest.mark.parametrize("fn", [decode_tuple_fixed, make_bytes_fixed, native_block_fixed])
def test_the_fixed_twin_is_clean(cleaks: ModuleType, fn: object) -> None:
    report = _check(fn, cleaks)
    assert not report.leaked, report.message()
