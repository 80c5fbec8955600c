"""pacsnode's own processes keep modules they never use out (pacsnode.process_setup), and
``import pacsnode`` imports pydicom only when a public name is used."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_the_package_imports_pydicom_only_when_its_names_are_used() -> None:
    result = _run("import sys, pacsnode.config\n"
                  "print('pydicom' in sys.modules)\n"
                  "from pacsnode import Archive, Outcome\n"
                  "print('pydicom' in sys.modules, Archive.__name__, Outcome.STORED.name)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "Archive", "STORED"]


def test_unknown_package_attribute_is_an_attribute_error() -> None:
    import pacsnode

    with pytest.raises(AttributeError):
        pacsnode.NoSuchName  # noqa: B018


@pytest.mark.parametrize("setup", [True, False])
def test_serving_modules_load_without_requests_once_set_up(setup: bool) -> None:
    pytest.importorskip("requests")  # installed with the test tools: what is kept out
    first = ("from pacsnode.process_setup import skip_unused_modules\n"
             "skip_unused_modules()\n") if setup else ""
    result = _run(first + "import sys\n"
                  "import pacsnode.cli.main, pacsnode.dimse.services, pacsnode.web.server\n"
                  "import pydicom\n"
                  "print(sorted(m for m in ('requests', 'urllib3') if sys.modules.get(m)))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("[]" if setup else "['requests', 'urllib3']")
