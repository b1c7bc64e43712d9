"""Builds the optional native counter, memguard._native (see docs/how-it-measures.md).

Everything else is declared in pyproject.toml. The extension is optional: where
there is no C compiler or no Python headers, the build prints why and the
install goes on without it; memguard then measures with tracemalloc and says so
(``memguard.measurement()``). ``MEMGUARD_NO_NATIVE=1`` at run time disables an
extension that was built.
"""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "memguard._native",
            ["memguard/_native.c"],
            optional=True,
            extra_compile_args=["-std=c11", "-O2"],
        )
    ]
)
