"""practice01 — 시간 제한: time_limit(하드)과 soft_time_limit(소프트)

무엇을 배우나: 너무 오래 실행되는 작업을 Celery가 어떻게 멈추는지 본다. 하드 제한은 작업을 실행하던 풀
프로세스를 죽이고 새 프로세스로 바꾼다. 정리 코드가 끝나리라는 보장은 없다. 소프트 제한은 작업 안에서
SoftTimeLimitExceeded 예외를 일으켜 정리할 기회를 준다. 그래서 운영 코드에는 둘 다 건다. 소프트 제한으로
정리하고, 하드 제한으로 어떤 경우에도 프로세스를 되찾는다. 둘 다 prefork 풀(리눅스, macOS)에서만 동작한다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice01.tasks worker --loglevel=info
    터미널 2:  python -m practice01.call_tasks
"""

import os
import time

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from course import Journal
from global_config import RABBITMQ_URL, REDIS_URL

SOFT_LIMIT_SECONDS = 1  # soft_time_limit
# time_limit. 소프트 제한 뒤 정리에 쓸 수 있는 여유는 HARD_LIMIT_SECONDS - SOFT_LIMIT_SECONDS = 1초다.
HARD_LIMIT_SECONDS = 2
WORK_SECONDS = 1  # 제한 없이 끝나는 작업의 길이
OVERRUN_SECONDS = 4  # 제한을 넘기는 작업이 하려던 길이
ITEM_SECONDS = 0.2  # 일괄 작업에서 항목 하나를 처리하는 시간
ITEMS = 20  # 일괄 작업의 항목 수. 다 하려면 4초가 걸려 소프트 제한(1초)에 걸린다
CLEANUP_SECONDS = 0.1  # 여유(1초) 안에 끝나는 정리
SLOW_CLEANUP_SECONDS = 2  # 여유(1초)보다 긴 정리. 정리가 끝나기 전에 하드 제한이 온다
HARD_CLEANUP_SECONDS = 0.5  # 하드 제한에 걸린 작업의 finally 정리. SIGKILL(약 0.1초 뒤)보다 길다.

# 하드 제한의 FAILURE는 워커의 메인 프로세스가 제한 시각에 곧바로 기록한다. 풀 프로세스는 그 뒤에 SIGTERM을
# 받고, 약 0.1초 뒤 SIGKILL로 끝난다. call_tasks 는 그 사이에 작업이 남기는 흔적까지 보려고 잠깐 기다린다.
KILL_SETTLE_SECONDS = 0.3


app = Celery("practice01", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice01",
)

# 작업 안에서 일어난 일을 실행 기록(Redis 목록 practice01:journal:<run_id>)에 적어 둔다. 하드 제한으로 죽은 작업은
# 결과를 돌려주지 못한다. 그래서 호출하는 쪽이 "어디까지 실행됐나"를 보려면 이런 흔적이 필요하다.
journal = Journal("practice01")


@app.task
def unlimited():
    # 제한이 없다. 끝나면 자기를 실행한 풀 프로세스의 pid를 돌려준다.
    time.sleep(WORK_SECONDS)
    return os.getpid()


@app.task(time_limit=HARD_LIMIT_SECONDS)
def hard_limited(run_id):
    journal.write(run_id, f"시작 (pid {os.getpid()})")
    try:
        time.sleep(OVERRUN_SECONDS)
        journal.write(run_id, "끝까지 실행")
    finally:
        # 하드 제한에서는 SIGTERM이 먼저 와서 여기까지는 올 수 있다. 하지만 약 0.1초 뒤 SIGKILL이 프로세스를 끝낸다.
        journal.write(run_id, "finally 시작")
        time.sleep(HARD_CLEANUP_SECONDS)
        journal.write(run_id, "finally 끝")


@app.task(soft_time_limit=SOFT_LIMIT_SECONDS, time_limit=HARD_LIMIT_SECONDS)
def batch_with_cleanup(run_id):
    done = 0
    try:
        for _ in range(ITEMS):
            time.sleep(ITEM_SECONDS)
            done += 1
    except SoftTimeLimitExceeded:
        # 소프트 제한의 예외는 작업 안에서 난다. 진행 상황을 남기고 정리한 뒤 값을 돌려줄 수 있다.
        journal.write(run_id, f"소프트 제한: {done}개 처리 후 정리 시작")
        time.sleep(CLEANUP_SECONDS)
        journal.write(run_id, "정리 끝")
        return {"processed": done, "of": ITEMS, "cleaned_up": True}
    return {"processed": done, "of": ITEMS, "cleaned_up": False}


@app.task(soft_time_limit=SOFT_LIMIT_SECONDS, time_limit=HARD_LIMIT_SECONDS)
def slow_cleanup(run_id):
    try:
        time.sleep(OVERRUN_SECONDS)
    except SoftTimeLimitExceeded:
        journal.write(run_id, "소프트 제한: 정리 시작")
        time.sleep(SLOW_CLEANUP_SECONDS)  # 여유보다 길다
        journal.write(run_id, "정리 끝")
        raise


# 잘못된 설정이다. 소프트 제한이 하드 제한보다 길다. 정의는 되지만, 호출하는 순간 ValueError가 난다.
@app.task(time_limit=HARD_LIMIT_SECONDS, soft_time_limit=HARD_LIMIT_SECONDS + 1)
def misconfigured():
    return "never sent"


# 헬퍼. 호출하는 쪽(call_tasks, 테스트)이 쓴다.
def send(task):
    """새 run_id 로 보내고 (AsyncResult, run_id) 를 돌려준다. 작업이 남긴 흔적은 journal.read(run_id) 로 읽는다."""
    run_id = Journal.new_run()
    return task.delay(run_id), run_id
