"""DCMTK storescp as the receiving peer of tests (C-MOVE destination, send-job peer):
every data set written exactly as it came off the wire (``+B``), with the transfer syntax
options given."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pydicom

from tests.conftest import DCMTK_ENV, dcmtk, free_port


class StorescpReceiver:
    """A running ``storescp -v +B OPTIONS -aet AET -od OUT_DIR PORT``."""

    def __init__(self, out_dir: Path, aet: str, *options: str, port: int | None = None
                 ) -> None:
        self.out_dir, self.aet, self.port = out_dir, aet, port or free_port()
        out_dir.mkdir(parents=True)
        self.log_path = out_dir.parent / f"storescp-{aet}-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [dcmtk("storescp"), "-v", "+B", *options, "-aet", aet, "-od", str(out_dir),
             str(self.port)], env=DCMTK_ENV, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # listening? (a CT-only storescp refuses C-ECHO)
            assert self.proc.poll() is None, self.log_path.read_text()
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"storescp {aet} is not listening")

    def files(self, *, unique: bool = True) -> dict[str, Path]:
        """SOP Instance UID -> received file (with ``unique``, a UID received twice fails
        the test; without, the last file in name order wins)."""
        out: dict[str, Path] = {}
        for path in sorted(self.out_dir.iterdir()):
            uid = str(pydicom.filereader.read_file_meta_info(path).MediaStorageSOPInstanceUID)
            assert not unique or uid not in out, f"{uid} received twice"
            out[uid] = path
        return out

    def take(self) -> dict[str, Path]:
        """:meth:`files` received since the last call, moved away so that the next
        retrieve starts empty."""
        done = self.out_dir.parent / f"{self.aet}-taken-{time.monotonic_ns()}"
        done.mkdir()
        out = {}
        for uid, path in self.files().items():
            out[uid] = Path(shutil.move(path, done / path.name))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
