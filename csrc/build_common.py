"""Shared parts of the cffi build scripts (``ffi_build.py``, ``fec_build.py``).

How this works
--------------
Each build script declares its C API (``cdef``), its sources and its header,
and calls :func:`make_builder`. Under ``pip install`` setuptools runs the
script from the project root and wants relative source paths; run as a script
(``python csrc/X_build.py OUTDIR``) it compiles in ``OUTDIR`` and needs
absolute ones. ``TRANSPORT_SANITIZE=1`` switches to an AddressSanitizer +
UBSan build for ``make sanitize``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SANITIZE = os.environ.get("TRANSPORT_SANITIZE", "") not in ("", "0")


def compile_args(std: str) -> tuple[list[str], list[str]]:
    """(compile args, link args) for C standard ``std`` (e.g. "c99", "gnu99")."""
    if SANITIZE:
        return (
            [f"-std={std}", "-O1", "-g", "-fno-omit-frame-pointer",
             "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-Wall", "-Wextra"],
            ["-fsanitize=address,undefined"],
        )
    return [f"-std={std}", "-O3", "-Wall", "-Wextra"], []


def require_header(header: str, package_hint: str) -> None:
    """Fail the build early, with the package to install, when the C compiler
    cannot find ``header`` (e.g. ``openssl/evp.h`` from libssl-dev)."""
    import shutil
    import subprocess
    import tempfile

    compiler = os.environ.get("CC", "cc").split()[0]
    if shutil.which(compiler) is None:
        return  # let setuptools report the missing compiler itself
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(f"#include <{header}>\nint main(void) {{ return 0; }}\n")
        probe = subprocess.run(
            [compiler, "-c", str(src), "-o", str(Path(tmp) / "probe.o")],
            capture_output=True, text=True, check=False,
        )
    if probe.returncode != 0:
        raise SystemExit(
            f"building transport needs <{header}>: install {package_hint} "
            f"(compiler said: {probe.stderr.strip()[:300]})"
        )


def make_builder(
    module_name: str, cdef: str, header: str, sources: Sequence[str], std: str, absolute: bool,
    libraries: Sequence[str] = (),
) -> FFI:
    builder = FFI()
    builder.cdef(cdef)
    if not absolute and Path.cwd().resolve() == HERE.parent:
        paths = [str(Path("csrc") / name) for name in sources]
        include = ["csrc"]
    else:
        paths = [str(HERE / name) for name in sources]
        include = [str(HERE)]
    compile_flags, link_flags = compile_args(std)
    builder.set_source(
        module_name,
        f'#include "{header}"\n',
        sources=paths,
        include_dirs=include,
        extra_compile_args=compile_flags,
        extra_link_args=link_flags,
        libraries=list(libraries),
    )
    return builder


def script_main(argv: list[str], short_name: str, make: Callable[[str, bool], FFI]) -> int:
    """``python csrc/X_build.py OUTDIR``: build the module into OUTDIR."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(argv[1]).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    make(short_name, True).compile(tmpdir=str(outdir), verbose=False)
    print(f"built {short_name} into {outdir} (sanitize={'yes' if SANITIZE else 'no'})")
    return 0
