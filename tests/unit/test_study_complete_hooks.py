"""The study-complete event's delivery (:mod:`pacsnode.hooks.study_complete`): loading the
configured Python hook, the webhook's retries, and the settings that configure them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pacsnode import config
from pacsnode.config import ConfigError
from pacsnode.hooks.study_complete import load_hook, post_webhook


class Flaky:
    """An HTTP server answering 503 to the first ``failures`` POSTs, then 200."""

    def __init__(self, failures: int) -> None:
        self.bodies: list[Any] = []
        bodies, state = self.bodies, {"left": failures}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                failing = state["left"] > 0
                state["left"] -= 1
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def flaky(request: pytest.FixtureRequest) -> Iterator[Flaky]:
    server = Flaky(request.param)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("flaky", [2], indirect=True)
def test_webhook_is_retried_until_accepted(flaky: Flaky) -> None:
    assert post_webhook(flaky.url, {"n": 1}, retries=(0.01, 0.01))
    assert flaky.bodies == [{"n": 1}] * 3


@pytest.mark.parametrize("flaky", [5], indirect=True)
def test_webhook_gives_up_after_the_retries(flaky: Flaky) -> None:
    assert not post_webhook(flaky.url, {"n": 2}, retries=(0.01,))
    assert len(flaky.bodies) == 2


def test_webhook_to_nowhere_fails_without_raising() -> None:
    assert not post_webhook("http://127.0.0.1:9/", {}, retries=())


def test_load_hook() -> None:
    assert load_hook("json:dumps") is json.dumps
    assert load_hook("os.path:join.__call__") is not None  # dotted attributes
    for bad in ("json:nothing_here", "no_such_module_x:f", "json:__doc__"):
        with pytest.raises(ConfigError, match="study_complete_hook"):
            load_hook(bad)


@pytest.mark.parametrize(("name", "value"), [
    ("study_complete_hook", "module_without_colon"),
    ("study_complete_webhook", "ftp://host/x"),
    ("study_complete_wait", "-1"),
])
def test_bad_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        config.resolve({name: value}, env={})
