"""rac's output read as rac prints it: samples published by public projects, in UTF-8 (Linux builds) and
in cp866 with CRLF (Windows builds); rac's failures as errors that never carry a credential.

The samples are copied from the files named beside each; none was checked against a live cluster here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import stat
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cluster_agent.rac import ClusterAdmin, Rac, RacError, classify, local_time, parse_blocks
from cluster_agent.sessions import parts, snapshot_of

MOSCOW = ZoneInfo("Europe/Moscow")

# alkoleft/Rac-Rust, artifacts/rac/v16/v16_20260226_051602_session_list_rac.out (rac 8.3, Linux):
# `rac session list` with a designer session and a thin client's. Not checked against a live cluster.
SESSION_LIST = """\
session                          : bc9e8fae-32f1-4e90-94cc-4312e65cc07d
session-id                       : 1
infobase                         : 717bdda7-2f60-4577-b262-f1fc8c0e472c
connection                       : e942f0e3-9956-4025-b4aa-49aae1431af8
process                          : 0399133a-6d5d-4fb0-9029-d240c8e07763
user-name                        : iadmin
host                             : alko-home
app-id                           : Designer
locale                           : ru_RU
started-at                       : 2026-02-26T04:12:32
last-active-at                   : 2026-02-26T05:15:55
hibernate                        : no
passive-session-hibernate-time   : 1200
hibernate-session-terminate-time : 86400
blocked-by-dbms                  : 0
blocked-by-ls                    : 0
bytes-all                        : 107270
db-proc-info                     : 
db-proc-took-at                  : 
current-service-name             : 
data-separation                  : ''
client-ip                        : 127.0.0.1

session                          : efa12b4d-7f83-408d-8a60-6ba38eda3ad6
session-id                       : 2
infobase                         : 717bdda7-2f60-4577-b262-f1fc8c0e472c
connection                       : 00000000-0000-0000-0000-000000000000
process                          : 00000000-0000-0000-0000-000000000000
user-name                        : iadmin
host                             : alko-home
app-id                           : 1CV8C
locale                           : ru
started-at                       : 2026-02-26T04:12:48
last-active-at                   : 2026-02-26T05:12:49
hibernate                        : no
passive-session-hibernate-time   : 1200
hibernate-session-terminate-time : 86400
blocked-by-dbms                  : 0
data-separation                  : ''
client-ip                        : 127.0.0.1

"""

# alkoleft/Rac-Rust, artifacts/rac/v11/help/cluster_list.out: `rac cluster list` (a quoted name with a
# space). Not checked against a live cluster.
CLUSTER_LIST = """\
cluster                       : 1619820a-d36f-4d8a-a716-1516b1dea077
host                          : alko-home
port                          : 1541
name                          : "Локальный кластер"
expiration-timeout            : 60
lifetime-limit                : 0
max-memory-size               : 0
max-memory-time-limit         : 0
security-level                : 0
session-fault-tolerance-level : 0
load-balancing-mode           : performance
errors-count-threshold        : 0
kill-problem-processes        : 1
kill-by-memory-with-dump      : 0

"""

# alkoleft/Rac-Rust, artifacts/rac/v11/help/infobase_summary_list.out (a quoted descr), then
# kulpin74/zabbix-1c, "ib list" (its first three blocks: an empty descr with nothing after the colon).
# Not checked against a live cluster.
INFOBASE_SUMMARY_LIST = """\
infobase : 717bdda7-2f60-4577-b262-f1fc8c0e472c
name     : yaxunit
descr    : "Description"

"""
INFOBASE_LIST_ZABBIX = """\
infobase : 37227554-01b6-4af2-a965-472e979fa1d5
name     : buh
descr    :

infobase : aed92f5c-62aa-4545-a6c1-b8d21b1e2094
name     : buh-tst
descr    :

infobase : f69af154-3566-4e8d-9735-13a465752bce
name     : zup
descr    :

