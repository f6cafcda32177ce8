"""practice07 — 주기 작업: celery beat

무엇을 배우나: beat_schedule 에 주기(초)와 crontab으로 스케줄을 적는 법. celery beat는 워커와 따로 실행되는
프로세스이고, 스케줄에 맞춰 작업 메시지를 보내기만 한다. 실행은 워커가 한다. 그리고 무엇이 잘못되는가.
beat가 둘이면 모든 항목이 두 번씩 실행된다. 고치려면 beat를 하나만 띄우고, 두 번 와도 효과가 한 번뿐인 작업을
쓴다. 큐에서 만료된(expires) 메시지는 조용히 사라진다. 결과 행은 result_expires 가 지나면
celery.backend_cleanup 이 지운다.

실행 방법 (프로젝트 폴더에서, 터미널 세 개):
    터미널 1:  celery -A practice07.tasks worker --loglevel=info
    터미널 2:  celery -A practice07.tasks beat --loglevel=info
    터미널 3:  python -m practice07.call_tasks
"""

from celery import Celery
from celery.schedules import crontab

from course import Journal
from global_config import POSTGRES_URL, RABBITMQ_URL

TICK_SECONDS = 1  # 주기 스케줄의 간격
WATCH_SECONDS = 3  # call_tasks 가 tick을 세는 시간
EXPIRES_SECONDS = 1  # call_tasks 가 보내는 작업의 expires
LATE_SECONDS = 2  # expires보다 늦게 실행되도록 주는 countdown
RESULT_EXPIRES_SECONDS = 2  # 이보다 오래된 결과 행은 backend_cleanup 이 지운다 (기본값은 1일)
ONCE_LOCK_FRACTION = 0.8  # tick_once 는 간격의 80% 동안 잠금을 쥔다. 그 안에 다시 온 메시지는 중복으로 본다
FRESH_EXPIRES_SECONDS = 1  # tick_fresh 메시지의 expires. 이보다 오래 큐에서 기다린 tick은 RabbitMQ가 버린다


app = Celery("practice07", broker=RABBITMQ_URL, backend=POSTGRES_URL)
app.conf.update(
    task_default_queue="practice07",
    timezone="Asia/Seoul",  # crontab의 시각은 이 시간대로 읽는다 (기본값 UTC)
    result_expires=RESULT_EXPIRES_SECONDS,
    beat_schedule={
        # TICK_SECONDS 초마다 보내는 주기 항목. 스케줄 파일에 없는 항목은 beat가 시작하고 한 간격 뒤에 처음 보낸다.
        # 파일에 지난 실행이 남아 있고 간격이 이미 지났으면 시작하자마자 한 번 보낸다.
        "tick-every-second": {"task": "practice07.tasks.tick", "schedule": TICK_SECONDS, "args": ("beat",)},
        # 같은 스케줄의 작업. 두 번 보내져도 한 간격에 한 번만 효과를 낸다.
        "tick-once-every-second": {"task": "practice07.tasks.tick_once", "schedule": TICK_SECONDS, "args": ("beat",)},
        # 같은 스케줄에 expires를 단 작업. 워커가 없는 동안 쌓인 tick은 만료되므로, 워커가 돌아와도 몰아서
        # 실행되지 않는다.
        # Celery도 자기 celery.backend_cleanup 항목에 expires(12시간)를 단다.
        "tick-fresh-every-second": {
            "task": "practice07.tasks.tick_fresh",
            "schedule": TICK_SECONDS,
            "options": {"expires": FRESH_EXPIRES_SECONDS},
        },
        # crontab: 매일 04:00 (Asia/Seoul).
        "nightly-report": {"task": "practice07.tasks.nightly_report", "schedule": crontab(hour=4, minute=0)},
    },
)

# 작업이 실행될 때마다 남기는 실행 기록(Redis 목록 practice07:journal:<label>). beat가 보낸 작업의 label은 "beat"다.
# call_tasks 와 테스트가 이 기록으로 실행 횟수를 센다.
journal = Journal("practice07")


@app.task(ignore_result=True)
def tick(label):
    journal.write(label, "tick")


@app.task(ignore_result=True)
def tick_once(label):
    # 중복을 막는 잠금: 간격보다 조금 짧게 잡는다. 같은 간격 안에 다시 온 메시지는 아무 일도 하지 않는다.
    # 잠금은 Redis 키 하나다(SET key 1 NX PX 800). 실행 기록의 Redis 연결을 함께 쓴다.
    lock = journal.redis.set(f"practice07:lock:{label}", 1, nx=True, px=int(TICK_SECONDS * ONCE_LOCK_FRACTION * 1000))
    if lock:
        journal.write(label, "tick_once")


@app.task(ignore_result=True)
def tick_fresh():
    journal.write("beat", "tick_fresh")


@app.task(ignore_result=True)
def nightly_report():
    journal.write("beat", "nightly_report")


@app.task
def add(x, y):
    return x + y


def runs(task_name, label="beat", since=0.0, until=float("inf")):
    """task_name 이 label로 실행된 시각 가운데 [since, until) 안의 것을 돌려준다. 시각은 time.time() 기준이다."""
    return [entry.at for entry in journal.read(label) if entry.what == task_name and since <= entry.at < until]
