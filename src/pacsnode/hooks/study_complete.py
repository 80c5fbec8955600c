"""The study-complete event: raised once per MPPS instance that a modality set to COMPLETED
(PS3.4 F.7.2.2), when every instance its Performed Series Sequence references is in the
archive — or, if some never arrive, ``study_complete_wait`` seconds after the N-SET, with
``"complete": false`` and the missing UIDs (:func:`pacsnode.core.mpps.due_notifications`).

Two ways to hook into it, both configured in the settings and both optional:

* ``study_complete_hook = "package.module:function"``: the function is imported when
  ``pacsnode serve`` starts (a wrong name stops the start with a clear error) and called
  with the event's payload (a ``dict``) in the watcher's thread; an exception it raises is
  logged and the event counts as delivered.
* ``study_complete_webhook = "https://…"``: the payload is POSTed as JSON; a failed POST
  (no connection, or a status other than 2xx) is tried again after 2 s and 10 s, then
  logged and given up.

The :class:`StudyCompleteWatcher` thread of ``pacsnode serve`` looks for due events every
``interval`` seconds. An event is claimed in the index before it is delivered
(:func:`pacsnode.core.mpps.claim_notification`), so processes sharing a database raise it
once; it is delivered at most once (a crash between the claim and the delivery loses it).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pacsnode.config import ConfigError, Settings
from pacsnode.core import mpps
from pacsnode.core.archive import Archive

log = logging.getLogger(__name__)

Hook = Callable[[dict[str, Any]], Any]
WEBHOOK_RETRIES: Sequence[float] = (2.0, 10.0)


def load_hook(spec: str) -> Hook:
    """The function ``package.module:function`` names (:class:`ConfigError` if none)."""
    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"study_complete_hook {spec!r}: {exc}") from exc
    if not callable(target):
        raise ConfigError(f"study_complete_hook {spec!r} is not callable")
    return target


def post_webhook(url: str, payload: dict[str, Any],
                 retries: Sequence[float] = WEBHOOK_RETRIES) -> bool:
    """POST ``payload`` as JSON to ``url``, retrying; whether it was accepted (2xx)."""
    import httpx  # here: receiving processes import this module and never POST

    for attempt, delay in enumerate([0.0, *retries]):
        time.sleep(delay)
        try:
            response = httpx.post(url, json=payload, timeout=10.0)
            if response.is_success:
                return True
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = str(exc) or type(exc).__name__
        log.warning("study-complete webhook %s, attempt %d: %s", url, attempt + 1, problem)
    return False


class StudyCompleteWatcher:
    """The thread raising study-complete events for one archive."""

    def __init__(self, archive: Archive, settings: Settings, *, interval: float = 2.0,
                 extra_hooks: Sequence[Hook] = ()) -> None:
        self.archive = archive
        self.wait = settings.study_complete_wait
        self.webhook = settings.study_complete_webhook
        self.hooks: list[Hook] = list(extra_hooks)
        if settings.study_complete_hook:
            self.hooks.append(load_hook(settings.study_complete_hook))
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether anyone listens (without a hook or webhook the watcher does not run)."""
        return bool(self.hooks or self.webhook)

    def start(self) -> None:
        """Start the thread (if anyone listens)."""
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pacsnode-study-complete",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # the index unavailable for a moment: try again later
                log.exception("study-complete watcher")

    def run_once(self) -> int:
        """Raise every due event; how many were raised."""
        raised = 0
        for event in mpps.due_notifications(self.archive.engine, wait=self.wait):
            if not mpps.claim_notification(self.archive.engine, event.step.pk):
                continue
            self.deliver(event.payload())
            raised += 1
        return raised

    def deliver(self, payload: dict[str, Any]) -> None:
        """Call the hooks and POST the webhook."""
        log.info("study complete: study %s (MPPS %s), %d of %d instances received",
                 payload["study_instance_uid"], payload["mpps_sop_instance_uid"],
                 payload["received_instances"], payload["expected_instances"])
        for hook in self.hooks:
            try:
                hook(payload)
            except Exception:  # a user's hook: its failure must not stop the watcher
                log.exception("study-complete hook %r failed", hook)
        if self.webhook and not post_webhook(self.webhook, payload):
            log.error("study-complete webhook %s: giving up on study %s", self.webhook,
                      payload["study_instance_uid"])
