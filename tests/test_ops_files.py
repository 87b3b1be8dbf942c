"""The files shipped to serve the application (gunicorn.conf.py, ops/) stay in step with
it: the body size nginx lets through is the application's, the units call commands that
exist, gunicorn's settings are sane whatever the environment says, and a request past
its deadline really stops its worker."""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gunicorn.config import Config

from biobank import config as biobank_config
from biobank import headers, logs
from biobank.config import Defaults
from biobank.custody import services as custody

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "ops"
UNITS = OPS / "systemd"
NGINX = (OPS / "nginx" / "biobank.conf").read_text(encoding="utf-8")
INSTALLED = "/opt/biobank"  # where the examples expect the repository
BIN = Path(sys.executable).parent
GUNICORN = (sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"))
# One line of the application's log shape: time, level, logger, [request id, user], message.
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+) "
    r"\[(?P<request_id>\S+) (?P<user>\S+)\] (?P<message>.*)$"
)


# --- gunicorn.conf.py ---------------------------------------------------------------------


@pytest.fixture
def gunicorn_conf(monkeypatch) -> Callable:
    """Load gunicorn.conf.py as gunicorn does, under the environment variables given (no
    other GUNICORN_* variable set)."""

    def load(cpus: int | None = None, **environment):
        for name in list(os.environ):
            if name.startswith("GUNICORN_"):
                monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        if cpus is not None:
            monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
        spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def _gunicorn_settings(module) -> Config:
    """The module's settings as gunicorn reads them: each one through its validator."""
    settings = Config()
    for name, value in vars(module).items():
        if name in settings.settings:
            settings.set(name, value)
    return settings


@pytest.mark.parametrize(
    ("cpus", "environment"),
    [
        (1, {}),
        (2, {}),
        (64, {}),
        (2, {"GUNICORN_THREADS": "8", "GUNICORN_TIMEOUT": "120"}),
        (2, {"GUNICORN_REQUEST_TIMEOUT": "300", "GUNICORN_MAX_REQUESTS": "5"}),
        (4, {"GUNICORN_WORKERS": "3", "GUNICORN_BIND": "127.0.0.1:9000"}),
    ],
)
def test_gunicorn_settings_are_sane(gunicorn_conf, cpus, environment):
    module = gunicorn_conf(cpus, **environment)
    settings = _gunicorn_settings(module)
    assert settings.workers >= 2
    assert settings.threads >= 1
    assert settings.timeout > 0
    assert settings.max_requests > 0 and settings.max_requests_jitter > 0
    assert settings.worker_class_str == "gthread"
    # Requests under way on a restart may run as long as any request may.
    assert settings.graceful_timeout >= module.REQUEST_TIMEOUT > 0
    assert settings.logger_class is module.Logger
    for name, value in environment.items():
        setting = name.removeprefix("GUNICORN_").lower()
        if setting == "request_timeout":
            assert int(value) == module.REQUEST_TIMEOUT
        elif setting == "bind":
            assert settings.bind == [value]
        else:
            assert str(settings.settings[setting].get()) == value


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 2), (4, 4), (64, 8)])
def test_workers_follow_the_cpus_and_threads_default_to_four(gunicorn_conf, cpus, workers):
    module = gunicorn_conf(cpus)
    assert (module.workers, module.threads) == (workers, 4)
    assert module.bind == "127.0.0.1:8000"


@pytest.mark.parametrize("value", ["many", "2.5", "0", "-3", "1000"])
def test_a_wrong_worker_count_is_refused_naming_the_variable(gunicorn_conf, value):
    with pytest.raises(SystemExit) as refused:
        gunicorn_conf(GUNICORN_WORKERS=value)
    message = str(refused.value)
    assert "GUNICORN_WORKERS must be a whole number" in message and repr(value) in message


