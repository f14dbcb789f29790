"""The services' shared token scheme: where the token comes from, which hosts need one, how it is checked."""

import pytest

from rft.auth import (
    ExposedWithoutToken,
    bearer_header,
    bearer_refusal,
    check_exposure,
    is_loopback,
    resolve_token,
)


def test_the_flag_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "from-env")
    assert resolve_token("from-flag", "SOME_TOKEN") == "from-flag"
    assert resolve_token(None, "SOME_TOKEN") == "from-env"
    monkeypatch.setenv("SOME_TOKEN", "")
    assert resolve_token(None, "SOME_TOKEN") is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "example.org", "::ffff:10.0.0.1"])
def test_hosts_reachable_from_elsewhere(host):
    assert not is_loopback(host)


def test_bearer_header_carries_the_token_only_when_there_is_one():
    assert bearer_header("t0k") == {"Authorization": "Bearer t0k"}
    assert bearer_header(None) == {} and bearer_header("") == {}


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("", 401),
        ("Bearer wrong", 403),
        ("Bearer t0k ", 403),
        ("bearer t0k", 403),
        ("Bearer ü", 403),
    ],
)
def test_missing_or_wrong_credentials_are_refused(authorization, status):
    refusal = bearer_refusal(authorization, "t0k")
    assert refusal is not None and refusal.status == status and "t0k" not in refusal.message


def test_the_right_token_passes():
    assert bearer_refusal("Bearer t0k", "t0k") is None


def test_listening_beyond_loopback_needs_a_token_or_an_explicit_waiver():
    assert check_exposure("127.0.0.1", None, env_var="X_TOKEN", insecure=False) is None
    assert check_exposure("0.0.0.0", "t0k", env_var="X_TOKEN", insecure=False) is None
    with pytest.raises(ExposedWithoutToken, match=r"--token or set \$X_TOKEN") as refused:
        check_exposure("0.0.0.0", None, env_var="X_TOKEN", insecure=False)
    assert "\n" not in str(refused.value)
    warning = check_exposure("0.0.0.0", None, env_var="X_TOKEN", insecure=True)
    assert warning is not None and "without a token" in warning and "\n" not in warning
