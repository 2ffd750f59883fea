"""The agent's configuration: a TOML file with secrets kept out of it, the environment over it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster_agent.config import ConfigError, load

ROOT = Path(__file__).resolve().parent.parent

TOML = """
[kabinet]
url = "http://kabinet:8000/"
token_file = "{token}"

[cluster]
name = "main"
time_zone = "Europe/Moscow"
rac = "/opt/1cv8/x86_64/8.3.24.1467/rac"
ras = "localhost:1545"
admin_user = "admin"
admin_password_file = "{password}"
poll_seconds = 2

[updates]
designer = "/opt/1cv8/x86_64/8.3.24.1467/1cv8"
server = "srv1c"
templates = "/var/1c/templates"
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "token").write_text("kca_from-file\n")
    (tmp_path / "admin").write_text("adm-pw\n")
    path = tmp_path / "agent.toml"
    path.write_text(TOML.format(token=tmp_path / "token", password=tmp_path / "admin"))
    return path


def test_a_file_names_where_its_secrets_are(files):
    config = load(files, environ={})
    assert (config.url, config.token, config.cluster, config.time_zone.key) == ("http://kabinet:8000", "kca_from-file", "main", "Europe/Moscow")
    assert (config.admin_user, config.admin_password, config.poll_seconds, config.server) == ("admin", "adm-pw", 2.0, "srv1c")
    assert "kca_from-file" not in repr(config) and "adm-pw" not in repr(config), "secrets stay out of a printed config"


def test_the_environment_wins_over_the_file(files):
    config = load(files, environ={"KABINET_AGENT_TOKEN": "kca_env", "KABINET_AGENT_TIME_ZONE": "Asia/Yekaterinburg",
                                  "KABINET_CLUSTER_ADMIN_PASSWORD": "env-pw"})
    assert (config.token, config.time_zone.key, config.admin_password) == ("kca_env", "Asia/Yekaterinburg", "env-pw")


def test_the_environment_alone_is_enough():
    config = load(None, environ={"KABINET_AGENT_URL": "http://k", "KABINET_AGENT_TOKEN": "t", "KABINET_AGENT_CLUSTER": "b",
                                 "KABINET_AGENT_TIME_ZONE": "UTC", "KABINET_AGENT_RAC": "rac"})
    assert (config.cluster, config.designer, config.encoding) == ("b", None, "auto")


@pytest.mark.parametrize(("text", "says"), [
    ('[kabinet]\ntoken = "kca_inline"\n', "does not belong in the settings file"),
    ('[cluster]\nadmin_password = "inline"\n', "does not belong in the settings file"),
    ('[kabinet]\nurl = "http://k"\n', "not set: [kabinet] token"),
    ('[clusters]\nname = "x"\n', "unknown section [clusters]"),
    ("not toml = = 1", "not TOML"),
])
def test_a_wrong_file_is_refused_with_what_to_fix(tmp_path, text, says):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load(path, environ={})
    assert says in str(refused.value)
    assert "kca_inline" not in str(refused.value) and "\"inline\"" not in str(refused.value)


def test_a_time_zone_that_is_none_is_refused(files):
    with pytest.raises(ConfigError, match="is not a time zone"):
        load(files, environ={"KABINET_AGENT_TIME_ZONE": "Moscow/Kremlin"})


def kabinet_agent(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cluster_agent", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"], **environ})


def test_kabinet_agent_says_what_is_missing_and_never_the_secrets_it_has(tmp_path):
    done = kabinet_agent(environ={"KABINET_AGENT_TOKEN": "kca_secret-token", "KABINET_CLUSTER_ADMIN_PASSWORD": "adm-secret"})
    assert done.returncode == 2
    assert "not set: [kabinet] url (KABINET_AGENT_URL)" in done.stderr and "[cluster] rac (KABINET_AGENT_RAC)" in done.stderr
    assert "kca_secret-token" not in done.stderr + done.stdout and "adm-secret" not in done.stderr + done.stdout


def test_the_simulated_cluster_runs_only_when_asked(tmp_path):
    done = kabinet_agent("--url", "http://127.0.0.1:9", "--simulate-step-seconds", "0.1", environ={"KABINET_AGENT_TOKEN": "t"})
    assert done.returncode == 2 and "need --simulate" in done.stderr
