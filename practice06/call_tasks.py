"""practice06의 작업들을 import 하지 않고 이름만으로 부른다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice06.tasks worker --loglevel=info
그다음:                             python -m practice06.call_tasks

이 파일은 practice06.tasks 를 import 하지 않는다. 그래서 자기만의 Celery 앱(클라이언트)을 만들고,
워커와 같은 브로커, 결과 백엔드, 큐, 직렬화 설정을 준다.
"""

import sys
import time

from celery import Celery
from celery.exceptions import NotRegistered

from course import WAIT_SECONDS, Scenario
from global_config import RABBITMQ_URL, REDIS_URL

client = Celery("practice06_client", broker=RABBITMQ_URL, backend=REDIS_URL)
client.conf.update(
    task_default_queue="practice06",
)

# inspect() 가 워커들의 답을 모으는 시간.
INSPECT_SECONDS = 0.5

scenario = Scenario(client, lesson="practice06")
step, show, expect = scenario.step, scenario.show, scenario.expect


def calls():
    step("1. send_task 로 이름만 알고 부르기")
    value = client.send_task("email.send_welcome", args=[42]).get(timeout=WAIT_SECONDS)
    show("client.send_task('email.send_welcome', args=[42]).get()", value, "환영 메일을 보냈습니다 (사용자 42)")
    tasks_modules = sorted(name for name in sys.modules if name.startswith("practice") and name.endswith(".tasks"))
    show("이 프로세스가 import 한 실습의 tasks 모듈", tasks_modules, [], note="작업 코드 없이 이름만으로 불렀습니다")

    step("2. 이름을 주지 않은 작업의 이름은 '모듈.함수'")
    value = client.send_task("practice06.tasks.count_words", args=["이름 없는 작업도 이름은 있다"])
    show(
        "client.send_task('practice06.tasks.count_words', args=[...]).get()",
        value.get(timeout=WAIT_SECONDS),
        5,
    )

    step("3. 틀린 이름을 워커가 거절하면 돌아오는 NotRegistered")
    started = time.monotonic()
    result = client.send_task("email.send_welcom", args=[42])
    with scenario.raises(NotRegistered) as refused:
        result.get(timeout=WAIT_SECONDS)
    waited = time.monotonic() - started
    print(f"    client.send_task('email.send_welcom', ...).get() → {waited:.2f}초 뒤 NotRegistered({refused.exc})")
    print("    (워커 로그: Received unregistered task of type 'email.send_welcom')")
    expect("틀린 이름의 state", result.state, "FAILURE")

    step("4. 워커가 아는 이름들 (inspect().registered())")
    # 누구에게 묻는지(destination) 정하지 않았으므로, 워커가 몇인지 모르는 inspect는 적어도 timeout 동안 답을 모은다.
    replies = client.control.inspect(timeout=INSPECT_SECONDS).registered() or {}
    names = sorted({name for tasks in replies.values() for name in tasks if "email" in name or "practice06" in name})
    print(f"    {names}")
    expect("워커가 아는 이름", {"email.send_welcome", "practice06.tasks.count_words"} <= set(names), True)


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
