"""practice14 README: RabbitMQ 클러스터(노드 셋)에서 쿼럼 큐의 리더 노드를 멈추기, 멈춘 노드의 클래식 큐, 다시 합류하기.

클러스터는 `.ci/services cluster` 가 띄운다. 세션에서 한 번만 띄우고(이미 돌고 있으면 그대로 쓴다) 띄운 경우에만
세션이 끝날 때 멈춘다. 테스트마다 노드 하나를 멈췄다가 다시 띄운다.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

import pytest
from amqp.exceptions import NotFound
from kombu import Connection

from course import wait_until
from playground import cluster
from playground.workers import Worker, running
from practice14.cluster_tasks import CLASSIC_QUEUE, QUORUM_QUEUE, app, journal, record
from tests import WAIT_SECONDS

LESSON = "practice14"
# 이 모듈의 테스트는 같은 클러스터의 노드를 멈췄다 띄운다. 한 테스트 프로세스에서 차례로 실행한다.
pytestmark = pytest.mark.xdist_group("practice14_cluster")
SENT_BEFORE = 40  # 리더 노드를 멈추기 전에 보내는 작업 수
SENT_AFTER = 20  # 멈춘 뒤에 보내는 작업 수 (보내는 쪽도 다른 노드로 넘어간다)
REJOIN_SECONDS = 60  # 다시 띄운 노드가 쿼럼 큐의 멤버로 돌아오기까지의 상한


@pytest.fixture(scope="session")
def rabbitmq_cluster():
    """노드 셋이 모두 돌고 있는 클러스터. 없으면 띄우고, 띄우는 데 걸린 시간을 출력한다."""
    started_here = not cluster.is_running()
    if started_here:
        seconds = cluster.start()
        print(f"\nRabbitMQ cluster started in {seconds:.1f} s", file=sys.stderr)
    try:
        yield cluster.urls()
    finally:
        if started_here:
            cluster.services("stop")


@pytest.fixture
def node_back(rabbitmq_cluster):
    """테스트가 멈춘 노드(들)를 테스트가 끝날 때 다시 띄운다. stopped.append(n) 으로 알린다."""
    stopped: list[int] = []
    yield stopped
    for node in stopped:
        cluster.start_node(node)


def _declare_on(node: int, *queues) -> None:
    """노드 node에 연결해 큐들을 선언하고 비운다. 클래식 큐는 선언한 노드에 자리 잡는다."""
    with Connection(cluster.urls()[node - 1]) as conn:
        channel = conn.channel()
        for queue in queues:
            queue.bind(channel).declare()
            channel.queue_purge(queue.name)


def test_the_quorum_queue_has_a_member_on_every_node_and_the_classic_queue_lives_on_one(rabbitmq_cluster):
    _declare_on(1, QUORUM_QUEUE, CLASSIC_QUEUE)
    names = {cluster.node_name(n) for n in (1, 2, 3)}
    assert cluster.running_nodes(2) == names
    quorum = cluster.queue(QUORUM_QUEUE.name, 2)
    assert quorum["type"] == "quorum" and set(quorum["members"]) == names and quorum["leader"] in names
    classic = cluster.queue(CLASSIC_QUEUE.name, 2)
    assert classic["type"] == "classic" and classic["node"] == cluster.node_name(1)
    assert "members" not in classic or not classic["members"]


def _numbers(run: str) -> Counter[int]:
    return Counter(entry["number"] for entry in journal.read(run))


def test_stopping_the_quorum_queues_leader_loses_no_task(rabbitmq_cluster, node_back):
    _declare_on(1, QUORUM_QUEUE)
    old = cluster.leader(QUORUM_QUEUE.name)
    run = journal.new_run()
    # 워커는 리더 노드에 먼저 연결한다: 노드가 멈추면 워커의 연결도 끊긴다.
    worker = Worker(
        LESSON, module="cluster_tasks", queues=(QUORUM_QUEUE.name,),
        env={"RABBITMQ_CLUSTER_URLS": cluster.urls_starting_with(old)},
    )  # fmt: skip
    with running(worker):
        with app.connection_for_write(cluster.urls_starting_with(old)) as conn:
            for number in range(SENT_BEFORE):
                record.apply_async((run, number), connection=conn)
        wait_until(lambda: len(_numbers(run)) >= 5, "실행된 작업 5개", WAIT_SECONDS)
        node_back.append(old)
        cluster.stop_node(old)  # 작업이 실행되는 중에, 리더이자 워커가 연결한 노드를
        for number in range(SENT_BEFORE, SENT_BEFORE + SENT_AFTER):
            record.delay(run, number)  # 주소 목록을 따라 살아 있는 노드로
        total = SENT_BEFORE + SENT_AFTER
        wait_until(lambda: len(_numbers(run)) >= total, f"서로 다른 작업 {total}개의 실행", WAIT_SECONDS * 2)
        numbers = _numbers(run)
        assert set(numbers) == set(range(total))  # 잃은 작업이 없다
        duplicates = sum(numbers.values()) - total  # 노드가 멈출 때 ack 되지 않은 작업은 한 번 더 실행될 수 있다
        assert duplicates <= worker.concurrency  # 풀 프로세스마다 prefetch 하나(worker_prefetch_multiplier=1)
        new = cluster.leader(QUORUM_QUEUE.name, asking=cluster.other_node(old))
        assert new != old
        assert "consumer: Connection to broker lost" in worker.log
        survivors = "|".join(str(cluster.amqp_port(n)) for n in (1, 2, 3) if n != old)
        assert re.search(rf"Connected to amqp://guest:\*\*@127\.0\.0\.1:({survivors})//", worker.log)
        # 다시 연결할 때마다 워커는 주소 목록의 모든 노드에 native delayed delivery 용 exchange와 큐를 선언한다.
        # 멈춘 노드에는 1초, 3초, 5초를 쉬며 세 번 더 해 보고 포기한다. 그동안 작업을 받지 않는다.
        stopped = rf"'amqp://guest:\*\*@127\.0\.0\.1:{cluster.amqp_port(old)}/'"
        for attempt, pause in ((1, "1.00"), (2, "3.00"), (3, "5.00")):
            assert re.search(
                rf"Retrying delayed delivery setup \(attempt {attempt}/3\) after error: .*Sleeping {pause}", worker.log
            )
        assert re.search(rf"Failed to setup delayed delivery for {stopped}", worker.log)
    # 다시 띄운 노드는 클러스터에 스스로 합류하고, 쿼럼 큐의 멤버로 돌아온다.
    asking = cluster.other_node(old)
    assert cluster.node_name(old) not in cluster.queue(QUORUM_QUEUE.name, asking)["online"]
    cluster.start_node(old)
    node_back.remove(old)
    wait_until(lambda: cluster.node_name(old) in cluster.running_nodes(asking), "다시 합류한 노드", REJOIN_SECONDS)
    wait_until(
        lambda: cluster.node_name(old) in cluster.queue(QUORUM_QUEUE.name, asking)["online"],
        "쿼럼 큐의 멤버로 돌아온 노드",
        REJOIN_SECONDS,
    )


def test_a_classic_queue_is_unavailable_while_its_node_is_down(rabbitmq_cluster, node_back):
    _declare_on(1, CLASSIC_QUEUE)  # 클래식 큐는 1번 노드에 있다
    run = journal.new_run()
    record.apply_async((run, 0), queue=CLASSIC_QUEUE.name)  # 노드가 멈추기 전에 보낸 작업
    node_back.append(1)
    cluster.stop_node(1)
    # 보내는 쪽: Celery는 보낼 때 큐를 선언한다. 다른 노드가 그 선언을 거절한다.
    with pytest.raises(NotFound) as refused:
        record.apply_async((run, 1), queue=CLASSIC_QUEUE.name)
    assert str(refused.value) == (
        "Queue.declare: (404) NOT_FOUND - queue 'practice14.classic' in vhost '/' process is stopped by supervisor"
    )
    # 그 큐를 소비하는 워커: 다른 노드에 연결하고 큐를 선언하다가 거절당하고 끝난다.
    worker = Worker(LESSON, module="cluster_tasks", queues=(CLASSIC_QUEUE.name,))
    worker.start()
    try:
        worker.wait_for_log(r"Unrecoverable error: NotFound\(404", WAIT_SECONDS)
        assert worker.proc.wait(WAIT_SECONDS) != 0
        assert (
            "NOT_FOUND - queue 'practice14.classic' in vhost '/' process is stopped by supervisor\", (50, 10), "
            "'Queue.declare')" in worker.log
        )
    finally:
        worker.stop()
    # 노드가 돌아오면 큐도 돌아온다. 멈추기 전에 보낸 메시지는 그대로 있다(durable 큐의 persistent 메시지).
    cluster.start_node(1)
    node_back.remove(1)
    with Connection(cluster.urls()[1]) as conn:
        declared = conn.channel().queue_declare(queue=CLASSIC_QUEUE.name, passive=True)
    assert declared.message_count == 1
    with running(Worker(LESSON, module="cluster_tasks", queues=(CLASSIC_QUEUE.name,))):
        assert journal.wait_for(run, 1)[0]["number"] == 0
