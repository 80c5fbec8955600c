"""Set-up of pacsnode's own processes (the command line, ``serve`` and its receiving
processes), done before anything imports pydicom.

pydicom imports ``requests`` whenever it is installed (it is, beside pacsnode's test tools:
dicomweb-client needs it), only to download pydicom's own test files, which pacsnode never
does. With the ``urllib3`` and certificate modules it brings, that is about 10 MiB of every
process. An entry of ``None`` in :data:`sys.modules` makes ``import requests`` raise
ImportError, which pydicom handles as "not installed" (it then uses :mod:`urllib`).
Library users' processes are left alone: only pacsnode's entry points call this.
"""

from __future__ import annotations

import sys

# Imported by libraries pacsnode uses, never needed by what pacsnode does with them.
UNUSED_MODULES = ("requests",)


def skip_unused_modules() -> None:
    """Keep :data:`UNUSED_MODULES` from being imported in this process (unless already
    imported: then nothing changes)."""
    for name in UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
