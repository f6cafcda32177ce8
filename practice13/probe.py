"""practice13의 상태 확인(probe). 배포 도구가 워커에게 살아 있는지(live), 일을 받을 수 있는지(ready) 묻는 방법이다.

`celery inspect ping` 은 브로커를 거쳐 모든 워커에 묻고 답을 기다린다. 그래서 느리고, 브로커가 멈추면 워커가
멀쩡해도 실패한다. 이 파일의 probe는 워커가 스스로 남기는 파일 두 개를 본다.
- live: 워커 메인 프로세스의 스레드가 LIVE_TOUCH_SECONDS 마다 갱신하는 파일이다. 프로세스 전체가 멈추면(SIGSTOP)
  파일이 더는 갱신되지 않는다. 메인 스레드만 멈춘 것은 알아채지 못한다. 스레드는 따로 계속 갱신하기 때문이다.
  브로커가 멈춰도 스레드는 계속 갱신한다.
- ready: 작업 큐의 컨슈머가 만들어진 뒤(메시지를 받기 시작하기 직전에) 만들고, 멈출 때 지우는 파일이다. Celery는
  브로커 연결이 끊기면 컨슈머의 단계들을 멈췄다가(stop) 다시 연결한 뒤 다시 시작한다(start). 그래서 브로커가
  없는 동안에는 이 파일이 없다. ready probe는 live probe도 통과해야 통과한다. SIGKILL로 죽은 워커는 파일을 지우지
  못하지만, 남은 live 파일이 더 갱신되지 않으므로 두 probe 모두 곧 실패한다.

배포 도구가 실행하는 명령 (종료 코드 0이면 통과, 1이면 실패):
    python -m practice13.probe live
    python -m practice13.probe ready
파일은 PRACTICE13_PROBE_DIR(기본값 /tmp/practice13-probe) 아래, 워커의 노드 이름으로 된 디렉터리에 둔다.
그래서 한 기계의 워커 여러 개가 서로의 파일을 지우지 않는다. 노드 이름을 주지 않으면 probe는 `-n` 없이 띄운
워커의 노드 이름(celery@호스트 이름)을 본다. 다른 노드는 `python -m practice13.probe live 노드이름` 으로 본다.
"""

import os
import sys
import threading
import time
from pathlib import Path

from celery import bootsteps
from celery.utils.nodenames import default_nodename

LIVE_TOUCH_SECONDS = 1  # live 파일을 갱신하는 간격
LIVE_MAX_AGE_SECONDS = 5  # live 파일을 이보다 오래 갱신하지 않았으면 워커가 멈춘 것으로 본다

PROBE_DIR = Path(os.environ.get("PRACTICE13_PROBE_DIR", "/tmp/practice13-probe"))
DEFAULT_NODE = default_nodename(None)  # -n 없이 띄운 워커의 노드 이름: celery@호스트 이름


def live_file(node):
    return PROBE_DIR / node / "live"


def ready_file(node):
    return PROBE_DIR / node / "ready"


class Liveness(bootsteps.StartStopStep):
    """워커(Worker 블루프린트)의 단계. 스레드 하나가 LIVE_TOUCH_SECONDS 마다 live 파일을 갱신한다."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._stopped = threading.Event()
        self._thread = None
        self._file = None

    def start(self, worker):
        self._file = live_file(worker.hostname)
        self._file.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._touch, name="liveness", daemon=True)
        self._thread.start()

    def _touch(self):
        while not self._stopped.is_set():
            self._file.touch()
            self._stopped.wait(LIVE_TOUCH_SECONDS)

    def stop(self, worker):
        self._stopped.set()
        if self._file is not None:
            self._file.unlink(missing_ok=True)


class Readiness(bootsteps.StartStopStep):
    """컨슈머(Consumer 블루프린트)의 단계. 작업 큐의 컨슈머가 만들어진 뒤에 ready 파일을 만들고, 멈출 때 지운다."""

    requires = ("celery.worker.consumer.tasks:Tasks",)  # 작업 큐의 컨슈머를 만드는 단계 다음에 시작한다

    def start(self, consumer):
        path = ready_file(consumer.hostname)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def stop(self, consumer):
        ready_file(consumer.hostname).unlink(missing_ok=True)

    def shutdown(self, consumer):
        ready_file(consumer.hostname).unlink(missing_ok=True)


def check(what, node=DEFAULT_NODE):
    """노드 하나의 probe 하나를 확인하고 (통과 여부, 찍을 메시지)를 돌려준다."""
    if what == "live":
        path = live_file(node)
        if not path.exists():
            return False, f"살아 있지 않습니다. 파일이 없습니다: {path}"
        age = time.time() - path.stat().st_mtime
        if age > LIVE_MAX_AGE_SECONDS:
            return False, f"살아 있지 않습니다. 파일을 {LIVE_MAX_AGE_SECONDS}초 넘게 갱신하지 않았습니다: {path}"
        return True, f"살아 있습니다. 파일을 {LIVE_MAX_AGE_SECONDS}초 안에 갱신했습니다: {path}"
    alive, message = check("live", node)
    if not alive:  # 멈추거나 SIGKILL로 죽은 워커가 남긴 ready 파일은 믿지 않는다
        return False, f"준비되지 않았습니다. {message}"
    path = ready_file(node)
    if path.exists():
        return True, f"준비되었습니다. 컨슈머가 큐를 소비하고 있습니다: {path}"
    return False, f"준비되지 않았습니다. 컨슈머가 큐를 소비하고 있지 않습니다(브로커 연결이 없습니다): {path}"


def main(argv):
    if len(argv) not in (1, 2) or argv[0] not in ("live", "ready"):
        print("쓰는 법: python -m practice13.probe live|ready [노드 이름]", file=sys.stderr)
        return 2
    passed, message = check(*argv)
    print(message)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
