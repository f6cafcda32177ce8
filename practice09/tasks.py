"""practice09 — 워크플로가 실패할 때, 진행률 알리기

무엇을 배우나: 작업이 성공하면 부를 작업(link)과 실패하면 부를 작업(link_error, errback). errback에는 두 모양이
있다. 인자가 셋(request, exc, traceback)이면 실패한 작업을 실행한 그 프로세스 안에서 곧바로 불리고, 인자가
하나(task_id)면 새 메시지로 간다. 그 함정들(bind=True 인 errback, errback 안에서 난 예외, 하드 시간 제한). chain과
chord의 한 단계가 실패하면 나머지는 어떻게 되나. chord의 header 작업을 잃으면(워커째 죽으면) body가 왜 영영 실행되지
않나. 오래 걸리는 작업이 update_state 로 진행률을 알리는 법. 작은 작업 여럿을 메시지 몇 개로 묶는 chunks, map,
starmap.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice09.tasks worker --loglevel=info
    터미널 2:  python -m practice09.call_tasks

결과 백엔드를 PostgreSQL로 바꿔 chord 실패를 비교하려면 두 명령 앞에 PRACTICE09_BACKEND=postgres 를 붙인다.
"""

import os
import signal
import time

from celery import Celery

from course import Journal
from global_config import POSTGRES_URL, RABBITMQ_URL, REDIS_URL

STEP_SECONDS = 0.3  # 진행률을 알리는 작업의 한 단계
STEPS = 4  # 진행률을 알리는 작업의 단계 수
HARD_LIMIT_SECONDS = 1  # 하드 시간 제한에 걸리는 작업의 제한
OVERRUN_SECONDS = 3  # 그 작업이 하려던 길이
SLOW_PART_SECONDS = 2  # 느린 header 작업의 길이 (테스트가 그 사이에 워커째 죽인다)

BACKENDS = {"redis": REDIS_URL, "postgres": POSTGRES_URL}
BACKEND = os.environ.get("PRACTICE09_BACKEND", "redis")
if BACKEND not in BACKENDS:
    raise SystemExit(
        f"PRACTICE09_BACKEND 의 값을 알 수 없습니다(지금: {BACKEND!r})."
        f" 다음 가운데 하나를 쓰세요: {', '.join(BACKENDS)}"
    )


app = Celery("practice09", broker=RABBITMQ_URL, backend=BACKENDS[BACKEND])
app.conf.update(
    # 백엔드마다 큐를 따로 쓴다. 다른 백엔드로 뜬 워커가 이 작업을 가져가 엉뚱한 곳에 결과를 쓰지 않게 한다.
    task_default_queue="practice09" if BACKEND == "redis" else "practice09_postgres",
)

# 콜백과 errback이 불릴 때마다 남기는 실행 기록(Redis 목록 practice09:journal:<run>). what은 남긴 작업의 이름이다.
# call_tasks 와 테스트가 읽는다.
journal = Journal("practice09")


@app.task
def add(x, y):
    return x + y


@app.task
def fail(x, run=None):
    if run:
        journal.write(run, "fail", x=x)
    raise ValueError(f"나쁜 값: {x}")


@app.task(time_limit=HARD_LIMIT_SECONDS)
def overrun(run):
    journal.write(run, "overrun")
    time.sleep(OVERRUN_SECONDS)


@app.task
def record(value, run):
    # link 콜백. 새 메시지로 불리고, 앞 작업의 반환값을 첫 인자로 받는다.
    journal.write(run, "record", value=value)


@app.task
def on_error(request, exc, traceback, run):
    # 인자 셋의 errback(미리 준 run은 세지 않는다). 실패한 작업을 실행한 프로세스 안에서 메시지 없이 곧바로 불린다.
    last_line = traceback.strip().splitlines()[-1] if traceback else None
    journal.write(
        run,
        "on_error",
        id=request.id,
        task=request.task,
        args=request.args,
        hostname=request.hostname,
        exc=repr(exc),
        last_line=last_line,
    )


@app.task
def on_error_id(task_id, run):
    # 인자 하나의 errback(미리 준 run은 세지 않는다). 실패한 작업의 id만 실은 새 메시지로 간다.
    journal.write(run, "on_error_id", id=task_id)


@app.task(bind=True)
def on_error_bound(self, request, exc, traceback, run):
    # 함정: bind=True 인 errback은 옛 방식(새 메시지에 task_id 하나)으로 보내진다. Celery가 보내기 전에 인자를
    # 검사하므로, 이 모양은 실패한 작업의 프로세스에서 TypeError를 내고 메시지는 가지 않는다.
    journal.write(run, "on_error_bound", id=request.id)


@app.task(bind=True)
def on_error_bound_id(self, task_id, run):
    # bind=True 인 errback은 (self, task_id) 로 쓴다. 자기 메시지로 실행되는 작업이라 parent_id 가 실패한 작업의 id다.
    journal.write(run, "on_error_bound_id", id=task_id, parent_id=self.request.parent_id)


@app.task
def on_error_raises(request, exc, traceback, run):
    # errback 안에서 난 예외는 워커 로그에 남을 뿐이다. 실패한 작업의 state도, 다른 errback도 그대로다.
    journal.write(run, "on_error_raises", id=request.id)
    raise RuntimeError("errback도 실패했다")


@app.task
def merge(parts):
    return sum(parts)


@app.task
def crash(x):
    # 자기 풀 프로세스를 kill -9 로 죽인다(OOM 킬러를 흉내 낸다). 워커의 메인 프로세스는 살아서 이것을 알아챈다.
    os.kill(os.getpid(), signal.SIGKILL)


@app.task
def slow_add(x, y):
    # 시작 시 ack(기본값). 실행 중에 워커째 죽으면 이 메시지는 어디에도 남지 않는다.
    time.sleep(SLOW_PART_SECONDS)
    return x + y


@app.task(acks_late=True)
def slow_add_late(x, y):
    # 완료 후 ack. 실행 중에 워커째 죽으면 메시지가 큐로 돌아가 다음 워커가 다시 실행한다.
    time.sleep(SLOW_PART_SECONDS)
    return x + y


@app.task(bind=True)
def progress(self, steps=STEPS):
    time.sleep(STEP_SECONDS)  # 준비 (이 동안은 아직 PENDING)
    for done in range(steps):
        self.update_state(state="PROGRESS", meta={"done": done, "total": steps})
        time.sleep(STEP_SECONDS)
    return {"done": steps, "total": steps}
