"""벤치마크가 계속 돌아가는지 아주 작은 크기로 확인한다(속도는 여기서 재지 않는다)."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from benchmarks import summarize, worker_startup
from playground.lessons import worker_on_empty_queue


def test_summarize_reports_n_p50_p95_max():
    assert summarize([0.3, 0.1, 0.2, 0.4]) == {"n": 4, "p50": 0.25, "p95": 0.4, "max": 0.4}
    assert summarize([0.5]) == {"n": 1, "p50": 0.5, "p95": 0.5, "max": 0.5}
    assert summarize([i / 100 for i in range(1, 101)], tail=99) == {"n": 100, "p50": 0.505, "p99": 0.99, "max": 1.0}


@pytest.mark.early
def test_worker_startup_benchmark_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / "startup.json"
    assert worker_startup.main(["-n", "1", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert set(rows) == set(worker_startup.VARIANTS)
    for row in rows.values():
        assert row["n"] == 1
        assert 0 < row["p50"] == row["p95"] == row["max"]
    out = capsys.readouterr().out
    assert "p50 ms" in out and "README command" in out


def test_mingle_waits_a_second_for_neighbours_a_lone_worker_does_not_have():
    # README: --without-mingle 이면 약 1초 빨리 뜬다. mingle은 이웃의 답을 1초 기다린다(혼자면 끝까지 기다린다).
    with worker_on_empty_queue("practice00", fast_start=False) as worker:
        log = worker.log
    stamp = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
    times = [
        datetime.strptime(re.search(stamp + text, log).group(1), "%Y-%m-%d %H:%M:%S,%f")
        for text in ("mingle: searching for neighbors", "mingle: all alone")
    ]
    assert (times[1] - times[0]).total_seconds() >= 0.9


def test_queue_isolation_benchmark_runs_and_writes_json(tmp_path, capsys):
    from benchmarks import queue_isolation

    path = tmp_path / "isolation.json"
    assert queue_isolation.main(["-n", "2", "--rounds", "1", "--seconds", "0.1", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert set(rows) == {"separate", "shared"}
    assert all(row["n"] == 1 for row in rows.values())
    assert rows["shared"]["p50"] > rows["separate"]["p50"]  # 같은 큐의 경보는 밀린 작업 뒤에 줄을 선다
    assert "separate" in capsys.readouterr().out


def test_course_speed_counts_deliberate_waits_for_every_lesson():
    from benchmarks import course_speed
    from playground.lessons import available_lessons

    waits = course_speed.deliberate_waits()
    assert set(waits) == set(available_lessons())
    assert all(seconds >= 0 for seconds in waits.values())
    assert waits["practice04"] == 5  # auto_retrying 의 간격 1 + 2 + 2초 (README)


@pytest.mark.early
def test_course_speed_benchmark_runs_and_writes_json(tmp_path, capsys, monkeypatch):
    from benchmarks import course_speed

    monkeypatch.setattr(course_speed, "available_lessons", lambda: ["practice02", "practice06"])
    path = tmp_path / "speed.json"
    assert course_speed.main(["--jobs", "1", "2", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert set(result["runs"]) == {"1", "2"}
    for run in result["runs"].values():
        assert run["ok"] is True
        assert set(run["lessons"]) == {"practice02", "practice06"}
        assert run["wall"] > 0
    assert "wall/waits" in capsys.readouterr().out


def test_failure_messages_benchmark_runs_and_writes_json(tmp_path, capsys):
    from benchmarks import failure_messages

    path = tmp_path / "failures.json"
    args = ["--lessons", "practice02", "--modes", "broker-down", "backend-down", "--json", str(path)]
    assert failure_messages.main(args) == 0
    rows = json.loads(path.read_text())
    for mode in ("broker-down", "backend-down"):
        row = rows["practice02"][mode]
        assert row["code"] != 0
        assert 0 < row["message"] <= row["exit"]
    assert "first line of advice" in capsys.readouterr().out


@pytest.mark.early
def test_crash_safety_benchmark_runs_and_writes_json(tmp_path, capsys):
    # 워커째 kill -9 한 번: 안전한 설정(acks_late + reject_on_worker_lost, 멱등한 효과)은 잃지도, 두 번 남기지도 않는다.
    from benchmarks import crash_safety

    path = tmp_path / "crash.json"
    assert crash_safety.main(["-n", "40", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert [row["setting"] for row in rows] == list(crash_safety.SETTINGS)
    for row in rows:
        assert set(row) == {"setting", "n", "effects", "executions", "lost", "tasks_per_s"}
        assert row["n"] == 40 and row["effects"] + row["lost"] == 40
        assert row["executions"] >= row["effects"]  # 멱등한 표: 두 번 돈 작업도 효과는 한 행
        assert row["tasks_per_s"] > 0
    safe = rows[-1]
    assert (safe["effects"], safe["lost"]) == (40, 0)
    assert "worker killed" in capsys.readouterr().out


def test_rate_limit_benchmark_runs_and_writes_json(tmp_path, capsys):
    from benchmarks import rate_limit

    path = tmp_path / "rate.json"
    assert rate_limit.main(["--rates", "5/s", "--workers", "1", "2", "--seconds", "1", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert [(row["rate"], row["workers"], row["requested_per_s"]) for row in rows] == [
        ("5/s", 1, 5.0),
        ("5/s", 2, 10.0),
    ]
    for row in rows:
        assert row["achieved_per_s"] > 0 and 0 < row["done"] <= row["sent"]
    assert "requested/s" in capsys.readouterr().out
    assert rate_limit.per_second("60/m") == 1.0


def test_pools_benchmark_runs_and_writes_json(tmp_path, capsys):
    from benchmarks import pools

    path = tmp_path / "pools.json"
    assert pools.main(["-n", "2", "--work", "1000", "--wait", "0.01", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert [row["pool"] for row in rows] == ["prefork", "threads", "solo"]
    assert [row["concurrency"] for row in rows] == [4, 4, 1]
    assert all(row["cpu_s"] > 0 and row["io_s"] > 0 for row in rows)
    assert "cpu s" in capsys.readouterr().out


@pytest.mark.early
def test_deploy_benchmark_runs_and_writes_json(tmp_path, capsys):
    # 배포 두 번(warm, soft): 완료 후 ack 작업은 어느 쪽에서도 잃지 않고, 시작 시 ack 작업은 끊긴 것을 잃는다.
    from benchmarks import deploy

    path = tmp_path / "deploy.json"
    # 작업(4.6초)이 유예 시간(2.8초)보다 길다. 풀이 찬 것을 알아채기까지 늦어져도 1.8초까지는 SIGKILL 때 작업이
    # 아직 실행 중이다. soft shutdown(0.3초)은 멈추는 데 드는 1.6초쯤을 더해도 유예 시간 안이다.
    soft_seconds, grace_seconds = 0.3, 2.8
    args = ["-n", "2", "--concurrency", "2", "--seconds", "4.6", "--grace", str(grace_seconds),
            "--soft", str(soft_seconds), "--json", str(path)]  # fmt: skip
    assert deploy.main(args) == 0
    rows = json.loads(path.read_text())
    soft = "soft (REMAP_SIGTERM=SIGQUIT)"
    assert [(row["shutdown"], row["ack"]) for row in rows] == [
        ("warm", "early ack"),
        ("warm", "acks_late"),
        (soft, "early ack"),
        (soft, "acks_late"),
    ]
    columns = {"shutdown", "ack", "n", "finished", "lost", "ran_twice", "effects", "stopped_by", "stop_seconds"}
    for row in rows:
        assert set(row) == columns
        assert row["n"] == 2 and row["finished"] + row["lost"] == 2
        assert row["finished"] <= row["effects"] <= 2
        # 신호가 온 순간 풀 프로세스 둘은 작업 하나씩(시작 시 ack 하나, 완료 후 ack 하나)을 실행하고 있었다.
        # 시작 시 ack 작업이 ack되어 생긴 자리에는 다음 메시지를 받아 두었다. 받아 두기만 한 메시지는 ack 전이라
        # 돌아왔다. 그래서 잃은 것은 실행 중이던 시작 시 ack 작업 하나뿐이다.
        if row["ack"] == "acks_late":
            # effects는 실행 기록의 '효과' 줄 수다. 다시 실행된 작업이 효과를 또 남겼다면 3이 된다.
            assert (row["lost"], row["ran_twice"], row["effects"]) == (0, 1, 2)  # 효과는 멱등하다
        else:
            assert (row["lost"], row["ran_twice"]) == (1, 0)
    assert rows[0]["stopped_by"] == "SIGKILL"  # 유예 시간보다 긴 작업을 warm shutdown이 기다리다가
    assert rows[0]["stop_seconds"] >= grace_seconds
    assert rows[2]["stopped_by"] == "itself"  # soft shutdown은 유예 시간 안에 스스로 멈췄다
    assert soft_seconds <= rows[2]["stop_seconds"] < grace_seconds
    assert f"SIGKILL after a {grace_seconds:g} s grace period" in capsys.readouterr().out


def test_web_latency_benchmark_runs_and_writes_json(tmp_path, capsys):
    # practice16: async def 엔드포인트 안의 delay() 가 /health 를 막는지 재는 벤치마크. 빠르기는 여기서 재지 않는다.
    from benchmarks import web_latency

    path = tmp_path / "web.json"
    assert web_latency.main(["-n", "2", "--concurrency", "1", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert set(rows) == {*web_latency.VARIANTS, "asyncio.run() per call"}
    assert rows["blocking"]["n"] == rows["fixed"]["n"] == 2
    assert all(set(row) == {"n", "p50", "p99", "max"} for row in rows.values())  # p50과 p99를 나란히
    assert "GET /health while 1 threads keep POSTing" in capsys.readouterr().out
