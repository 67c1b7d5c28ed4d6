"""Coverage-guided fuzzing of the Python-facing targets with atheris.

How this works
--------------
``python fuzz/run_atheris.py TARGET CORPUS_DIR [libFuzzer flags...]`` runs one
target of :mod:`targets` (``wire`` or ``receive``) under atheris, which wraps
libFuzzer: the ``transport`` package is instrumented at import
(``atheris.instrument_imports``), so libFuzzer sees Python branch coverage
and keeps inputs that reach new code in CORPUS_DIR. Any exception escaping
the target (a :class:`targets.FuzzFailure` or anything else) is a crash:
libFuzzer writes the input to ``crash-<sha1>`` (see ``-artifact_prefix``).

With TRANSPORT_NATIVE_PATH pointing at the ASan/UBSan build of the C module
and the sanitizer runtimes in LD_PRELOAD (``make fuzz-sanitize``), memory
errors in the C decoders reached through Python abort the run as well.

Without atheris installed, ``--replay`` runs each corpus file once (this is
what ``tests/test_fuzz_smoke.py`` does too).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def replay(target_name: str, paths: list[str]) -> int:
    from targets import TARGETS

    target = TARGETS[target_name]
    count = 0
    for name in paths:
        path = Path(name)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            target(file.read_bytes())
            count += 1
    print(f"replayed {count} inputs through {target_name}: no failure")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "--replay":
        return replay(argv[2], argv[3:])
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    import atheris

    with atheris.instrument_imports(include=["transport"]):
        from targets import TARGETS
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
