"""The Sentinel URL form: what it names, and the mistakes it refuses."""

from __future__ import annotations

import pytest

from router.errors import ConfigError
from router.store.connect import SentinelTarget, parse_sentinel_url, redact


def test_a_sentinel_url_names_sentinels_master_db_and_the_data_nodes_user() -> None:
    url = "redis+sentinel://router-worker:p%40ss@10.0.0.1:26379,10.0.0.2:26380/mymaster/2?sentinel_password=s"
    assert parse_sentinel_url(url) == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)),
        master="mymaster",
        db=2,
        username="router-worker",
        password="p@ss",
        sentinel_password="s",
    )
    assert parse_sentinel_url("redis+sentinel://h:26379/m") == SentinelTarget((("h", 26379),), "m")
    assert parse_sentinel_url("rediss+sentinel://h:26379/m").ssl  # type: ignore[union-attr]
    assert parse_sentinel_url("redis://h:6379/0") is None


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h:26379/",
        "redis+sentinel://h/m",
        "redis+sentinel://h:1/m/x",
        "redis+sentinel://h:1/a/1/2",
    ],
)
def test_a_malformed_sentinel_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_sentinel_url(url)


def test_passwords_never_reach_messages() -> None:
    assert redact("redis+sentinel://u:secret@h:1,h:2/m") == "redis+sentinel://u:***@h:1,h:2/m"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
