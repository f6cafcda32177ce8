"""실습을 돌리는 데 필요한 배관: 서비스 점검, 워커 프로세스, 실습 실행기.

실행기(`python -m playground`), 테스트, 벤치마크가 모두 이 패키지 하나를 쓴다.
실습 패키지(practiceNN)는 이 패키지를 모른다(course.py 가 서비스 점검에 playground.services 를 쓸 뿐이다).
여기서는 실습을 모듈 이름으로만 다룬다.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# 서비스가 응답하지 않아 시작하지 못했을 때의 종료 코드. 실행기, 벤치마크, 테스트 세션이 쓴다.
EXIT_SERVICES_DOWN = 3


def exit_on_sigterm() -> None:
    """SIGTERM을 받으면 SystemExit을 낸다. 그러면 Ctrl-C(KeyboardInterrupt)처럼 finally 블록이 실행되어, 띄운
    프로세스를 정리할 수 있다.
    """
    import signal

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
