"""practice03 — group과 chord: 여러 작업을 나란히, 그리고 다 끝나면 한 번

무엇을 배우나: group은 작업들을 한꺼번에 보내 나란히 실행한다. 결과는 끝난 순서가 아니라 부른 순서로
돌려준다. chord는 group에 콜백을 붙인 것이다. 이때 group을 header, 콜백을 body라고 부른다. 가장 느린
작업까지 끝나면 콜백이 header의 결과 목록을 받아 한 번 실행된다. chord를 끝내는 방법은 결과 백엔드마다
다르다. Redis에서는 마지막 결과를 저장한 워커가 곧바로 콜백을 보낸다. PostgreSQL 같은 데이터베이스
백엔드에서는 celery.chord_unlock 작업이 1초마다 "다 끝났나?"를 확인한다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice03.tasks worker --loglevel=info
    터미널 2:  python -m practice03.call_tasks

같은 실습을 PostgreSQL 결과 백엔드로 하려면 두 터미널 모두에 같은 환경 변수를 붙인다.
    터미널 1:  PRACTICE03_BACKEND=postgres celery -A practice03.tasks worker --loglevel=info
    터미널 2:  PRACTICE03_BACKEND=postgres python -m practice03.call_tasks
"""

import os
import time

from celery import Celery

from global_config import POSTGRES_URL, RABBITMQ_URL, REDIS_URL

SHORT_SECONDS = 0.2  # 짧은 작업 하나의 길이
LONG_SECONDS = 2  # 긴 작업 하나의 길이. chord의 콜백은 이것이 끝나야 실행된다

BACKENDS = {"redis": REDIS_URL, "postgres": POSTGRES_URL}
BACKEND = os.environ.get("PRACTICE03_BACKEND", "redis")
if BACKEND not in BACKENDS:
    raise SystemExit(f"PRACTICE03_BACKEND 는 {' 또는 '.join(BACKENDS)} 중 하나여야 합니다 (지금 값: {BACKEND!r})")


app = Celery("practice03", broker=RABBITMQ_URL, backend=BACKENDS[BACKEND])
app.conf.update(
    # 백엔드마다 큐를 따로 둔다. 결과를 어디에 적을지는 워커의 설정이 정한다. 그래서 Redis 워커가 PostgreSQL
    # 쪽 호출의 작업을 가져가면 호출하는 쪽은 결과를 영영 찾지 못한다.
    task_default_queue="practice03" if BACKEND == "redis" else "practice03_postgres",
)


@app.task
def fetch(part, seconds):
    """part 번째 조각을 가져오는 척한다. 끝난 시각을 함께 돌려준다."""
    time.sleep(seconds)
    return {"part": part, "finished_at": time.time()}


@app.task
def merge(pieces):
    """chord의 콜백: header 결과 목록을 header 순서대로 받는다. 자기가 시작한 시각을 함께 돌려준다."""
    started_at = time.time()
    return {
        "parts": [piece["part"] for piece in pieces],
        "started_at": started_at,
        "last_header_finished_at": max(piece["finished_at"] for piece in pieces),
    }
