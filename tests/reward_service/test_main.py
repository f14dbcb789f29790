"""`python -m reward_service`'s arguments and start-up refusals (checked without starting anything)."""

import pytest

from reward_service.__main__ import main, parse_args
from reward_service.api import TOKEN_ENV
from reward_service.app import ServiceSettings
from rft.auth import ExposedWithoutToken


def test_defaults_are_the_settings_defaults():
    args = parse_args([])
    defaults = ServiceSettings()
    assert (args.replicas, args.replica_cpus, args.max_batch_size) == (
        defaults.replicas,
        defaults.replica_cpus,
        defaults.max_batch_size,
    )


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--help"])
    assert exit_.value.code == 0 and "--replicas" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--replicas", "0"], ["--replicas", "3", "--max-replicas", "2"]])
def test_bad_replica_counts_are_refused(argv):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2


def test_the_token_comes_from_the_flag_or_the_environment(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert parse_args([]).token == "from-env"
    assert parse_args(["--token", "from-flag"]).token == "from-flag"


def started(*_: object, **__: object) -> None:
    raise AssertionError("the service started")


@pytest.fixture
def no_ray(monkeypatch):
    """Fails the test if a Ray would start (and hides one this process may run already)."""
    import ray

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", started)


@pytest.fixture
def nothing_starts(no_ray, monkeypatch):
    """Fails the test if the service would start."""
    from reward_service import app

    monkeypatch.setattr(app, "start", started)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_refuses_to_listen_beyond_loopback_without_a_token(nothing_starts, capsys, host):
    assert main(["--host", host]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--token" in error and TOKEN_ENV in error


def test_start_itself_refuses_before_starting_ray(no_ray):
    from reward_service.app import start

    with pytest.raises(ExposedWithoutToken):
        start(ServiceSettings(), host="0.0.0.0")


def test_insecure_no_token_only_warns(nothing_starts, capsys):
    with pytest.raises(AssertionError, match="the service started"):
        main(["--host", "0.0.0.0", "--insecure-no-token"])
    assert "without a token" in capsys.readouterr().err
