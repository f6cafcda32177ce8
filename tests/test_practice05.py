"""practice05 README 절: 큐 선언과 바인딩, 라우팅의 우선순위, 두 워커, 큐를 나누는 이유, 아무도 보지 않는 큐."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
import warnings
from contextlib import ExitStack

import pytest
from celery import Celery
from celery.exceptions import CDeprecationWarning, QueueNotFound
from celery.exceptions import TimeoutError as CeleryTimeoutError
from kombu import Exchange, Queue

import global_config
from course import wait_until
from playground import PROJECT_ROOT, broker
from playground.broker import delete_queue, queue_counts
from playground.workers import Worker, running
from practice05.tasks import BACKLOG, SLOW_SECONDS, app, build_report, cleanup, send_alert, worker_kind
from tests import WAIT_SECONDS

MANAGEMENT_STATS_SECONDS = 15
LESSON = "practice05"
# 이 모듈의 테스트들은 NEEDS의 두 워커(conftest.py 의 lesson_processes)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = [pytest.mark.xdist_group(LESSON), pytest.mark.early]  # 1분쯤 걸리는 묶음
# 앱이 정하지 않았을 때의 worker_prefetch_multiplier (README: 기본 4).
DEFAULT_PREFETCH_MULTIPLIER = Celery("defaults", set_as_current=False).conf.worker_prefetch_multiplier
# 오래 걸리는 작업 하나의 길이. 두 번째 워커가 뜨는 동안 첫 워커가 아직 바쁘도록 느린 보고서보다 길게 둔다.
HELD_TASK_SECONDS = 2 * SLOW_SECONDS
DEPRECATION_MESSAGE = (
    "The 'queue' task attribute is deprecated and scheduled for removal in version 6.0. "
    "Use the task_routes setting instead."
)


@pytest.fixture(scope="module")
def workers(lesson_processes):
    """NEEDS의 두 워커(conftest.py 의 lesson_processes)를 소비하는 큐 이름으로."""
    high, low = lesson_processes
    return {"high": high, "low": low}


@pytest.mark.parametrize(
    ("call", "queue"),
    [
        (lambda: send_alert.delay("x"), "high"),  # task_routes
        (lambda: build_report.delay(), "low"),  # task_routes
        (lambda: build_report.apply_async(queue="high"), "high"),  # 부를 때 바꿈
        (lambda: cleanup.delay(), "low"),  # 경로 없음 → task_default_queue
    ],
    ids=["routed-high", "routed-low", "call-time-override", "default-queue"],
)
def test_each_task_runs_on_the_worker_of_its_queue(workers, call, queue):
    place = call().get(timeout=WAIT_SECONDS)
    # Celery는 direct 큐로 보낼 때 기본 exchange("")에 큐 이름을 routing key로 써서 보낸다
    assert (place["exchange"], place["routing_key"]) == ("", queue)
    assert worker_kind(place) == f"worker-{queue}"
    assert place["worker"].startswith(workers[queue].name + "@")


def test_precedence_call_time_over_task_option_over_task_routes_over_default():
    """메시지가 실제로 어느 큐에 쌓이는지로 본다(이 큐들을 소비하는 워커는 없다)."""
    tag = uuid.uuid4().hex[:8]
    names = {level: f"prec_{tag}_{level}" for level in ("call", "task", "routes", "default")}
    probe = Celery(f"precedence_{tag}", broker=global_config.RABBITMQ_URL)
    probe.conf.update(task_default_queue=names["default"], task_routes={"*.routed*": {"queue": names["routes"]}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CDeprecationWarning)  # 데코레이터의 queue= 는 5.7에서 deprecated

        @probe.task(name=f"p.routed_with_option_{tag}", queue=names["task"], shared=False)
        def routed_with_option():
            pass

        probe.finalize()

    @probe.task(name=f"p.routed_{tag}", shared=False)
    def routed():
        pass

    @probe.task(name=f"p.plain_{tag}", shared=False)
    def plain():
        pass

    with ExitStack() as cleanup_queues:
        for name in names.values():
            cleanup_queues.callback(delete_queue, name)
        routed_with_option.apply_async(queue=names["call"])
        routed_with_option.apply_async()
        routed.apply_async()
        plain.apply_async()
        assert {level: queue_counts(name)[0] for level, name in names.items()} == {
            "call": 1,  # apply_async(queue=) 가 이긴다
            "task": 1,  # 그다음 작업의 queue 옵션(task_routes 보다 우선)
            "routes": 1,  # 그다음 task_routes
            "default": 1,  # 아무것도 없으면 task_default_queue
        }


def test_the_lessons_queues_each_have_their_own_binding(workers):
    # rabbitmqctl list_bindings source_name destination_name routing_key 와 같은 세 열(관리 API로 묻는다)
    bindings = broker.bindings()
    assert ("high", "high", "high") in bindings
    assert ("low", "low", "low") in bindings
    assert not [b for b in bindings if b[0] == "low" and b[1] == "high"]  # low exchange는 high 큐로 가지 않는다
    # exchange 자리가 빈 줄: 기본 exchange가 큐마다 하나씩, 그 큐의 이름을 키로 묶는다
    assert ("", "high", "high") in bindings
    assert ("", "low", "low") in bindings
    for queue in {b[1] for b in bindings}:
        assert [b for b in bindings if b[0] == "" and b[1] == queue] == [("", queue, queue)]


def test_a_queue_declared_without_an_exchange_shares_the_default_queues_exchange():
    tag = uuid.uuid4().hex[:8]
    high, low = f"bind_{tag}_high", f"bind_{tag}_low"
    probe = Celery(f"binding_{tag}", broker=global_config.RABBITMQ_URL)
    probe.conf.update(task_queues=(Queue(high), Queue(low)), task_default_queue=low)
    with probe.connection_for_write() as conn:
        channel = conn.default_channel
        try:
            for queue in probe.amqp.queues.values():
                queue(channel).declare()
            named = {b for b in broker.bindings() if b[0] and tag in b[1]}  # 기본 exchange("") 의 바인딩은 뺀다
            assert named == {(low, high, low), (low, low, low)}  # high 큐도 exchange low에 키 low로 묶였다
            # 그 exchange로 보낸 메시지 하나가 두 큐에 모두 들어간다
            producer = conn.Producer(channel=channel, serializer="json")
            producer.publish({"hello": "both"}, exchange=Exchange(low, type="direct"), routing_key=low)
            assert (queue_counts(high)[0], queue_counts(low)[0]) == (1, 1)
        finally:
            for name in (high, low):
                channel.queue_delete(queue=name)
            channel.exchange_delete(exchange=low)


def test_one_message_sent_through_the_shared_exchange_is_processed_twice():
    # 위의 잘못 선언한 두 큐를 워커 하나가 소비한다. exchange low로 키 low를 달아 보낸 작업 하나가 두 번 실행된다.
    tag = uuid.uuid4().hex[:8]
    high, low = f"twice_{tag}_high", f"twice_{tag}_low"
    probe = Celery(f"twice_{tag}", broker=global_config.RABBITMQ_URL)
    probe.conf.update(task_queues=(Queue(high), Queue(low)), task_default_queue=low)
    try:
        with probe.connection_for_write() as conn:
            for queue in probe.amqp.queues.values():
                queue(conn.default_channel).declare()
        with running(Worker("practice05", queues=(high, low), concurrency=None)) as (worker,):
            task_id = probe.send_task("practice05.tasks.cleanup", exchange=low, routing_key=low).id
            worker.wait_for_log(rf"(?s)cleanup\[{task_id}\] succeeded.*cleanup\[{task_id}\] succeeded", WAIT_SECONDS)
        assert worker.log.count(f"practice05.tasks.cleanup[{task_id}] received") == 2
        assert worker.log.count(f"practice05.tasks.cleanup[{task_id}] succeeded") == 2
    finally:
        with probe.connection_for_write() as conn:
            for name in (high, low):
                conn.default_channel.queue_delete(queue=name)
                conn.default_channel.exchange_delete(exchange=name)  # 워커도 없는 큐마다 같은 이름의 exchange를 만든다


def test_each_worker_consumes_only_the_queue_its_queues_option_names(workers):
    for queue, worker in workers.items():
        replies = app.control.inspect(destination=[worker.node], timeout=1.0).active_queues()
        assert [q["name"] for q in replies[worker.node]] == [queue]


def test_separate_queues_keep_an_urgent_task_ahead_of_a_slow_backlog(workers):
    backlog = [build_report.delay(SLOW_SECONDS) for _ in range(BACKLOG)]
    separate = send_alert.delay("high")
    shared = send_alert.apply_async(("low",), queue="low")
    reports = [r.get(timeout=WAIT_SECONDS)["finished_at"] for r in backlog]
    assert separate.get(timeout=WAIT_SECONDS)["finished_at"] < min(reports)
    assert shared.get(timeout=WAIT_SECONDS)["finished_at"] > max(reports)


def test_prefetch_multiplier_1_leaves_the_backlog_on_the_broker(workers):
    backlog = [build_report.delay(SLOW_SECONDS) for _ in range(BACKLOG)]
    low = workers["low"]
    low.wait_for_log(rf"build_report\[{backlog[0].id}\] received", WAIT_SECONDS)
    inspect = app.control.inspect(destination=[low.node], timeout=1.0)
    reserved = inspect.reserved()[low.node]
    waiting_on_broker = queue_counts("low")[0]
    assert len(reserved) <= 1  # 실행 중인 하나 말고는 많아야 하나만 미리 가져온다
    assert waiting_on_broker >= BACKLOG - 2  # 나머지는 다른 워커가 가져갈 수 있게 브로커에 남아 있다
    for r in backlog:
        r.get(timeout=WAIT_SECONDS)


def test_a_task_on_a_queue_nobody_consumes_waits_there_forever(workers):
    queue = f"practice05_nobody_{uuid.uuid4().hex[:6]}"
    try:
        result = cleanup.apply_async(queue=queue)
        with pytest.raises(CeleryTimeoutError):
            result.get(timeout=1)
        assert result.state == "PENDING"
        assert queue_counts(queue) == (1, 0)  # 메시지 하나, 소비자 없음
        # rabbitmqctl list_queues name messages consumers가 보여 줄 세 열을, 설정된 브로커의 관리 API로 본다.
        # 관리 API의 숫자는 몇 초마다 모인다(방금 뜬 워커의 소비자도 늦게 보인다). 그 값이 보일 때까지 다시 묻는다.
        rows = _management_rows(
            lambda rows: (
                rows.get(queue, {}).get("messages") == 1
                and "consumers" in rows.get(queue, {})
                and all(rows.get(name, {}).get("consumers") == 1 for name in ("high", "low"))
            )
        )
        assert (rows[queue]["messages"], rows[queue]["consumers"]) == (1, 0)  # 범인: 메시지는 있는데 소비자가 0
        assert (rows["high"]["consumers"], rows["low"]["consumers"]) == (1, 1)  # 워커마다 자기 큐 하나
        # 영원히: 큐에도 메시지에도 만료가 없다. 그 메시지를 지울 것은 소비자뿐이다.
        vhost = broker.quoted(broker.vhost())
        path = f"queues/{vhost}/{broker.quoted(queue)}"
        assert not {"x-message-ttl", "x-expires"} & set(broker.management("GET", path)["arguments"])
        for kind in ("policies", "operator-policies"):  # 큐 이름에 맞는 정책이 TTL을 걸 수도 있다
            for policy in broker.management("GET", f"{kind}/{vhost}"):
                if re.search(policy["pattern"], queue):
                    assert not {"message-ttl", "expires"} & set(policy["definition"]), policy
        (peeked,) = broker.management(
            "POST", f"{path}/get", {"count": 1, "ackmode": "reject_requeue_true", "encoding": "auto"}
        )
        assert "expiration" not in peeked["properties"]
        assert queue_counts(queue) == (1, 0)  # 들여다본 메시지는 큐로 돌아갔다
        active = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "practice05.tasks", "inspect", "active_queues"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
        ).stdout  # fmt: skip
        assert "'name': 'high'" in active and "'name': 'low'" in active
        assert queue not in active
    finally:
        app.backend.remove_pending_result(result)  # 기다리다 만 결과의 Redis 구독을 지금 푼다
        delete_queue(queue)


def test_without_task_create_missing_queues_an_unknown_queue_is_refused():
    probe = Celery("missing", broker=global_config.RABBITMQ_URL)
    probe.conf.task_create_missing_queues = False

    @probe.task(shared=False)
    def anything():
        pass

    with pytest.raises(QueueNotFound, match="missing from task_queues"):
        anything.apply_async(queue=f"practice05_missing_{uuid.uuid4().hex[:6]}")


def test_the_queue_decorator_option_is_deprecated_and_the_lesson_does_not_use_it():
    probe = Celery("decorated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        @probe.task(queue="high", shared=False)
        def decorated():
            pass

        probe.finalize()
    assert any(
        issubclass(w.category, CDeprecationWarning) and "'queue' task attribute" in str(w.message) for w in caught
    )
    # README가 옮겨 적은 경고 문구 그대로(줄바꿈만 빼고)
    said = [" ".join(str(w.message).split()) for w in caught if issubclass(w.category, CDeprecationWarning)]
    assert DEPRECATION_MESSAGE in said
    for name in ("README.md", "README.en.md"):
        assert DEPRECATION_MESSAGE in " ".join((PROJECT_ROOT / "practice05" / name).read_text().split())
    check = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import practice05.tasks as t; t.app.finalize()"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


@pytest.fixture(scope="module")
def default_prefetch_worker():
    """앱의 설정 대신 기본 prefetch(4)와 풀 프로세스 둘로 띄운 practice05 워커 하나, 자기 큐 하나."""
    queue = f"practice05_prefetch_{uuid.uuid4().hex[:8]}"
    worker = Worker(
        "practice05",
        queues=(queue,),
        concurrency=2,
        extra_args=[f"--prefetch-multiplier={DEFAULT_PREFETCH_MULTIPLIER}"],
    )
    try:
        with running(worker):
            yield worker, queue
    finally:
        delete_queue(queue)


def test_the_prefetch_is_the_multiplier_for_each_pool_process(default_prefetch_worker):
    worker, queue = default_prefetch_worker
    stats = app.control.inspect(destination=[worker.node], timeout=1.0).stats()[worker.node]
    assert stats["pool"]["max-concurrency"] == 2
    assert stats["prefetch_count"] == 2 * DEFAULT_PREFETCH_MULTIPLIER == 8
    if broker.server_major() >= 4:  # RabbitMQ 4에서는 소비자마다 prefetch가 걸린다(그 값을 브로커에게 묻는다)
        ours = wait_until(
            lambda: _consumers(lambda c: c["queue"]["name"] == queue), "관리 API의 소비자", MANAGEMENT_STATS_SECONDS
        )
        assert [c["prefetch_count"] for c in ours] == [8]


def test_the_prefork_pool_hands_a_task_only_to_an_idle_process(default_prefetch_worker):
    # -O 를 주지 않은 워커(기본 fair): 한 프로세스가 긴 작업을 하는 동안 짧은 작업은 모두 다른 프로세스가 한다.
    # 바쁜 프로세스에도 일을 넘겼다면 그 짧은 작업은 긴 작업이 끝난 뒤에야 끝났을 것이다.
    worker, queue = default_prefetch_worker
    assert "-O" not in " ".join(worker.argv) and "--optimization" not in " ".join(worker.argv)
    long = build_report.apply_async((HELD_TASK_SECONDS,), queue=queue)
    worker.wait_for_log(rf"build_report\[{long.id}\] received", WAIT_SECONDS)
    short = [build_report.apply_async((0,), queue=queue) for _ in range(3)]
    short_done = [r.get(timeout=WAIT_SECONDS)["finished_at"] for r in short]
    assert max(short_done) < long.get(timeout=WAIT_SECONDS)["finished_at"]


@pytest.mark.parametrize(
    "multiplier", [DEFAULT_PREFETCH_MULTIPLIER, app.conf.worker_prefetch_multiplier], ids=["default-4", "lesson-1"]
)
def test_a_worker_that_starts_later_gets_only_what_the_busy_one_did_not_prefetch(multiplier):
    # 풀 프로세스 하나인 첫 워커에 긴 작업 다섯(실행 중 하나 + 기본 prefetch 4)을 보내고, 그 뒤에 두 번째 워커를 띄운다.
    tag = uuid.uuid4().hex[:6]
    queue = f"practice05_later_{tag}"
    options = {"queues": (queue,), "concurrency": None, "extra_args": [f"--prefetch-multiplier={multiplier}"]}
    first, second = (
        Worker("practice05", name=f"first-{tag}", **options),
        Worker("practice05", name=f"second-{tag}", **options),
    )
    count = 1 + DEFAULT_PREFETCH_MULTIPLIER
    try:
        with running(first):
            reports = [build_report.apply_async((HELD_TASK_SECONDS,), queue=queue) for _ in range(count)]
            held = min(count, 1 + multiplier)  # 실행 중인 것(시작할 때 ack 했다) + 미리 받은 것
            for report in reports[:held]:
                first.wait_for_log(rf"build_report\[{report.id}\] received", WAIT_SECONDS)
            with running(second):
                if multiplier == DEFAULT_PREFETCH_MULTIPLIER:
                    # 첫 워커가 다 가져갔다: 브로커에는 남은 것이 없고, 두 번째 워커는 논다.
                    assert queue_counts(queue) == (0, 2)
                    idle = app.control.inspect(destination=[second.node], timeout=1.0)
                    assert idle.active()[second.node] == [] and idle.reserved()[second.node] == []
                    busy = app.control.inspect(destination=[first.node], timeout=1.0).reserved()[first.node]
                    assert busy  # 실행하지도 못할 메시지를 쥐고 있다
                    assert [r.id for r in reports if f"build_report[{r.id}] received" in second.log] == []
                    app.control.revoke([r.id for r in reports[1:]])  # 나머지를 기다리지 않는다
                else:
                    # 첫 워커는 둘만 쥐었고, 나머지는 브로커에서 기다리다 두 번째 워커가 가져간다.
                    left_on_broker = "|".join(r.id for r in reports[held:])
                    second.wait_for_log(rf"build_report\[(?:{left_on_broker})\] received", WAIT_SECONDS)
                    app.control.revoke([r.id for r in reports])  # 나머지를 기다리지 않는다
    finally:
        delete_queue(queue)


def test_prefetch_defaults_and_the_lessons_setting():
    from celery.concurrency.asynpool import SCHED_STRATEGIES, SCHED_STRATEGY_FAIR

    assert Celery("defaults").conf.worker_prefetch_multiplier == 4
    assert app.conf.worker_prefetch_multiplier == 1 and app.conf.worker_concurrency == 1
    assert SCHED_STRATEGIES["default"] == SCHED_STRATEGIES["fair"] == SCHED_STRATEGY_FAIR  # -O 의 기본값은 fair


@pytest.mark.skipif("broker.server_major() < 4", reason="RabbitMQ 4.x behaviour; this broker is older")
def test_on_rabbitmq_4_the_consumers_list_shows_prefetch_per_consumer(workers):
    # README 서비스 절: 관리 UI의 Consumers 목록에 소비자마다 prefetch가 적힌다(이 실습의 워커는 1).
    # 관리 API의 통계는 몇 초마다 모인다(collect_statistics_interval, 기본 5초): 소비자가 보일 때까지 다시 묻는다.
    def both():
        ours = _consumers(lambda c: c["queue"]["name"] in ("high", "low"))
        return ours if {c["queue"]["name"] for c in ours} == {"high", "low"} else None

    ours = wait_until(both, "관리 API의 high, low 소비자", MANAGEMENT_STATS_SECONDS)
    assert [c["prefetch_count"] for c in ours] == [1, 1]


def _management_rows(until):
    """관리 API의 큐 목록({이름: 큐})을 until(rows) 가 참이 될 때까지, 길어야 MANAGEMENT_STATS_SECONDS 동안 읽는다."""

    def read():
        rows = {row["name"]: row for row in broker.queues()}
        return rows if until(rows) else None

    return wait_until(read, "관리 API의 큐 목록", MANAGEMENT_STATS_SECONDS)


def _consumers(chosen):
    """관리 API의 소비자 목록 가운데 chosen(소비자) 가 참인 것들."""
    return [c for c in broker.management("GET", f"consumers/{broker.quoted(broker.vhost())}") if chosen(c)]
