"""How the log names the other end of an association: ``AETITLE@address:port``."""

from __future__ import annotations

from typing import Any


def requestor(assoc: Any) -> str:
    """The requestor of ``assoc`` (a pynetdicom Association) for log lines."""
    req = assoc.requestor
    return f"{req.ae_title}@{req.address}:{req.port}"
