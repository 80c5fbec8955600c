"""The HL7 settings (``hl7_port``, ``hl7_station_aet``: flags, environment, validation) and
:func:`pacsnode.hl7.receiver.start` serving MLLP from them."""

from __future__ import annotations

import socket

import pytest

from pacsnode.config import ConfigError, Settings, resolve
from pacsnode.core import worklist
from pacsnode.core.archive import Archive
from pacsnode.hl7 import receiver
from tests.hl7_messages import ack_fields, orm, send


def test_defaults_flags_and_environment() -> None:
    defaults = resolve({}, env={})
    assert (defaults.hl7_port, defaults.hl7_station_aet) == (0, "")
    env = resolve({}, env={"PACSNODE_HL7_PORT": "2575", "PACSNODE_HL7_STATION_AET": "CT9"})
    assert (env.hl7_port, env.hl7_station_aet) == (2575, "CT9")
    flags = resolve({"hl7_port": 2576, "hl7_station_aet": None},
                    env={"PACSNODE_HL7_PORT": "2575"})
    assert (flags.hl7_port, flags.hl7_station_aet) == (2576, "")


@pytest.mark.parametrize("values", [
    {"hl7_port": 70000}, {"hl7_port": -1}, {"hl7_station_aet": "A" * 17},
    {"hl7_station_aet": "A\\B"}, {"hl7_station_aet": "MÜNCHEN"},
])
def test_bad_values(values: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        resolve(values, env={})


def test_start_serves_orders(archive: Archive) -> None:
    settings = Settings(dicom_host="127.0.0.1", hl7_port=0, hl7_station_aet="STATION9",
                        aet="MYPACS")
    server = receiver.start(settings, archive.engine)  # port 0 here: any free port
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            seg = ack_fields(send(sock, orm("S1", "NW", station="")))
        assert seg["MSA"][1:3] == ["AA", "S1"]
        assert seg["MSH"][2] == "PACSNODE"  # the message's MSH-5, not our AE title
    finally:
        server.stop()
    (item,) = worklist.list_items(archive.engine)
    assert item.sps_text(worklist.STATION_AET) == "STATION9"
