"""practice13의 상태 확인(probe). 배포 도구가 워커에게 살아 있는지(live), 일을 받을 수 있는지(ready) 묻는 방법이다.

`celery inspect ping` 은 브로커를 거쳐 모든 워커에 묻고 답을 기다린다. 그래서 느리고, 브로커가 멈추면 워커가
멀쩡해도 실패한다. 이 파일의 probe는 워커가 스스로 남기는 파일 두 개를 본다.
- live: 워커 메인 프로세스의 스레드가 LIVE_TOUCH_SECONDS 마다 갱신하는 파일이다. 워커가 멈추면(SIGSTOP, 교착)
  파일이 더는 갱신되지 않는다. 브로커가 멈춰도 스레드는 계속 갱신한다.
- ready: 컨슈머가 큐를 소비하기 시작하면 만들고, 멈추면 지우는 파일이다. Celery는 브로커 연결이 끊기면 컨슈머의
  단계들을 멈췄다가(stop) 다시 연결한 뒤 다시 시작한다(start). 그래서 브로커가 없는 동안에는 이 파일이 없다.

배포 도구가 실행하는 명령 (종료 코드 0이면 통과, 1이면 실패):
    python -m practice13.probe live
    python -m practice13.probe ready
파일은 PRACTICE13_PROBE_DIR(기본값 /tmp/practice13-probe)에 둔다. 워커와 probe가 같은 값을 써야 한다.
"""

import os
import sys
import threading
import time
from pathlib import Path

from celery import bootsteps

LIVE_TOUCH_SECONDS = 1  # live 파일을 갱신하는 간격
LIVE_MAX_AGE_SECONDS = 5  # live 파일을 이보다 오래 갱신하지 않았으면 워커가 멈춘 것으로 본다

PROBE_DIR = Path(os.environ.get("PRACTICE13_PROBE_DIR", "/tmp/practice13-probe"))
LIVE_FILE = PROBE_DIR / "live"
READY_FILE = PROBE_DIR / "ready"


class Liveness(bootsteps.StartStopStep):
    """워커(Worker 블루프린트)의 단계. 스레드 하나가 LIVE_TOUCH_SECONDS 마다 live 파일을 갱신한다."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._stopped = threading.Event()
        self._thread = None

    def start(self, worker):
        PROBE_DIR.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._touch, name="liveness", daemon=True)
        self._thread.start()

    def _touch(self):
        while not self._stopped.is_set():
            LIVE_FILE.touch()
            self._stopped.wait(LIVE_TOUCH_SECONDS)

    def stop(self, worker):
        self._stopped.set()
        LIVE_FILE.unlink(missing_ok=True)


class Readiness(bootsteps.StartStopStep):
    """컨슈머(Consumer 블루프린트)의 단계. 작업 큐를 소비하기 시작한 뒤에 ready 파일을 만들고, 멈추면 지운다."""

    requires = ("celery.worker.consumer.tasks:Tasks",)  # 큐를 소비하기 시작한 다음에 시작한다

    def start(self, consumer):
        PROBE_DIR.mkdir(parents=True, exist_ok=True)
        READY_FILE.touch()

    def stop(self, consumer):
        READY_FILE.unlink(missing_ok=True)

    def shutdown(self, consumer):
        READY_FILE.unlink(missing_ok=True)


def check(what):
    """probe 하나를 확인하고 (통과 여부, 찍을 메시지)를 돌려준다."""
    if what == "live":
        if not LIVE_FILE.exists():
            return False, f"살아 있지 않습니다. 파일이 없습니다: {LIVE_FILE}"
        age = time.time() - LIVE_FILE.stat().st_mtime
        if age > LIVE_MAX_AGE_SECONDS:
            return False, f"살아 있지 않습니다. 파일을 {LIVE_MAX_AGE_SECONDS}초 넘게 갱신하지 않았습니다: {LIVE_FILE}"
        return True, f"살아 있습니다. 파일을 {LIVE_MAX_AGE_SECONDS}초 안에 갱신했습니다: {LIVE_FILE}"
    if READY_FILE.exists():
        return True, f"준비되었습니다. 컨슈머가 큐를 소비하고 있습니다: {READY_FILE}"
    return False, f"준비되지 않았습니다. 컨슈머가 큐를 소비하고 있지 않습니다(브로커 연결이 없습니다): {READY_FILE}"


def main(argv):
    if argv not in (["live"], ["ready"]):
        print("쓰는 법: python -m practice13.probe live|ready", file=sys.stderr)
        return 2
    passed, message = check(argv[0])
    print(message)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