def test_gunicorn_refuses_to_start_on_a_wrong_worker_count(tmp_path):
    environment = {**os.environ, "GUNICORN_WORKERS": "lots"}
    started = subprocess.run(
        [*GUNICORN, "wsgi:app"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0
    assert "GUNICORN_WORKERS must be a whole number from 1 to 64, not 'lots'" in started.stderr


def test_gunicorn_logs_in_the_applications_shape(gunicorn_conf):
    assert gunicorn_conf().FORMAT == logs.FORMAT


def test_the_deadline_finds_the_request_running_too_long(gunicorn_conf):
    now = [100.0]
    deadline = gunicorn_conf().RequestDeadline(60, clock=lambda: now[0])
    deadline.started(1, "POST /inventory/apply")
    now[0] += 30
    deadline.started(2, "GET /scan")
    now[0] += 30
    assert deadline.overdue() is None  # exactly 60 s: not past
    now[0] += 1
    assert deadline.overdue() == (1, "POST /inventory/apply", 61)
    assert deadline.others(1) == {2}
    deadline.finished(1)
    assert deadline.overdue() is None
    now[0] += 30
    assert deadline.overdue() == (2, "GET /scan", 61)
    deadline.finished(2)
    assert deadline.overdue() is None and deadline.others(2) == set()


# A WSGI application for a real gunicorn: /runaway never ends, /held ends when the test
# says so, anything else answers the worker's process id.
SLOW_APP = """
import os, pathlib, time

HERE = pathlib.Path(__file__).parent


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/runaway":
        (HERE / "runaway-started").touch()
        while True:
            time.sleep(0.1)
    if path == "/held":
        (HERE / "held-started").touch()
        while not (HERE / "release").exists():
            time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Request-ID", "probe-0001")])
    return [str(os.getpid()).encode()]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port: int, path: str, timeout: float = 120) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _wait_for(what: str, condition: Callable[[], object], seconds: float = 90):
    """Wait until ``condition`` holds (a bound on a hang, not a measure of speed)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if result := condition():
                return result
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def test_a_request_past_its_deadline_stops_its_worker_after_the_others(tmp_path):
    (tmp_path / "slowapp.py").write_text(SLOW_APP, encoding="utf-8")
    port = _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")},
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
        "GUNICORN_REQUEST_TIMEOUT": "3",
        "GUNICORN_GRACEFUL_TIMEOUT": "60",
    }
    out, err = tmp_path / "access.log", tmp_path / "error.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen(
            [*GUNICORN, "--chdir", str(tmp_path), "slowapp:app"],
            env=environment,
            stdout=stdout,
            stderr=stderr,
        )
    answers: dict[str, object] = {}

    def ask(path: str) -> None:
        try:
            answers[path] = _get(port, path)
        except (OSError, http.client.HTTPException) as cut:
            answers[path] = cut

    try:
        first_pid = _wait_for("gunicorn answers", lambda: _get(port, "/pid", 5)[1])
        runaway = threading.Thread(target=ask, args=("/runaway",))
        runaway.start()
        _wait_for("the runaway request runs", (tmp_path / "runaway-started").exists)
        held = threading.Thread(target=ask, args=("/held",))
        held.start()
        _wait_for("the other request runs", (tmp_path / "held-started").exists)
        _wait_for("the deadline is logged", lambda: "still running after" in err.read_text())
        (tmp_path / "release").touch()
        held.join(120)
        runaway.join(120)
        # The request under way beside the runaway one finished, in the same worker.
        assert answers["/held"] == (200, first_pid)
        # The runaway request got no answer: its worker ended.
        assert isinstance(answers["/runaway"], (OSError, http.client.HTTPException))
        replaced = _wait_for(
            "a new worker answers",
            lambda: (pid := _get(port, "/pid", 5)[1]) != first_pid and pid,
        )
        assert replaced != first_pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    errors = err.read_text()
    assert "request GET /runaway (-) still running after" in errors
    assert f"worker {first_pid} ends: request GET /runaway (-) cut" in errors
    for line in errors.splitlines():
        assert LINE.match(line), line
    access = [LINE.match(line) for line in out.read_text().splitlines()]
    assert access and all(access)
    probes = [m for m in access if m["message"].startswith("GET /pid 200 ")]
    assert probes and {m["logger"] for m in access} == {"gunicorn.access"}
    assert {m["request_id"] for m in probes} == {"probe-0001"}
    assert "GET /held 200" in "\n".join(m["message"] for m in access)


