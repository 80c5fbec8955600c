"""Settings: flags > ``PACSNODE_*`` environment > TOML file > defaults; peers; errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsnode.config import ConfigError, Peer, Settings, normalise_db_url, resolve


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pacsnode.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = resolve(cli={}, env={})
    assert settings == Settings()
    assert (settings.aet, settings.dicom_port, settings.duplicate_policy, settings.fsync) == (
        "PACSNODE", 11112, "replace", True)
    assert settings.peers == {}
    assert settings.db is None


def test_precedence_flags_env_toml_defaults(tmp_path: Path) -> None:
    config = _toml(tmp_path, """
aet = "FROM_TOML"
dicom_port = 4242
http_port = 8081
duplicate_policy = "keep"
log_level = "debug"
acse_timeout = 5.5
""")
    env = {"PACSNODE_DICOM_PORT": "5252", "PACSNODE_HTTP_PORT": "9091",
           "PACSNODE_FSYNC": "off", "PACSNODE_ACSE_TIMEOUT": "7.25"}
    cli = {"http_port": 6060, "duplicate_policy": "reject", "aet": None}
    settings = resolve(cli=cli, env=env, config_file=config)
    assert settings.http_port == 6060            # flag beats env and TOML
    assert settings.duplicate_policy == "reject"  # flag beats TOML
    assert settings.dicom_port == 5252           # env beats TOML
    assert settings.acse_timeout == 7.25         # env beats TOML, as a float
    assert settings.fsync is False               # env beats default, as a bool
    assert settings.aet == "FROM_TOML"           # a flag of None is not given
    assert settings.log_level == "debug"         # TOML beats default
    assert settings.max_associations == 100      # default


def test_config_file_named_by_the_environment(tmp_path: Path) -> None:
    config = _toml(tmp_path, 'aet = "ENV_FILE"\n')
    assert resolve(cli={}, env={"PACSNODE_CONFIG": str(config)}).aet == "ENV_FILE"
    other = tmp_path / "other.toml"
    other.write_text('aet = "EXPLICIT"\n')
    assert resolve(cli={}, env={"PACSNODE_CONFIG": str(config)},
                   config_file=other).aet == "EXPLICIT"


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("1", True), ("yes", True), ("ON", True),
    ("false", False), ("0", False), ("no", False), ("off", False),
])
def test_boolean_from_environment(text: str, expected: bool) -> None:
    assert resolve(cli={}, env={"PACSNODE_REQUIRE_CALLED_AET": text}).require_called_aet \
        is expected


def test_peers_from_toml(tmp_path: Path) -> None:
    config = _toml(tmp_path, """
aet = "PACSNODE"

[peers.ACCDEST]
aet = "ACCDEST"
host = "127.0.0.1"
port = 11113

[peers.viewer]
aet = "VIEWER"
host = "viewer.example.org"
port = "104"
""")
    settings = resolve(cli={}, env={}, config_file=config)
    assert settings.peers == {
        "ACCDEST": Peer(name="ACCDEST", aet="ACCDEST", host="127.0.0.1", port=11113),
        "viewer": Peer(name="viewer", aet="VIEWER", host="viewer.example.org", port=104),
    }


@pytest.mark.parametrize(("text", "words"), [
    ('aet = "X"\ndicom_prot = 104\n', ["unknown", "dicom_prot"]),
    ('dicom_port = "eleven"\n', ["dicom_port", "eleven"]),
    ("dicom_port = 70000\n", ["dicom_port", "65535"]),
    ("dicom_port = true\n", ["dicom_port"]),
    ("dicom_port = 104.5\n", ["dicom_port"]),
    ('fsync = "sometimes"\n', ["fsync", "sometimes"]),
    ('acse_timeout = "soon"\n', ["acse_timeout", "soon"]),
    ('duplicate_policy = "overwrite"\n', ["duplicate_policy", "replace", "keep", "reject"]),
    ('log_format = "xml"\n', ["log_format", "json"]),
    ('aet = "A_TITLE_LONGER_THAN_16"\n', ["aet", "16"]),
    ('aet = "   "\n', ["aet"]),
    ("max_associations = 0\n", ["max_associations"]),
    ("workers = -1\n", ["workers"]),
    ('peers = "ACCDEST"\n', ["peers"]),
    ('[peers.ACC]\naet = "ACC"\nhost = "h"\n', ["peers.ACC", "port"]),
    ('[peers.ACC]\naet = "ACC"\nhost = "h"\nport = "one"\n', ["peers.ACC", "port"]),
    ('[peers]\nACC = "ACC@h:104"\n', ["peers.ACC"]),
    ("aet = \n", ["pacsnode.toml"]),  # not TOML
])
def test_bad_toml_is_a_clear_error(tmp_path: Path, text: str, words: list[str]) -> None:
    config = _toml(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        resolve(cli={}, env={}, config_file=config)
    for word in words:
        assert word in str(excinfo.value)


@pytest.mark.parametrize(("name", "value"), [
    ("PACSNODE_DICOM_PORT", "port"), ("PACSNODE_HTTP_PORT", "-1"),
    ("PACSNODE_FSYNC", "maybe"), ("PACSNODE_NETWORK_TIMEOUT", "1m"),
    ("PACSNODE_DUPLICATE_POLICY", "merge"),
])
def test_bad_environment_value_is_a_clear_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        resolve(cli={}, env={name: value})
    assert name.removeprefix("PACSNODE_").lower() in str(excinfo.value)


def test_bad_flag_value_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="dicom_port"):
        resolve(cli={"dicom_port": "abc"}, env={})


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        resolve(cli={}, env={}, config_file=missing)


def test_unknown_environment_variables_are_ignored() -> None:
    assert resolve(cli={}, env={"PACSNODE_NO_SUCH_SETTING": "1"}) == Settings()


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:p@db:5432/pacs", "postgresql+psycopg://u:p@db:5432/pacs"),
    ("postgres://u@db/pacs", "postgresql+psycopg://u@db/pacs"),
    ("postgresql+psycopg://u@db/pacs", "postgresql+psycopg://u@db/pacs"),
    ("sqlite:////srv/index.sqlite", "sqlite:////srv/index.sqlite"),
])
def test_database_url_normalised(url: str, expected: str) -> None:
    assert normalise_db_url(url) == expected
    assert Settings(db=url).db_url == expected


def test_database_url_from_the_environment_and_default(tmp_path: Path) -> None:
    settings = resolve(cli={"data_dir": str(tmp_path)},
                       env={"PACSNODE_DB": "postgresql://pacs@db/pacs"})
    assert settings.db_url == "postgresql+psycopg://pacs@db/pacs"
    assert resolve(cli={"data_dir": str(tmp_path)}, env={}).db_url == (
        f"sqlite:///{(tmp_path / 'index.sqlite').resolve()}")
    assert resolve(cli={}, env={"PACSNODE_DB": ""}).db is None
