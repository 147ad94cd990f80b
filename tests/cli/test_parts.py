"""The parts of the command line on their own: exit codes, errors, server choice, output, views."""

from __future__ import annotations

import argparse
import io

import pytest

from comfy_async.cli.edits import Assignment, typed_value
from comfy_async.cli.failures import ExitCode, UsageError, describe, exit_code_for, report
from comfy_async.cli.output import Output, choose_progress, wants_color
from comfy_async.cli.session import server_choice
from comfy_async.errors import (
    AuthenticationError,
    ConnectError,
    ExecutionError,
    JobTimeout,
    NotFoundError,
    UnsupportedWorkflowError,
)
from comfy_async.workflow import Workflow


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            ExecutionError(
                "p", node_id="1", node_type="X", exception_type="E", exception_message="m"
            ),
            1,
        ),
        (JobTimeout("p", 3), 1),  # a TimeoutError, hence an OSError: still a failed job
        (NotFoundError(404), 1),
        (ConnectError("refused", method="GET", url="http://h/x"), 4),
        (AuthenticationError(401), 4),
        (UnsupportedWorkflowError("group nodes"), 2),
        (UsageError("bad"), 2),
        (FileNotFoundError(2, "No such file or directory", "wf.json"), 2),
        (RuntimeError("a bug"), 1),
    ],
)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_verbose_shows_the_cause_chain_with_secrets_redacted() -> None:
    try:
        try:
            raise OSError("GET https://cloud.example/ws?token=s3cret&clientId=1 failed for s3cret")
        except OSError as cause:
            raise ConnectError("cannot open the WebSocket") from cause
    except ConnectError as raised:
        error = raised
    lines = describe(error, verbose=True, secrets=["s3cret"])
    assert lines[0].startswith("error: cannot open the WebSocket")
    assert lines[1] == (
        "  caused by builtins.OSError: GET https://cloud.example/ws?token=REDACTED&clientId=REDACTED"
        " failed for REDACTED"
    )
    assert not any("s3cret" in line for line in lines)
    assert describe(error) == lines[:1]


def test_a_bug_shows_its_traceback_only_when_verbose() -> None:
    stream = io.StringIO()
    try:
        raise ValueError("oops")
    except ValueError as raised:
        bug = raised
    code = report(bug, stream, verbose=True)
    assert code == ExitCode.FAILED
    text = stream.getvalue()
    assert text.startswith("error: oops\nTraceback")
    assert text.rstrip().endswith("ValueError: oops")
    quiet = io.StringIO()
    report(bug, quiet)
    assert quiet.getvalue() == "error: oops\n"


def namespace(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**values)


def test_server_choice_order_and_credentials() -> None:
    assert server_choice(namespace(), {}).url is None  # the library's default, 127.0.0.1:8188
    assert server_choice(namespace(), {"COMFY_URL": "http://a:1"}).url == "http://a:1"
    given = namespace(url=["http://b:2"], header=["X-Team: blue", "X-Empty:"])
    choice = server_choice(given, {"COMFY_URL": "http://a:1"})
    assert choice.url == "http://b:2"
    assert choice.headers == {"X-Team": "blue", "X-Empty": ""}
    proxied = server_choice(
        namespace(bearer_token_env="TOKEN", basic_auth_env="BASIC"),
        {"TOKEN": "t0k", "BASIC": "me:pa:ss"},
    )
    assert proxied.bearer_token == "t0k"
    assert proxied.basic_auth == ("me", "pa:ss")
    assert set(proxied.secrets) == {"t0k", "pa:ss"}
    cloud = server_choice(namespace(cloud=True), {"COMFY_CLOUD_API_KEY": "k-1"})
    assert (cloud.cloud, cloud.api_key, cloud.url) == (True, "k-1", None)
    assert cloud.client().flavour == "cloud"


@pytest.mark.parametrize(
    ("values", "env", "message"),
    [
        ({"cloud": True}, {}, "--cloud needs an API key in $COMFY_CLOUD_API_KEY"),
        ({"cloud": True, "api_key_env": "K"}, {}, "needs an API key in $K"),
        ({"bearer_token_env": "T"}, {}, "--bearer-token-env names $T, which is not set"),
        ({"basic_auth_env": "B"}, {"B": "nopassword"}, "must hold 'login:password'"),
        ({"header": ["no-colon"]}, {}, "--header expects NAME:VALUE"),
        ({"cloud": True, "bearer_token_env": "T"}, {"COMFY_CLOUD_API_KEY": "k", "T": "t"}, "drop"),
    ],
)
def test_server_choice_refuses_what_cannot_work(values, env, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("$", r"\$")):
        server_choice(namespace(**values), env)


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert wants_color(Tty(), {})
    assert not wants_color(io.StringIO(), {})
    assert not wants_color(Tty(), {"NO_COLOR": "1"})
    assert wants_color(Tty(), {"NO_COLOR": ""})  # set but empty: the spec says ignore it
    assert not wants_color(Tty(), {"TERM": "dumb"})
    assert not wants_color(Tty(), {}, disabled=True)
    styled = Output(stdout=Tty(), color=True)
    assert styled.style("ok", "green") == "\x1b[32mok\x1b[0m"
    assert Output(stdout=io.StringIO()).style("ok", "green") == "ok"


def test_progress_display_choice() -> None:
    assert choose_progress("auto", Tty(), {}) == "rich"
    assert choose_progress("auto", io.StringIO(), {}) == "plain"
    assert choose_progress("auto", Tty(), {"TERM": "dumb"}) == "plain"
    assert choose_progress("rich", io.StringIO(), {}) == "rich"
    assert choose_progress("auto", Tty(), {}, quiet=True) == "none"
    assert choose_progress("none", Tty(), {}) == "none"


def test_without_rich_the_display_falls_back_to_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert choose_progress("auto", Tty(), {}) == "plain"
    assert choose_progress("rich", Tty(), {}) == "plain"


def test_targets_with_dots_in_titles_and_inputs() -> None:
    workflow = Workflow(
        {
            "1": {
                "class_type": "A",
                "inputs": {"resize.width": 1, "x": 1},
                "_meta": {"title": "v1.5 loader"},
            },
            "2": {"class_type": "B", "inputs": {"x": 2}},
        }
    )
    assert Assignment.parse("v1.5 loader.x=3", "--set").locate(workflow) == ("1", "x")
    assert Assignment.parse("1.resize.width=3", "--set").locate(workflow) == ("1", "resize.width")
    assert Assignment.parse("B=p.png", "--upload").locate(workflow, input_required=False) == (
        "2",
        None,
    )
    assert Assignment.parse("2=p.png", "--upload").locate(workflow, input_required=False) == (
        "2",
        None,
    )
    with pytest.raises(UsageError, match="no node of the workflow"):
        Assignment.parse("C.x=1", "--set").locate(workflow)
    twins = Workflow(
        {"1": {"class_type": "A", "inputs": {}}, "2": {"class_type": "A", "inputs": {}}}
    )
    with pytest.raises(UsageError, match=r"'A' matches 2 nodes \(1, 2\); use a node id"):
        Assignment.parse("A.x=1", "--set").locate(twins)


def test_values_without_a_catalogue_are_json_or_text() -> None:
    workflow = Workflow({"1": {"class_type": "A", "inputs": {"v": 0}}})
    assert typed_value(workflow, "1", "v", "5") == 5
    assert typed_value(workflow, "1", "v", "[1, 2]") == [1, 2]
    assert typed_value(workflow, "1", "v", "true") is True
    assert typed_value(workflow, "1", "v", "a lighthouse") == "a lighthouse"