# --- nginx ------------------------------------------------------------------------------


def _directives(name: str) -> list[str]:
    """Every value of an nginx directive, comments left out."""
    value = r'((?:"[^"\n]*"|[^;#"{}\n])*)'  # a quoted string may hold a ";"
    pattern = re.compile(rf"^\s*{re.escape(name)}\s+{value};", re.MULTILINE)
    return [value.strip() for value in pattern.findall(NGINX)]


def test_nginx_refuses_the_bodies_the_application_refuses():
    (size,) = _directives("client_max_body_size")
    assert re.fullmatch(r"\d+m", size)
    assert int(size[:-1]) * 1024 * 1024 == Defaults.MAX_CONTENT_LENGTH


def test_nginx_passes_what_proxy_hops_reads_to_gunicorns_address(gunicorn_conf):
    assert _directives("server") == [gunicorn_conf().bind]
    passed = {value.split()[0] for value in _directives("proxy_set_header")}
    assert {"Host", "X-Forwarded-For", "X-Forwarded-Proto"} <= passed
    assert {"X-Forwarded-Host", "X-Forwarded-Port", "X-Request-ID"} <= passed
    assert set(_directives("proxy_pass")) == {"http://biobank"}
    # nginx waits for an answer longer than the application's own deadline.
    (read_timeout,) = _directives("proxy_read_timeout")
    assert int(read_timeout.removesuffix("s")) > gunicorn_conf().REQUEST_TIMEOUT


def test_nginx_redirects_http_and_serves_https():
    assert _directives("return")[0] == "301 https://$host$request_uri"
    assert any("443 ssl" in listen for listen in _directives("listen"))
    assert _directives("ssl_certificate") and _directives("ssl_certificate_key")


def test_nginx_shows_the_metrics_only_to_a_request_with_a_token():
    block = NGINX[NGINX.index("location = /metrics") :]
    block = block[: block.index("\n    }")]
    assert 'if ($http_authorization = "")' in block and "return 404;" in block


def test_nginx_serves_the_static_files_as_the_application_would(client):
    (alias,) = _directives("alias")
    assert alias.startswith(INSTALLED + "/")
    folder = ROOT / alias.removeprefix(INSTALLED + "/")
    assert folder == Path(client.application.static_folder)
    hsts = [v for v in _directives("add_header") if v.startswith("Strict-Transport-Security")]
    assert hsts == [f'Strict-Transport-Security "{headers.STRICT_TRANSPORT_SECURITY}" always']


def test_pages_name_static_files_by_content_so_a_long_cache_is_safe(client):
    assert 'default "public, max-age=31536000, immutable";' in NGINX
    page = client.get("/login").get_data(as_text=True)
    named = dict(re.findall(r'/static/([\w.-]+)\?v=([0-9a-f]+)"', page))
    assert "app.css" in named and "controls.js" in named
    for filename, version in named.items():
        content = (Path(client.application.static_folder) / filename).read_bytes()
        assert version == hashlib.sha256(content).hexdigest()[: len(version)]
    assert client.get(f"/static/app.css?v={named['app.css']}").status_code == 200


def test_nginx_lets_a_monitoring_machine_ask_readiness():
    block = NGINX.split("location = /api/v1/health/ready", 1)[1].split("}", 1)[0]
    assert "proxy_pass http://biobank;" in block and "deny all;" in block


# --- systemd ------------------------------------------------------------------------------


def _unit(name: str) -> dict[str, list[str]]:
    """A unit file's settings (name → values), with systemd's escapes read."""
    settings: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _command(unit: dict[str, list[str]]) -> list[str]:
    (line,) = unit["ExecStart"]
    words = shlex.split(line.replace("%%", "%").replace("$$", "$"))
    if words[:2] == ["/bin/sh", "-c"]:
        words = shlex.split(words[2])
        assert words[0] == "exec"
        words = words[1:]
    return words


def _flask_arguments(unit: dict[str, list[str]]) -> list[str]:
    words = _command(unit)
    assert words[:3] == [f"{INSTALLED}/.venv/bin/flask", "--app", "wsgi"]
    return words[3:]


