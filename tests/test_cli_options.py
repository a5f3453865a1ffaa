"""`cryo` accepts a group's options before or after its action."""

import pytest

from host_tools.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "--role", "engineer", "--pin", "1234", "--yes", "set", "pid.kp=0.2"],
        ["config", "set", "pid.kp=0.2", "--role", "engineer", "--pin", "1234", "--yes"],
        ["config", "--role", "engineer", "set", "pid.kp=0.2", "--pin", "1234", "-y"],
    ],
)
def test_options_before_or_after_the_action(argv):
    args = build_parser().parse_args(argv)
    assert (args.role, args.pin, args.yes, args.assignments) == (
        "engineer",
        "1234",
        True,
        ["pid.kp=0.2"],
    )


def test_an_option_given_after_the_action_does_not_erase_one_before():
    args = build_parser().parse_args(["logs", "--archive", "A", "list"])
    assert str(args.archive) == "A"


def test_unknown_option_is_still_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["config", "show", "--colour"])
    assert e.value.code == 2
    assert "unrecognized arguments: --colour" in capsys.readouterr().err


@pytest.mark.parametrize(
    "path,absent,present",
    [
        (("config", "show"), "--pin", "--port"),
        (("config", "get"), "--yes", "--json"),
        (("logs", "export"), "--port", "--archive"),
        (("logs", "pull"), "--serial", "--port"),
        (("logs", "list"), "--log-root", "--offline"),  # the device's log folder is the firmware's
        (("logs", "list"), "--format", "--pin"),
        (("sim", "panel"), "--plant", "--json"),
        (("sim", "run"), "--tcp", "--plant"),
    ],
)
def test_an_action_takes_only_the_group_options_it_uses(path, absent, present, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*path, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert f"{present} " in text and f"{absent} " not in text
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*path, absent, "x"])
    assert e.value.code == 2
