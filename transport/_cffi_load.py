"""Loading the compiled cffi modules (``transport._native``, ``transport._fec``).

How this works
--------------
Normally a module is the one built into the package. For sanitizer builds
(``make sanitize``) an environment variable names a directory holding another
build of it (``TRANSPORT_NATIVE_PATH``, ``TRANSPORT_FEC_PATH``); that
directory is put first on ``sys.path`` just for the import, so the rest of the
package never sees it.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def load_cffi_module(name: str, env_var: str) -> Any:
    """``transport.<name>``, or ``<name>`` from the directory ``$env_var`` names."""
    where = os.environ.get(env_var, "").strip()
    if not where:
        return importlib.import_module(f"transport.{name}")
    sys.path.insert(0, os.path.abspath(where))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)
