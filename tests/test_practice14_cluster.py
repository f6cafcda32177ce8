"""practice14 README: 노드 세 개로 된 RabbitMQ 클러스터에서 쿼럼 큐의 리더를 멈추기, 멈춘 노드의 클래식 큐, 재합류.

클러스터는 `.ci/services cluster` 가 띄운다. 세션에서 한 번만 띄우고(이미 돌고 있으면 그대로 쓴다) 띄운 경우에만
세션이 끝날 때 멈춘다. 테스트마다 노드 하나를 멈췄다가 다시 띄운다.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from amqp.exceptions import NotFound
from kombu import Connection

from course import wait_until
from playground import PROJECT_ROOT, cluster
from playground.readme import commands
from playground.workers import Worker, running
from practice14.cluster_tasks import CLASSIC_QUEUE, QUORUM_QUEUE, app, journal, record
from tests import WAIT_SECONDS
from tests.readme import ReadmeWorker, readme

README = "practice14/README.md"


def readme_command(prefix: str) -> str:
    """README의 코드 블록에서 prefix로 시작하는 명령 하나."""
    (command,) = {c for c in commands(readme(README)) if c.startswith(prefix)}
    return command


LESSON = "practice14"
# 이 모듈의 테스트는 같은 클러스터의 노드를 멈췄다 띄운다. 한 테스트 프로세스에서 차례로 실행한다. 1분이 넘는 묶음이라
# 맨 먼저 시작한다(early).
pytestmark = [pytest.mark.xdist_group("practice14_cluster"), pytest.mark.early]
SENT_BEFORE = 200  # 리더 노드를 멈추기 전에 보내는 작업 수 (python -m practice14.cluster_calls 200)
SENT_AFTER = 20  # 멈춘 뒤에 보내는 작업 수 (보내는 쪽도 다른 노드로 넘어간다)
CALLS_TIMEOUT_SECONDS = 90
REJOIN_SECONDS = 60  # 다시 띄운 노드가 쿼럼 큐의 멤버로 돌아오기까지의 상한


@pytest.fixture(scope="session")
def rabbitmq_cluster():
    """세 노드가 모두 돌고 있는 클러스터. 없으면 띄우고, 띄우는 데 걸린 시간을 출력한다."""
    started_here = not cluster.is_running()
    if started_here:
        seconds = cluster.start()
        print(f"\nRabbitMQ cluster started in {seconds:.1f} s", file=sys.stderr)
    try:
        yield cluster.urls()
    finally:
        if started_here:
            cluster.bash_services("stop")


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
    # README의 직접 해 보기 그대로: README의 워커와 cluster_calls 를 띄우고, 작업이 실행되는 동안 리더 노드를 멈춘다.
    _declare_on(1, QUORUM_QUEUE)
    old = cluster.leader(QUORUM_QUEUE.name)
    # README의 `rabbitmqctl -q list_queues name type leader members` 그대로: 큐 이름, 종류, 리더, 멤버 세 노드.
    listed = cluster.bash_services("ctl", str(old), "-q", "list_queues", "name", "type", "leader", "members")
    (row,) = [line for line in listed.splitlines() if line.startswith("practice14.quorum\t")]
    _, kind, leader, members = row.split("\t")
    assert (kind, leader) == ("quorum", cluster.node_name(old))
    assert members.startswith("[") and members.endswith("]")
    assert sorted(members[1:-1].split(", ")) == sorted(cluster.node_name(n) for n in (1, 2, 3))
    # 워커와 보내는 쪽은 리더 노드에 먼저 연결한다: 노드가 멈추면 둘 다 연결이 끊긴다.
    leader_first = {"RABBITMQ_CLUSTER_URLS": cluster.urls_starting_with(old)}
    worker = ReadmeWorker(LESSON, readme_command("celery -A practice14.cluster_tasks worker"))
    worker.env.update(leader_first)
    worker.module = "cluster_tasks"  # 준비를 묻는 ping도 클러스터로 보낸다
    calls = None
    with running(worker), app.connection_for_write(leader_first["RABBITMQ_CLUSTER_URLS"]) as sender:
        sender.ensure_connection(max_retries=1)
        calls = subprocess.Popen(
            [sys.executable, "-m", "practice14.cluster_calls", str(SENT_BEFORE)], cwd=PROJECT_ROOT,
            env={**os.environ, **leader_first}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert calls.stdout.readline().startswith(f"보낸 작업: {SENT_BEFORE}개.")
            node_back.append(old)
            cluster.stop_node(old)  # 작업이 실행되는 중에, 리더이자 워커가 연결한 노드를
            after = journal.new_run()
            for number in range(SENT_AFTER):
                record.apply_async((after, number), connection=sender)  # 보내는 쪽도 주소 목록의 다음 노드로
            out, _ = calls.communicate(timeout=CALLS_TIMEOUT_SECONDS)
        finally:
            calls.kill()
        assert calls.returncode == 0, out
        found = re.search(r"실행된 작업: (\d+)개, 잃은 작업: 0개, 한 번 더 실행된 횟수: (\d+)번", out)
        assert found and int(found.group(1)) == SENT_BEFORE, out
        # 노드가 멈출 때 ack 하지 않은 작업(풀 프로세스마다 prefetch 하나)만 한 번 더 실행될 수 있다.
        assert int(found.group(2)) <= os.cpu_count()  # README의 워커: 풀 프로세스는 CPU 수만큼, prefetch 배수 1
        wait_until(lambda: len(_numbers(after)) >= SENT_AFTER, f"멈춘 뒤 보낸 작업 {SENT_AFTER}개", WAIT_SECONDS)
        assert set(_numbers(after)) == set(range(SENT_AFTER))
        new = cluster.leader(QUORUM_QUEUE.name, asking=cluster.other_node(old))
        assert new != old
        assert "consumer: Connection to broker lost" in worker.log
        survivors = "|".join(str(cluster.amqp_port(n)) for n in (1, 2, 3) if n != old)
        assert re.search(rf"Connected to amqp://guest:\*\*@127\.0\.0\.1:({survivors})//", worker.log)
        # 다시 연결할 때마다 워커는 주소 목록의 모든 노드에 native delayed delivery 용 exchange와 큐를 선언한다.
        # 멈춘 노드에는 1초, 3초, 5초를 쉬며 세 번 더 해 보고 포기한다. 그동안 작업을 받지 않는다.
        stopped = rf"'amqp://guest:\*\*@127\.0\.0\.1:{cluster.amqp_port(old)}/'"
        for attempt, pause in ((1, "1.00"), (2, "3.00"), (3, "5.00")):
            retrying = rf"Retrying delayed delivery setup \(attempt {attempt}/3\) after error: .*Sleeping {pause}"
            assert re.search(retrying, worker.log)
        assert re.search(rf"Failed to setup delayed delivery for {stopped}", worker.log)
        # 그동안(첫 재시도부터 포기할 때까지) 워커는 작업을 받지 않는다.
        retrying_since = worker.log.index("Retrying delayed delivery setup (attempt 1/3)")
        given_up = re.search(rf"Failed to setup delayed delivery for {stopped}", worker.log[retrying_since:])
        assert " received" not in worker.log[retrying_since : retrying_since + given_up.start()]
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
    status = cluster.bash_services("ctl", str(asking), "cluster_status")
    running_section = status.split("Running Nodes", 1)[1].split("\n\n", 2)[1]
    assert sorted(running_section.split()) == sorted(cluster.node_name(n) for n in (1, 2, 3))


def test_the_readmes_docker_commands_name_the_cluster_profile_and_its_services(compose):
    # docker 명령은 이 기계에서 실행할 수 없다. 명령이 가리키는 프로필과 서비스가 docker-compose.yml 에 있는지 본다.
    nodes = {name for name, s in compose["services"].items() if s.get("profiles") == ["cluster"]}
    docker = [c for c in commands(readme(README)) if c.startswith("docker ")]
    assert "docker compose --profile cluster up -d" in docker
    for command in docker:
        words = command.split()
        if words[2] in ("stop", "start", "exec"):
            assert words[3] in nodes, command
        if words[2] == "exec":
            # 컨테이너 안의 rabbitmqctl 명령은 .ci/services 의 클러스터 노드에 그대로 실행해 본다(위 테스트).
            assert words[4:] in (["rabbitmqctl", "-q", "list_queues", "name", "type", "leader", "members"],
                                 ["rabbitmqctl", "cluster_status"]), command  # fmt: skip


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


def test_the_failover_benchmark_runs_and_writes_json(rabbitmq_cluster, tmp_path, capsys):
    # benchmarks.failover 를 아주 작은 크기로 한 번 돌린다(속도는 재지 않는다). 클러스터를 쓰므로 이 모듈에 둔다.
    # 리더 노드를 멈추는 일은 위의 test_stopping_the_quorum_queues_leader_loses_no_task 가 확인한다. 여기서는
    # --keep-leader 로 노드를 멈추지 않고 같은 코드 경로(워커, 보내기, 세기, JSON)만 돈다.
    from benchmarks import failover

    path = tmp_path / "failover.json"
    argv = ["--heartbeats", "1", "--rounds", "1", "-n", "8", "--keep-leader", "--json", str(path)]
    assert failover.main(argv) == 0
    rows = json.loads(path.read_text())
    (frozen,) = rows["frozen_worker"]
    assert frozen["heartbeat_s"] == 1 and frozen["n"] == 1 and frozen["p50_s"] > 0
    leader = rows["leader_stop"]
    assert set(leader) == {"n", "ran", "lost", "duplicates", "pause_s", "stop_node_s"}
    assert leader["n"] == leader["ran"] == 8 and leader["lost"] == 0 and leader["stop_node_s"] is None
    out = capsys.readouterr().out
    assert "frozen worker" in out and "quorum queue leader node kept running (--keep-leader)" in out
