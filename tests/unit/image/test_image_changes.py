"""``docker import --change``: Dockerfile instructions applied to an image config, with moby's
wording for what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.image.changes import apply_changes, parse_go_duration


def test_exec_and_shell_forms() -> None:
    out = apply_changes({}, ['CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/init --flag"])
    assert out["Cmd"] == ["sh", "-c", "echo hi"]  # a CMD before ENTRYPOINT is kept
    assert out["Entrypoint"] == ["/bin/sh", "-c", "/bin/init --flag"]
    assert apply_changes({"Cmd": ["old"]}, ['ENTRYPOINT ["/e"]'])["Cmd"] is None  # reset, as a Dockerfile
    assert apply_changes({}, ["CMD [not json"])["Cmd"] == ["/bin/sh", "-c", "[not json"]


def test_env_label_workdir_user_expose_volume() -> None:
    base: dict[str, Any] = {"Env": ["PATH=/bin", "A=0"], "WorkingDir": "/app"}
    out = apply_changes(base, ['ENV A=1 B="two words"', "ENV C legacy form value", "LABEL x=1 'y z'=2",
                               "WORKDIR sub", "USER 1000:1000", "EXPOSE 80 53/udp 8000-8001",
                               'VOLUME ["/data"]', "VOLUME /a /b", "STOPSIGNAL SIGINT", "ONBUILD RUN x"])
    assert out["Env"] == ["PATH=/bin", "A=1", "B=two words", "C=legacy form value"]
    assert out["Labels"] == {"x": "1", "y z": "2"}
    assert out["WorkingDir"] == "/app/sub" and out["User"] == "1000:1000"
    assert out["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert out["Volumes"] == {"/data": {}, "/a": {}, "/b": {}}
    assert out["StopSignal"] == "SIGINT" and out["OnBuild"] == ["RUN x"]
    assert base["Env"] == ["PATH=/bin", "A=0"]  # the input is not changed
    assert apply_changes({}, ["", "# a comment", "user nobody"]) == {"User": "nobody"}


def test_healthcheck() -> None:
    change = ("HEALTHCHECK --interval=1m30s --timeout=5s --retries=3 --start-period=500ms "
              "CMD wget -q -O- localhost")
    out = apply_changes({}, [change])
    assert out["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q -O- localhost"], "Interval": 90_000_000_000,
                                  "Timeout": 5_000_000_000, "StartPeriod": 500_000_000, "Retries": 3}
    assert apply_changes({}, ['HEALTHCHECK CMD ["true"]'])["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert apply_changes({"Healthcheck": {"Test": ["CMD", "x"]}}, ["HEALTHCHECK NONE"])["Healthcheck"] == \
        {"Test": ["NONE"]}


@pytest.mark.parametrize(("change", "message"), [
    ("RUN apt-get update", "^run is not a valid change command$"),
    ("FROM scratch", "^from is not a valid change command$"),
    ("BOGUS x", "^bogus is not a valid change command$"),
    ("ENV", "^dockerfile parse error on line 1: ENV requires at least one argument$"),
    ("ENV onlykey", "ENV must have two arguments"),
    ("ENV a=1 b", "can't find = in \"b\""),
    ("HEALTHCHECK --bogus=1 CMD true", "Unknown flag: bogus"),
    ("HEALTHCHECK --interval=abc CMD true", 'time: invalid duration "abc"'),
    ("HEALTHCHECK --interval=10 CMD true", 'time: missing unit in duration "10"'),
    ("HEALTHCHECK --interval=10us CMD true", "cannot be less than 1ms"),
    ("HEALTHCHECK --retries=-1 CMD true", "--retries cannot be negative"),
    ("HEALTHCHECK NONE extra", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK TEST x", 'Unknown type "TEST" in HEALTHCHECK \\(try CMD\\)'),
    ("EXPOSE 99999", "invalid containerPort: 99999"),
])
def test_refusals(change: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes({}, [change])


def test_line_numbers_count_every_change() -> None:
    with pytest.raises(InvalidArgument, match="^dockerfile parse error on line 3: "):
        apply_changes({}, ["CMD sh", "USER x", "HEALTHCHECK"])


def test_go_durations() -> None:
    assert parse_go_duration("0") == 0 and parse_go_duration("1h2m3s") == 3_723_000_000_000
    assert parse_go_duration("1.5s") == 1_500_000_000 and parse_go_duration("250us") == 250_000