@pytest.mark.parametrize(
    ("unit", "arguments"),
    [
        ("biobank-notifications.service", ["notifications", "deliver"]),
        ("biobank-digest.service", ["custody", "verify", "--digest"]),
    ],
)
def test_the_timers_units_call_commands_that_exist(app, unit, arguments):
    settings = _unit(unit)
    called = _flask_arguments(settings)
    assert called[: len(arguments)] == arguments
    # --help after the unit's own options: an option the command lacks fails first.
    result = app.test_cli_runner().invoke(args=[*called, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert settings["WorkingDirectory"] == [INSTALLED]
    assert settings["ReadWritePaths"] == [f"{INSTALLED}/instance"]
    timer = _unit(unit.replace(".service", ".timer"))
    assert timer["OnCalendar"]


def test_the_web_unit_runs_gunicorn_with_its_settings(gunicorn_conf):
    settings = _unit("biobank.service")
    assert _command(settings) == [
        f"{INSTALLED}/.venv/bin/gunicorn",
        "-c",
        "gunicorn.conf.py",
        "wsgi:app",
    ]
    assert (ROOT / "gunicorn.conf.py").exists() and (ROOT / "wsgi.py").exists()
    assert settings["Restart"] == ["on-failure"]
    assert settings["ProtectSystem"] == ["strict"] and settings["NoNewPrivileges"] == ["yes"]
    assert settings["ReadWritePaths"] == [f"{INSTALLED}/instance"]
    assert settings["EnvironmentFile"] and settings["User"]
    # systemd waits for gunicorn's graceful stop before killing what is left.
    (stop,) = settings["TimeoutStopSec"]
    assert int(stop) > gunicorn_conf().graceful_timeout


def test_the_digest_unit_files_a_dated_digest(world, db, database_url, tmp_path):
    db.session.commit()  # the test's session holds no lock the command would wait for
    words = _flask_arguments(_unit("biobank-digest.service"))
    assert words[-1].startswith("/var/lib/biobank/digests/")
    (line,) = _unit("biobank-digest.service")["ExecStart"]
    script = shlex.split(line.replace("%%", "%").replace("$$", "$"))[2]
    script = script.replace(f"{INSTALLED}/.venv/bin/", f"{BIN}/")
    digests = tmp_path / "digests"
    digests.mkdir()
    script = script.replace("/var/lib/biobank/digests", str(digests))
    # The application of wsgi.py, with an instance folder of its own (the command keeps
    # its outcome there) instead of this checkout's.
    checkout, instance = tmp_path / "checkout", tmp_path / "instance"
    checkout.mkdir()
    (checkout / "wsgi.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from biobank import create_app\n"
        f"app = create_app()\napp.instance_path = {str(instance)!r}\n",
        encoding="utf-8",
    )
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-test-secret-test-secret",
    }
    ran = subprocess.run(
        ["/bin/sh", "-c", script],
        cwd=checkout,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    (filed,) = digests.glob("digest-*.json")
    assert re.fullmatch(r"digest-\d{4}-\d\d-\d\d\.json", filed.name)
    assert json.loads(filed.read_text())["root"] == custody.digest().root


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_reads_every_unit_without_a_complaint(tmp_path):
    # Pointed at this checkout, where the programs they start exist.
    for unit in UNITS.iterdir():
        text = unit.read_text(encoding="utf-8").replace(INSTALLED, str(ROOT))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    units = sorted(str(path) for path in tmp_path.iterdir())
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr


# --- the environment file -----------------------------------------------------------------


def test_every_setting_of_the_environment_file_is_read(gunicorn_conf):
    example = (OPS / "biobank.env.example").read_text(encoding="utf-8")
    names = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE)
    assert {"DATABASE_URL", "BIOBANK_ENV", "PROXY_HOPS"} <= set(names)
    readers = inspect.getsource(biobank_config.from_environment)
    readers += (ROOT / "gunicorn.conf.py").read_text(encoding="utf-8")
    unread = [name for name in names if f'"{name}"' not in readers]
    assert not unread, f"settings no one reads: {unread}"
