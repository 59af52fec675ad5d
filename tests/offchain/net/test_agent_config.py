import pytest

from offchain.routers.config import RouterConfig
from offchain.runtime.config_files import ConfigError, load_config
from offchain.workers.node import NodeConfig


def test_load__file_then_flags__flags_win(tmp_path):
    path = tmp_path / "router.toml"
    path.write_text('listen = "/ip4/127.0.0.1/tcp/4001"\nmax_in_flight = 10\npeers = ["/a"]\n')
    config = load_config(RouterConfig, path, {"max_in_flight": 20, "listen": None})
    assert config.listen == "/ip4/127.0.0.1/tcp/4001"
    assert config.max_in_flight == 20
    assert config.peers == ["/a"]


def test_load__repeatable_flag_given_or_not__replaces_or_keeps_the_file_list(tmp_path):
    path = tmp_path / "router.toml"
    path.write_text('peers = ["/a"]\nstaked = ["0x1"]\n')
    config = load_config(RouterConfig, path, {"peers": (), "staked": ("0x2", "0x3")})
    assert config.peers == ["/a"]  # a repeatable option given no times arrives as ()
    assert config.staked == ["0x2", "0x3"]


def test_load__unknown_key__config_error(tmp_path):
    path = tmp_path / "router.toml"
    path.write_text("max_inflight = 1\n")
    with pytest.raises(ConfigError, match="unknown"):
        load_config(RouterConfig, path, {})


def test_load__wrong_type__config_error():
    with pytest.raises(ConfigError, match="wrong type"):
        load_config(NodeConfig, None, {"parallel": "four"})


def test_load__bad_toml__config_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("this is = = not toml")
    with pytest.raises(ConfigError):
        load_config(NodeConfig, path, {})


def test_load__invalid_value__config_error():
    with pytest.raises(ConfigError):
        load_config(RouterConfig, None, {"max_in_flight": 0})


@pytest.mark.parametrize(
    "key, value",
    [("max_in_flight", True), ("request_timeout_s", "5"), ("peers", "/a"), ("gossip", 1)],
)
def test_load__toml_value_of_another_type__not_coerced(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"config key '{key}' has the wrong type"):
        load_config(RouterConfig, None, {key: value})


def test_load__int_for_a_float_key__taken_as_float(tmp_path):
    path = tmp_path / "router.toml"
    path.write_text("request_timeout_s = 3\n")
    config = load_config(RouterConfig, path, {})
    assert config.request_timeout_s == 3.0 and isinstance(config.request_timeout_s, float)
