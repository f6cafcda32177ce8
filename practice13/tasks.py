"""practice13 — 배포: 워커를 멈추고, 바꾸고, 살피기

무엇을 배우나: 배포 도구(Docker, Kubernetes)는 워커를 SIGTERM으로 멈추고, 유예 시간이 지나면 SIGKILL로 죽인다.
SIGTERM을 받은 Celery 워커는 warm shutdown을 한다. 새 작업은 받지 않고 실행 중인 작업이 끝나기를 기다린다.
작업이 유예 시간보다 길면 SIGKILL이 작업 도중에 온다. 시작 시 ack(기본값)면 그 작업은 사라지고, 완료 후
ack(acks_late)면 브로커가 메시지를 되돌려 새 워커가 처음부터 다시 실행한다. SIGQUIT은 cold shutdown이다.
실행 중인 작업을 곧바로 끊는다. REMAP_SIGTERM=SIGQUIT 이면 SIGTERM도 cold shutdown이 되고,
worker_soft_shutdown_timeout 을 주면 끊기 전에 그만큼 기다린다(soft shutdown). 다시 실행되는 작업은 효과가
멱등해야 한다(practice08).

이 실습의 call_tasks 는 배포 도구 역할을 한다. 워커를 직접 띄우고, 신호를 보내고, 새 워커를 띄운다.
실행 방법 (프로젝트 폴더에서, 터미널 하나):
    터미널 1:  python -m practice13.call_tasks
"""

import os
import time

import redis
from celery import Celery

from course import Journal
from global_config import RABBITMQ_URL, REDIS_URL
from practice13.probe import Liveness, Readiness

WORK_SECONDS = 8  # 배포 도중에 실행되는 긴 작업. 유예 시간보다 길다
SHORT_WORK_SECONDS = 1  # soft shutdown 시간 안에 끝나는 짧은 작업
EFFECT_AT_SECONDS = 1  # 작업이 시작하고 이만큼 지나 효과를 남긴다
GRACE_SECONDS = 6  # 배포 도구가 SIGTERM을 보내고 SIGKILL을 보내기까지 기다리는 시간(유예 시간)
SOFT_SHUTDOWN_SECONDS = 2  # worker_soft_shutdown_timeout. 유예 시간보다 짧아야 한다
SETTLE_SECONDS = 1  # 더 실행되는 작업이 없는지 지켜보는 시간
MAX_MEMORY_PER_CHILD_KIB = 150_000  # --max-memory-per-child 의 예. 풀 프로세스의 최대 메모리가 이보다 크면 교체한다

app = Celery("practice13", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice13",
    # 풀 프로세스마다 메시지를 하나만 받아 둔다. 그래서 멈추는 워커가 쥔 메시지는 실행 중인 것뿐이다.
    worker_prefetch_multiplier=1,
    # cold shutdown(SIGQUIT, 또는 REMAP_SIGTERM=SIGQUIT 일 때의 SIGTERM)이 작업을 끊기 전에 기다리는 시간.
    # warm shutdown에는 쓰이지 않는다. 0이면 곧바로 끊는다.
    worker_soft_shutdown_timeout=float(os.environ.get("PRACTICE13_SOFT_SHUTDOWN_SECONDS", SOFT_SHUTDOWN_SECONDS)),
    # 기본값(False)이면 실행 중인 작업이 없을 때는 기다리지 않는다.
    worker_enable_soft_shutdown_on_idle=os.environ.get("PRACTICE13_SOFT_SHUTDOWN_ON_IDLE") == "1",
)

# 상태 확인(probe.py)에 쓰는 단계 두 개. 워커는 live 파일을 갱신하고, 컨슈머는 큐를 소비하는 동안 ready 파일을 둔다.
app.steps["worker"].add(Liveness)
app.steps["consumer"].add(Readiness)

# 작업이 시작할 때와 끝날 때 남기는 실행 기록(Redis 목록 practice13:journal:<run>).
journal = Journal("practice13")
# 작업의 효과를 남기는 Redis. 효과는 run마다 한 번만 남는다(SET NX). 두 번 실행되어도 한 번만 남으므로 멱등하다.
effects = redis.Redis.from_url(REDIS_URL)


def effect_key(run):
    return f"practice13:effect:{run}"


def _work(run, seconds):
    journal.write(run, "시작")
    time.sleep(EFFECT_AT_SECONDS)
    # 결제 같은 효과. 같은 run으로 두 번 실행되어도 한 번만 남는다(SET NX).
    if effects.set(effect_key(run), os.getpid(), nx=True, ex=Journal.TTL_SECONDS):
        journal.write(run, "효과")
    else:
        journal.write(run, "효과는 이미 있음")
    time.sleep(max(seconds - EFFECT_AT_SECONDS, 0))
    journal.write(run, "끝")


@app.task(ignore_result=True)
def work(run, seconds=WORK_SECONDS):
    # 시작 시 ack(기본값). 풀 프로세스가 받는 순간 메시지가 브로커에서 지워진다.
    _work(run, seconds)


@app.task(ignore_result=True, acks_late=True)
def work_acks_late(run, seconds=WORK_SECONDS):
    # 완료 후 ack. 끝나기 전에 워커가 사라지면 브로커가 메시지를 되돌린다.
    _work(run, seconds)


@app.task
def use_memory(run, megabytes):
    # megabytes 만큼 메모리를 잠깐 쓰고 해제한다. 어느 풀 프로세스가 실행했는지(pid) 돌려준다.
    journal.write(run, "시작", megabytes=megabytes)
    block = b"\x01" * (megabytes * 1024 * 1024)  # 값을 실제로 써서 메모리(RSS)에 올린다
    del block
    return os.getpid()
