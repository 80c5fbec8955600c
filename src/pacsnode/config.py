"""pacsnode settings: command-line flags, then ``PACSNODE_*`` environment variables, then a
TOML file, then built-in defaults — in that order of precedence.

The TOML file uses the option names with underscores at top level, and declares peers
(other DICOM nodes) in ``[peers.NAME]`` tables whose format is stable::

    data_dir = "/srv/pacs"
    aet = "PACSNODE"
    dicom_port = 11112

    [peers.ACCDEST]
    aet = "ACCDEST"
    host = "127.0.0.1"
    port = 11113
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "PACSNODE_"
DUPLICATE_POLICIES = ("replace", "keep", "reject")
LOG_FORMATS = ("text", "json")
INDEX_SYNC_MODES = ("periodic", "commit")


class ConfigError(ValueError):
    """A setting has a value pacsnode cannot use."""


@dataclass(frozen=True)
class Peer:
    """Another DICOM application entity pacsnode may talk to."""

    name: str
    aet: str
    host: str
    port: int


@dataclass(frozen=True)
class Settings:
    """Every setting of a pacsnode node. Field names are the option names."""

    data_dir: Path = Path("pacsnode-data")
    db: str | None = None
    aet: str = "PACSNODE"
    dicom_host: str = "0.0.0.0"
    dicom_port: int = 11112
    http_host: str = "0.0.0.0"
    http_port: int = 8042
    public_url: str = ""  # base URL clients reach the web front end at (behind a proxy)
    cors_origins: str = ""  # comma-separated origins allowed by CORS; "*" = any
    log_level: str = "info"
    log_format: str = "text"
    duplicate_policy: str = "replace"
    require_called_aet: bool = False
    max_associations: int = 100
    max_pdu_size: int = 4 * 1024 * 1024
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0
    workers: int = 0  # receiving processes; 0 = automatic (CPU count, at most 4)
    fsync: bool = True
    # "periodic": a serving node's ingest index commits are flushed about once a second and
    # completed from the (always flushed) files after a power cut; "commit": each one is
    # flushed before the success answer. SQLite only (PostgreSQL: always "commit").
    index_sync: str = "periodic"
    restrict_qr_to_peers: bool = False  # Query/Retrieve only from declared peers
    check_peer_host: bool = False  # ... and only from their host
    hl7_port: int = 0  # MLLP port of the HL7 order receiver; 0 = none
    hl7_station_aet: str = ""  # station AE title of HL7 orders without one; "" = modality
    # The study-complete event (an MPPS COMPLETED and its instances received):
    study_complete_hook: str = ""  # "package.module:function", called with the event
    study_complete_webhook: str = ""  # URL the event is POSTed to as JSON
    study_complete_wait: float = 600.0  # seconds to wait for the instances, then raise anyway
    peers: Mapping[str, Peer] = field(default_factory=dict)

    @property
    def receiving_processes(self) -> int:
        """How many processes receive DICOM: ``workers``, or with 0 the CPU count (max 4)."""
        if self.workers:
            return self.workers
        return max(1, min(4, os.cpu_count() or 1))

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL of the index: ``db`` or SQLite inside the data directory."""
        if self.db:
            return normalise_db_url(self.db)
        return f"sqlite:///{(self.data_dir / 'index.sqlite').resolve()}"


def normalise_db_url(url: str) -> str:
    """Let users write ``postgresql://`` and still get the psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "peers"}


def _coerce(name: str, value: Any) -> Any:
    """Turn a raw value (a string from the environment, or a TOML value) into the field's type."""
    default = _FIELDS[name].default
    try:
        if name == "db":
            return None if value in (None, "") else str(value)
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)  # int() would silently make 1 of true, 104 of 104.5
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Path):
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot use value {value!r}") from exc


def _parse_peers(raw: Any) -> dict[str, Peer]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("[peers] must be a table of tables: [peers.NAME] aet/host/port")
    peers: dict[str, Peer] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"[peers.{name}] must be a table with aet, host and port")
        missing = {"aet", "host", "port"} - entry.keys()
        if missing:
            raise ConfigError(f"[peers.{name}] lacks {', '.join(sorted(missing))}")
        try:
            port = int(entry["port"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[peers.{name}] port must be a number") from exc
        peers[name] = Peer(name=name, aet=str(entry["aet"]), host=str(entry["host"]), port=port)
    return peers


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML settings file; unknown keys are an error so typos do not pass silently."""
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    unknown = set(raw) - set(_FIELDS) - {"peers"}
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return raw


def resolve(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge the sources: ``cli`` (values that are ``None`` count as not given) beats the
    environment, which beats the TOML file, which beats the defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    peers: dict[str, Peer] = {}
    if config_file is None and env.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(env[ENV_PREFIX + "CONFIG"])
    if config_file is not None:
        raw = load_toml(config_file)
        peers = _parse_peers(raw.pop("peers", None))
        for name, value in raw.items():
            values[name] = _coerce(name, value)
    for name in _FIELDS:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = _coerce(name, env[key])
    for name, value in (cli or {}).items():
        if value is not None and name in _FIELDS:
            values[name] = _coerce(name, value)
    settings = Settings(**values, peers=peers)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse settings that cannot work, with a message naming the setting."""
    if not 1 <= len(settings.aet.strip()) <= 16:
        raise ConfigError("aet must be 1 to 16 characters (PS3.5 AE value representation)")
    if settings.duplicate_policy not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicate_policy must be one of {', '.join(DUPLICATE_POLICIES)}")
    if settings.index_sync not in INDEX_SYNC_MODES:
        raise ConfigError(f"index_sync must be one of {', '.join(INDEX_SYNC_MODES)}")
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
    for port_name in ("dicom_port", "http_port", "hl7_port"):
        port = getattr(settings, port_name)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{port_name} must be between 0 and 65535")
    if settings.study_complete_hook and ":" not in settings.study_complete_hook:
        raise ConfigError("study_complete_hook must be 'package.module:function'")
    if settings.study_complete_webhook and not settings.study_complete_webhook.startswith(
            ("http://", "https://")):
        raise ConfigError("study_complete_webhook must be an http:// or https:// URL")
    if settings.study_complete_wait < 0:
        raise ConfigError("study_complete_wait must be 0 or more seconds")
    aet = settings.hl7_station_aet
    if len(aet) > 16 or "\\" in aet or not aet.isascii() or not aet.isprintable():
        raise ConfigError("hl7_station_aet must be at most 16 printable ASCII characters "
                          "without backslash (PS3.5 AE value representation)")
    if settings.workers < 0:
        raise ConfigError("workers must be 0 (automatic) or more")
    if settings.max_associations < 1:
        raise ConfigError("max_associations must be at least 1")
