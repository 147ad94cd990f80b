"""Routes as data: paths, prefixes, encoding, and the Cloud differences."""

from __future__ import annotations

import pytest

from comfy_async._transport.routes import CLOUD, LOCAL, AuthStyle
from comfy_async.errors import ConfigurationError, UnsupportedOperationError

# Every route of protocol doc §2.1–2.5 (local), by method and unprefixed path template.
DOCUMENTED = {
    ("POST", "/prompt"), ("GET", "/prompt"), ("GET", "/queue"), ("POST", "/queue"),
    ("POST", "/interrupt"), ("GET", "/history"), ("GET", "/history/{prompt_id}"),
    ("POST", "/history"), ("POST", "/free"), ("GET", "/jobs"), ("GET", "/jobs/{job_id}"),
    ("POST", "/jobs/{job_id}/cancel"), ("POST", "/jobs/cancel"), ("POST", "/upload/image"),
    ("POST", "/upload/mask"), ("GET", "/view"), ("GET", "/view_metadata/{folder}"),
    ("GET", "/object_info"), ("GET", "/object_info/{node_class}"), ("GET", "/system_stats"),
    ("GET", "/features"), ("GET", "/embeddings"), ("GET", "/extensions"), ("GET", "/models"),
    ("GET", "/models/{folder}"), ("GET", "/experiment/models"),
    ("GET", "/experiment/models/{folder}"),
    ("GET", "/experiment/models/preview/{folder}/{path_index}/{filename}"),
    ("GET", "/node_replacements"), ("GET", "/global_subgraphs"),
    ("GET", "/global_subgraphs/{subgraph_id}"), ("GET", "/workflow_templates"), ("GET", "/i18n"),
    ("GET", "/users"), ("POST", "/users"), ("GET", "/settings"), ("GET", "/settings/{setting_id}"),
    ("POST", "/settings"), ("POST", "/settings/{setting_id}"), ("GET", "/userdata"),
    ("GET", "/v2/userdata"), ("GET", "/userdata/{file}"), ("POST", "/userdata/{file}"),
    ("DELETE", "/userdata/{file}"), ("POST", "/userdata/{file}/move/{dest}"),
    ("GET", "/internal/logs"), ("GET", "/internal/logs/raw"),
    ("PATCH", "/internal/logs/subscribe"), ("GET", "/internal/folder_paths"),
    ("GET", "/internal/files/{directory}"),
}  # fmt: skip
# ComfyUI-Manager 4 (its server's routes), and the legacy 3.x version route probed for a hint.
MANAGER = {
    ("GET", "/v2/manager/version"), ("GET", "/manager/version"),
    ("POST", "/v2/manager/queue/task"), ("POST", "/v2/manager/queue/install_model"),
    ("POST", "/v2/manager/queue/start"), ("GET", "/v2/manager/queue/status"),
    ("GET", "/v2/manager/queue/history"), ("GET", "/v2/customnode/installed"),
    ("POST", "/v2/manager/reboot"),
}  # fmt: skip


def test_local_table_covers_every_documented_route() -> None:
    routes = {(route.method, route.template) for route in LOCAL.routes.values()}
    assert routes == DOCUMENTED | MANAGER


def test_manager_routes_are_prefixed_and_absent_on_cloud() -> None:
    assert LOCAL.route("manager.queue_status").path == "/api/v2/manager/queue/status"
    assert not LOCAL.route("manager.queue_task").idempotent  # a resend installs twice
    assert not LOCAL.route("manager.reboot").idempotent
    assert LOCAL.route("manager.queue_start").idempotent  # 201 when already running
    assert not any(name.startswith("manager.") for name in CLOUD.routes)


def test_prefix_is_added_except_for_internal_routes() -> None:
    assert LOCAL.route("queue.get").path == "/api/queue"
    assert LOCAL.route("jobs.list").path == "/api/jobs"  # never /api/api/jobs
    assert LOCAL.route("internal.logs").path == "/internal/logs"


def test_path_parameters_are_encoded_as_one_segment() -> None:
    route = LOCAL.route("userdata.get", file="workflows/a b.json")
    assert route.path == "/api/userdata/workflows%2Fa%20b.json"
    moved = LOCAL.route("userdata.move", file="a/b.json", dest="c/../d.json")
    assert moved.path == "/api/userdata/a%2Fb.json/move/c%2F..%2Fd.json"
    assert LOCAL.route("history.get", prompt_id="../../x").path == "/api/history/..%2F..%2Fx"


def test_missing_parameter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="prompt_id"):
        LOCAL.route("history.get")


def test_idempotency_marks() -> None:
    assert not LOCAL.route("prompt.submit").idempotent  # invariant 8
    assert not LOCAL.route("interrupt").idempotent
    assert LOCAL.route("jobs.cancel", job_id="x").idempotent
    assert LOCAL.route("queue.get").idempotent


def test_cloud_renames_and_omissions() -> None:
    assert CLOUD.route("history.list").path == "/api/history_v2"
    assert CLOUD.route("history.get", prompt_id="p").path == "/api/history_v2/p"
    assert CLOUD.route("models.folders").path == "/api/experiment/models"
    assert CLOUD.route("models.files", folder="loras").path == "/api/experiment/models/loras"
    assert CLOUD.route("job_status", job_id="j").path == "/api/job/j/status"
    assert not CLOUD.has("internal.logs")
    assert LOCAL.has("internal.logs")
    with pytest.raises(UnsupportedOperationError, match="not available on a cloud server"):
        CLOUD.route("internal.logs")
    with pytest.raises(UnsupportedOperationError):
        LOCAL.route("job_status", job_id="j")


def test_flavour_conventions() -> None:
    assert (LOCAL.auth, CLOUD.auth) == (AuthStyle.NONE, AuthStyle.API_KEY)
    assert LOCAL.ws_path == CLOUD.ws_path == "/ws"
    assert CLOUD.view_redirects
    assert not LOCAL.view_redirects
    assert CLOUD.parallel_jobs
    assert not LOCAL.parallel_jobs
    assert LOCAL.jobs_sort_fields["created"] == "created_at"
    assert CLOUD.jobs_sort_fields["duration"] == "execution_time"
