"""`python -m reward_service`'s arguments (parsed without starting anything)."""

import pytest

from reward_service.__main__ import parse_args
from reward_service.app import ServiceSettings


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
