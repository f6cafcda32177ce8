"""practice06 — 작업 이름과 send_task: 코드를 import 하지 않고 이름으로 부르기

무엇을 배우나: 작업에는 이름이 있다. 이름을 주지 않으면 "모듈.함수"(practice06.tasks.count_words)가 된다.
@app.task(name="email.send_welcome") 처럼 직접 줄 수도 있다. 호출하는 쪽은 그 이름만 알면
app.send_task("email.send_welcome", args=[42]) 로 부를 수 있다. 작업 코드를 import 할 필요가 없으니
다른 서비스나 다른 언어의 프로그램도 부를 수 있다. 함수를 옮기거나 이름을 바꿔도 명시한 이름은 그대로다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice06.tasks worker --loglevel=info
    터미널 2:  python -m practice06.call_tasks
"""

from celery import Celery

from global_config import RABBITMQ_URL, REDIS_URL

# 호출하는 쪽(call_tasks.py)은 이 파일을 import 하지 않으므로, 큐와 직렬화 설정을 그쪽에도 똑같이 둔다.
QUEUE = "practice06"


app = Celery("practice06", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
)


@app.task(name="email.send_welcome")
def send_welcome(user_id):
    # 이름을 직접 주었다. 이 함수를 다른 모듈로 옮기거나 이름을 바꿔도 "email.send_welcome" 으로 부를 수 있다.
    return f"환영 메일을 보냈습니다 (사용자 {user_id})"


@app.task
def count_words(text):
    # 이름을 주지 않았다. Celery가 "practice06.tasks.count_words" 라는 이름을 만든다.
    return len(text.split())
