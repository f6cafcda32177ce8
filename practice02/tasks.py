"""practice02 — chain: 작업의 결과를 다음 작업으로 넘기기

무엇을 배우나: 시그니처(.s(), .si())는 작업 호출을 실행하지 않고 담아 둔다. chain은 시그니처를 이어 붙인
것이고, 앞 작업의 결과가 다음 작업의 첫 번째 인자가 된다. 단계마다 .set(task_id=...) 로 id를 붙이면 중간
결과를 읽을 수 있다. 중간에 실패한 chain이 어떻게 끝나는지도 본다.

    add(1, 2) → 3.0 → multiply(3.0, 3) → 9.0 → divide(9.0, 7) → 1.2857… → subtract(1.2857…, 2) → -0.7142…

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice02.tasks worker --loglevel=info
    터미널 2:  python -m practice02.call_tasks
"""

from celery import Celery

from global_config import RABBITMQ_URL, REDIS_URL

app = Celery("practice02", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice02",
)


# chain에서는 앞 작업의 결과가 이 함수들의 첫 번째 인자(x)로 들어온다.
@app.task
def add(x, y):
    return float(x + y)


@app.task
def multiply(x, y):
    return float(x * y)


@app.task
def divide(x, y):
    return x / y


@app.task
def subtract(x, y):
    return x - y
