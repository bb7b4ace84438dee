"""URLs people type: an account in one is refused, and the refusal never repeats the password."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.addresses import parse_url
from contract.errors import ConfigError
from contract.mqtt import broker_endpoint

SECRET = "Hu3-s3cret"


@pytest.mark.parametrize(
    "url",
    [
        f"mqtt://probe:{SECRET}@broker.example.vn:1883",
        f"mqtts://probe:{SECRET}@broker.example.vn",
        f"mqtt://:{SECRET}@127.0.0.1",
        f"mqtt://{SECRET}@127.0.0.1",
        f"unix://probe:{SECRET}@/run/qosfleet/mqtt.sock",
        f"probe:{SECRET}@127.0.0.1:1883",
        f"mqtt://probe:{SECRET}@[::1]:99999",
    ],
)
def test_a_broker_url_with_an_account_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        broker_endpoint(url, option="broker.url", credentials_hint="put it in [broker] password")
    text = str(caught.value)
    assert "holds an account" in text
    assert "put it in [broker] password" in text
    assert SECRET not in text


def test_a_target_url_with_an_account_is_refused() -> None:
    with pytest.raises(ConfigError, match="holds an account") as caught:
        parse_url(f"http://u:{SECRET}@198.18.0.1:8080", option="--target", schemes=("http",))
    assert SECRET not in str(caught.value)


@given(st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s and "@" not in s))
def test_no_password_ever_reaches_the_message(password: str) -> None:
    with pytest.raises(ConfigError) as caught:
        broker_endpoint(f"mqtt://probe:{password}@127.0.0.1:1883")
    assert f":{password}@" not in str(caught.value)


@pytest.mark.parametrize("url", ["mqtt://127.0.0.1:1883", "mqtts://b.example.vn", "unix:///x.sock"])
def test_urls_without_an_account_pass(url: str) -> None:
    broker_endpoint(url)