"""


def windows(text: str) -> bytes:
    """As a Windows build prints it (kulpin74/zabbix-1c scripts/sess_list.py reads rac in cp866 and
    splits on CRLF there)."""
    return text.replace("\n", "\r\n").encode("cp866")


@pytest.mark.parametrize("raw", [SESSION_LIST, SESSION_LIST.encode("utf-8"), windows(SESSION_LIST)],
                         ids=["text", "utf-8", "cp866-crlf"])
def test_a_session_list_is_one_block_per_session(raw):
    designer, thin = parse_blocks(raw)
    assert designer["session"] == "bc9e8fae-32f1-4e90-94cc-4312e65cc07d" and designer["app-id"] == "Designer"
    assert thin["session"] == "efa12b4d-7f83-408d-8a60-6ba38eda3ad6" and thin["session-id"] == "2"
    assert (thin["user-name"], thin["host"], thin["app-id"], thin["started-at"]) == ("iadmin", "alko-home", "1CV8C", "2026-02-26T04:12:48")
    assert designer["db-proc-info"] == "" and designer["data-separation"] == "", "empty and '' values are empty"
    assert all(not key.endswith(" ") and "\r" not in value for block in (designer, thin) for key, value in block.items())


@pytest.mark.parametrize("encode", [lambda t: t.encode("utf-8"), windows], ids=["utf-8", "cp866-crlf"])
def test_a_quoted_cyrillic_name_is_read_in_either_encoding(encode):
    [cluster] = parse_blocks(encode(CLUSTER_LIST))
    assert cluster == {**cluster, "cluster": "1619820a-d36f-4d8a-a716-1516b1dea077", "name": "Локальный кластер", "port": "1541"}
    assert len(cluster) == 14


@pytest.mark.parametrize("encode", [lambda t: t.encode("utf-8"), windows], ids=["utf-8", "cp866-crlf"])
def test_infobase_summaries_with_quoted_and_empty_descriptions(encode):
    [yaxunit] = parse_blocks(encode(INFOBASE_SUMMARY_LIST))
    assert yaxunit == {"infobase": "717bdda7-2f60-4577-b262-f1fc8c0e472c", "name": "yaxunit", "descr": "Description"}
    listed = parse_blocks(encode(INFOBASE_LIST_ZABBIX))
    assert [(b["name"], b["descr"]) for b in listed] == [("buh", ""), ("buh-tst", ""), ("zup", "")]


def test_an_empty_answer_is_no_block_and_a_bom_or_stray_blank_lines_change_nothing():
    assert parse_blocks(b"") == [] and parse_blocks("\r\n\r\n") == []
    assert parse_blocks("\ufeff\n\n" + INFOBASE_SUMMARY_LIST + "\n\n\n") == parse_blocks(INFOBASE_SUMMARY_LIST)


def test_started_at_is_the_cluster_servers_local_time():
    started = local_time("2026-02-26T04:12:48", MOSCOW)
    assert started == dt.datetime(2026, 2, 26, 1, 12, 48, tzinfo=dt.timezone.utc)
    assert started.isoformat() == "2026-02-26T04:12:48+03:00"
    assert local_time("2026-07-01T12:00:00", ZoneInfo("Europe/Berlin")).utcoffset() == dt.timedelta(hours=2), "summer time"
    assert local_time("", MOSCOW) is None and local_time("0001-01-01T00:00:00", MOSCOW) is None


def test_the_snapshot_holds_every_infobase_and_its_sessions_by_rac_session_uuid():
    infobases = {b["infobase"]: b["name"] for b in parse_blocks(INFOBASE_SUMMARY_LIST)}
    taken = dt.datetime(2026, 2, 26, 2, 20, tzinfo=dt.timezone.utc)
    snapshot = snapshot_of("main", {**infobases, "other-uuid": "empty_base"}, parse_blocks(windows(SESSION_LIST)), MOSCOW, taken)
    assert snapshot["cluster"] == "main" and snapshot["takenAt"] == "2026-02-26T02:20:00+00:00"
    yaxunit, empty = snapshot["infobases"]
    assert empty == {"name": "empty_base", "sessions": []}, "a listed infobase with no session: its sessions ended"
    assert yaxunit["name"] == "yaxunit"
    assert yaxunit["sessions"][1] == {
        "clusterSessionId": "efa12b4d-7f83-408d-8a60-6ba38eda3ad6", "userName": "iadmin", "host": "alko-home",
        "appId": "1CV8C", "startedAt": "2026-02-26T04:12:48+03:00",
    }
    assert yaxunit["sessions"][0]["appId"] == "Designer", "kabinet decides which app ids are users' sessions"


@pytest.mark.parametrize(("message", "kind"), [
    ("Сеанс с указанным идентификатором не найден", "gone"),  # quoted as rac.exe's stderr by a public test
    ("Ошибка операции администрирования Недостаточно прав пользователя", "refused"),
    ("Ошибка операции администрирования Администратор кластера не аутентифицирован", "refused"),
    ("Ошибка соединения с сервером администрирования localhost:1545: Connection refused", "unreachable"),
])
def test_racs_reasons_are_told_apart(message, kind):
    assert classify(message) == kind


# ------------------------------------------------------------------ running rac: errors and credentials


def fake_rac(tmp_path: Path, stderr: bytes, status: int = 255) -> str:
    """An executable that fails as rac does: `stderr` on stderr, a non-zero exit."""
    script = tmp_path / "rac"
    (tmp_path / "stderr").write_bytes(stderr)
    script.write_text(f"#!/bin/sh\ncat '{tmp_path / 'stderr'}' >&2\nexit {status}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize("encoding", ["utf-8", "cp866"])
async def test_a_failure_is_a_rac_error_with_racs_words_and_no_credential(tmp_path, caplog, encoding):
    caplog.set_level(logging.DEBUG)
    password, infobase_password = "Cl-Adm1n-pw", "IB-pw-секрет"
    said = f"Ошибка операции администрирования\r\nНеверный пароль {password} / {infobase_password}\r\n"
    rac = Rac(fake_rac(tmp_path, said.encode(encoding)), "localhost:1545", ClusterAdmin("admin", password))
    with pytest.raises(RacError) as caught:
        await rac.deny_sessions("c-uuid", "ib-uuid", "Администратор", infobase_password, deny=True,
                               message="Обновление", permission_code="code-123")
    assert caught.value.kind == "refused"
    assert caught.value.message.startswith("Ошибка операции администрирования Неверный пароль")
    for secret in (password, infobase_password):
        assert secret not in str(caught.value) and secret not in caplog.text


async def test_a_missing_rac_is_unreachable_not_a_refusal(tmp_path):
    with pytest.raises(RacError) as caught:
        await Rac(str(tmp_path / "no-rac-here")).clusters()
    assert caught.value.unreachable


async def test_the_stand_in_rac_answers_in_cp866_with_crlf_and_the_agent_reads_it(tmp_path, monkeypatch):
    from tests.standins.cluster import RAC, StandinCluster

    cluster = StandinCluster(tmp_path, admin=("admin", "pw"), encoding="cp866")
    cluster.add_infobase("buh_romashka")
    session = cluster.start_session("buh_romashka", "Иванов И.И.", host="PC-BUH-01")
    for key, value in cluster.environment().items():
        monkeypatch.setenv(key, value)
    rac = Rac(str(RAC), "localhost:1545", ClusterAdmin("admin", "pw"))
    [listed] = await rac.clusters()
    assert listed["name"] == "Локальный кластер"
    [block] = await rac.sessions(cluster.uuid)
    assert (block["session"], block["user-name"], block["host"]) == (session, "Иванов И.И.", "PC-BUH-01")
    await rac.terminate(cluster.uuid, session)
    with pytest.raises(RacError) as gone:
        await rac.terminate(cluster.uuid, session)
    assert gone.value.gone and "не найден" in gone.value.message
    with pytest.raises(RacError) as refused:
        await Rac(str(RAC), "localhost:1545", ClusterAdmin("admin", "wrong")).sessions(cluster.uuid)
    assert refused.value.kind == "refused" and "wrong" not in str(refused.value)


def test_a_large_cluster_is_reported_in_parts_each_infobase_whole():
    snapshot = {"cluster": "main", "takenAt": "2026-12-06T21:00:05+00:00", "infobases": [
        {"name": f"ib{i}", "sessions": [{"clusterSessionId": f"{i}-{j}"} for j in range(i % 4)]} for i in range(10)]}
    cut = parts(snapshot, max_infobases=3, max_sessions=4)
    assert all(p["takenAt"] == snapshot["takenAt"] and p["cluster"] == "main" for p in cut)
    assert [i for p in cut for i in p["infobases"]] == snapshot["infobases"], "every infobase once, in order"
    assert all(len(p["infobases"]) <= 3 and sum(len(i["sessions"]) for i in p["infobases"]) <= 4 for p in cut)
    assert parts({**snapshot, "infobases": []}) == [{**snapshot, "infobases": []}], "an empty cluster is still reported"


async def test_an_answer_beyond_the_bound_is_refused_unread(tmp_path, monkeypatch):
    import cluster_agent.rac as rac_module

    monkeypatch.setattr(rac_module, "MAX_OUTPUT_BYTES", 100_000)
    script = tmp_path / "rac"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -c \"import sys; sys.stdout.write('session : 1b9a\\\\n' * 10**6)\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(RacError, match="ответ больше"):
        await asyncio.wait_for(Rac(str(script)).clusters(), timeout=60)


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "a\\b", ""])
def test_a_release_name_never_leads_out_of_the_templates_folder(tmp_path, name):
    from cluster_agent.designer import DesignerError, template_for

    with pytest.raises(DesignerError):
        template_for(tmp_path, name, "3.0.1.1")
    with pytest.raises(DesignerError):
        template_for(tmp_path, "Бухгалтерия", name)
