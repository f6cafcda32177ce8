"""practice14 직접 해 보기: 클러스터의 쿼럼 큐로 작업 여럿을 보내고, 모두 실행되었는지 센다.

작업이 실행되는 동안 쿼럼 큐의 리더 노드를 멈춰 보라(README의 "직접 해 보기"):
    터미널 1:  docker compose --profile cluster up -d
               celery -A practice14.cluster_tasks worker --queues=practice14.quorum --loglevel=info
    터미널 2:  python -m practice14.cluster_calls 200
    터미널 3:  docker compose exec rabbitmq-1 rabbitmqctl -q list_queues name type leader members
               docker compose stop rabbitmq-2   (리더가 rabbitmq-2라면)
"""

import sys
from collections import Counter

from course import WAIT_SECONDS, Journal, wait_until
from practice14.cluster_tasks import RECORD_SECONDS, journal, record

DEFAULT_COUNT = 1000
# 노드 하나가 멈추면 워커는 다른 노드로 다시 연결하고, 그동안 작업을 받지 않는다. 이 시간을 기다리는 상한에 더한다.
FAILOVER_SECONDS = 60


def executed(run):
    """작업 번호마다 실행된 횟수를 센다."""
    return Counter(entry["number"] for entry in journal.read(run))


def main(count):
    run = Journal.new_run()
    for number in range(count):
        record.delay(run, number)
    print(f"보낸 작업: {count}개. 지금 쿼럼 큐의 리더 노드를 멈춰 보세요.", flush=True)
    timeout = WAIT_SECONDS + count * RECORD_SECONDS + FAILOVER_SECONDS
    wait_until(lambda: len(executed(run)) >= count, f"서로 다른 작업 {count}개의 실행", timeout)
    runs = executed(run)
    lost, again = count - len(runs), sum(runs.values()) - len(runs)
    print(f"실행된 작업: {len(runs)}개, 잃은 작업: {lost}개, 한 번 더 실행된 횟수: {again}번")


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_COUNT))
