"""practice03 README 절: group, chord, 백엔드마다 다른 chord의 끝맺음, rpc:// 의 거절, 벤치마크."""

from __future__ import annotations

import json
import re

import pytest
import redis
from celery import Celery, chord, group

import global_config
from benchmarks import chord_latency
from course import wait_until
from playground.broker import queue_counts
from playground.lessons import run_call_tasks
from playground.workers import Worker, running
from practice03.tasks import BACKEND, LONG_SECONDS, SHORT_SECONDS, fetch, merge
from tests import CALL_TIMEOUT_SECONDS, WAIT_SECONDS

POSTGRES = {"PRACTICE03_BACKEND": "postgres"}
LESSON = "practice03"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)

assert BACKEND == "redis"  # 이 테스트 프로세스의 practice03 앱은 기본값(Redis)이다


def header(long_part=1):
    return [fetch.s(part, LONG_SECONDS if part == long_part else SHORT_SECONDS) for part in (1, 2, 3, 4)]


def test_group_results_come_in_call_order_not_completion_order(worker):
    pieces = group(header()).apply_async().get(timeout=WAIT_SECONDS)
    assert [p["part"] for p in pieces] == [1, 2, 3, 4]
    completion = [p["part"] for p in sorted(pieces, key=lambda p: p["finished_at"])]
    assert completion[-1] == 1 and completion != [1, 2, 3, 4]


def test_group_members_run_side_by_side(worker):
    pieces = group(fetch.s(part, 1) for part in (1, 2)).apply_async().get(timeout=WAIT_SECONDS)
    finished = sorted(p["finished_at"] for p in pieces)
    assert finished[1] - finished[0] < 0.5  # 풀 프로세스 둘이 동시에 돌렸다(차례로였다면 1초 차이)


def test_chord_callback_gets_header_results_in_order_after_the_slowest(worker):
    merged = chord(header(long_part=2))(merge.s()).get(timeout=WAIT_SECONDS)
    assert merged["parts"] == [1, 2, 3, 4]
    assert merged["started_at"] >= merged["last_header_finished_at"]


def test_redis_finishes_a_chord_without_chord_unlock_counting_results_in_a_sorted_set(worker):
    result = chord(header(long_part=1))(merge.s())
    group_id = result.parent.id
    client = redis.Redis.from_url(global_config.REDIS_URL)
    prefix = f"celery-taskset-meta-{group_id}"
    # 짧은 셋이 끝날 때까지. 긴 하나는 아직이다.
    wait_until(lambda: client.zcard(prefix + ".j") >= 3, "chord의 짧은 조각 셋이 저장됨", WAIT_SECONDS)
    keys = {key.decode().removeprefix(prefix): client.type(key).decode() for key in client.keys(prefix + "*")}
    # .j: 저장된 header 결과를 모으는 정렬 집합(이것의 크기로 센다), .d: 중복 방지, .s: chord 크기.
    # 예전 방식의 INCR 카운터(.t)는 없다.
    assert keys == {".j": "zset", ".d": "set", ".s": "string"}
    assert client.zcard(prefix + ".j") == 3
    merged = result.get(timeout=WAIT_SECONDS)
    assert merged["parts"] == [1, 2, 3, 4]
    worker.wait_for_log(rf"merge\[{result.id}\] succeeded", WAIT_SECONDS)
    assert "chord_unlock" not in worker.log


# README의 '늦어도 약 1초'는 chord_unlock 의 1초 간격에 작업 하나의 실행 시간을 더한 것이다. 병렬 테스트가
# 코어 둘을 다 쓰는 동안에는 그 실행 시간이 길어져 1.1초를 넘을 수 있다(1125.8 ms를 보았다): 혼자 잰다.
@pytest.mark.alone
def test_postgres_finishes_a_chord_with_chord_unlock_retrying_every_second():
    with running(Worker("practice03", env=POSTGRES, extra_args=["--purge"])) as (pg_worker,):
        run = run_call_tasks("practice03", env=POSTGRES, timeout=CALL_TIMEOUT_SECONDS)
        assert run.returncode == 0, run.output
        pg_worker.wait_for_log(r"Task celery\.chord_unlock\[\S+\] received", WAIT_SECONDS)
        # 확인할 때마다 풀 프로세스 하나(ForkPoolWorker)를 잠깐 차지한다
        pg_worker.wait_for_log(
            r"ForkPoolWorker-\d+\] Task celery\.chord_unlock\[\S+\] retry: Retry in 1\.0s", WAIT_SECONDS
        )
    assert "결과 백엔드: postgres" in run.output
    assert "queues]" in pg_worker.log and ".> practice03_postgres" in pg_worker.log
    delay_ms = float(re.search(r"콜백이 시작하기까지: ([\d.]+) ms", run.output).group(1))
    assert delay_ms <= 1100  # chord_unlock 은 1초마다 확인하므로 늦어도 약 1초


def test_rpc_backend_refuses_a_chord_before_sending_anything():
    rpc_app = Celery("practice03_rpc", broker=global_config.RABBITMQ_URL, backend="rpc://")
    queue = rpc_app.conf.task_default_queue
    before = queue_counts(queue)
    with pytest.raises(NotImplementedError, match='The "rpc" result backend does not support chords'):
        chord([rpc_app.signature(fetch.name, args=(1, 0))])(rpc_app.signature(merge.name))
    assert queue_counts(queue) == before  # 큐가 없었으면 여전히 없고, 있었으면 메시지 수가 그대로다


def test_the_chord_latency_benchmark_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / "chord.json"
    assert chord_latency.main(["-n", "2", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert set(rows) == {"redis", "postgres"}
    for row in rows.values():
        assert row["n"] == 2 and 0 <= row["p50"] <= row["p95"] <= row["max"]
    assert "postgres" in capsys.readouterr().out
