"""모든 실습의 call_tasks.py 가 함께 쓰는 작은 틀.

- step(): 단계 제목을 찍는다.
- expect(): 배운 대로 나왔는지 확인한다. 다르면 표시해 두었다가 종료 코드 1로 알린다.
- run(): 시나리오를 돌리고, 워커나 서비스가 없을 때 traceback 대신 무엇을 켜야 하는지 말해 준다.

Celery를 배우는 데 이 파일을 읽을 필요는 없다. 실습 폴더와 global_config.py 로 충분하다.
"""

import redis.exceptions
from celery.exceptions import TimeoutError as CeleryTimeoutError
from kombu.exceptions import OperationalError as BrokerError
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.exc import OperationalError as DatabaseError

# 정상이라면 결과는 몇 초 안에 온다. 이만큼 기다려도 안 오면 워커가 없다고 본다.
RESULT_TIMEOUT = 10


class Scenario:
    def __init__(self, app, worker_commands=None):
        self.app = app
        self.lesson = app.main
        self.worker_commands = worker_commands or [f"celery -A {self.lesson}.tasks worker --loglevel=info"]
        self.surprises = []

    def step(self, title):
        print(f"\n[{title}]")

    def expect(self, what, actual, expected):
        if actual != expected:
            self.surprises.append(what)
            print(f"    !! 예상과 다름: {what} = {actual!r} (예상: {expected!r})")

    def run(self, scenario):
        """scenario() 를 돌리고 종료 코드를 돌려준다: 모두 배운 대로면 0, 아니면 1."""
        try:
            scenario()
        except CeleryTimeoutError:
            print(f"\n결과가 {RESULT_TIMEOUT}초 안에 오지 않았습니다. {self.lesson} 워커가 돌고 있나요?")
            print("다른 터미널에서 워커를 띄우세요:")
            for command in self.worker_commands:
                print(f"    {command}")
            print(f"(이미 보낸 작업은 {self.lesson} 큐에 남아 있다가, 워커가 뜨면 실행됩니다.)")
            return 1
        except BrokerError as exc:
            return self._unreachable("브로커 RabbitMQ", self.app.conf.broker_url, "rabbitmq", exc)
        except DatabaseError as exc:
            return self._unreachable("결과 백엔드 PostgreSQL", self.app.conf.result_backend, "postgres", exc)
        except redis.exceptions.ConnectionError as exc:
            return self._unreachable("결과 백엔드 Redis", self.app.conf.result_backend, "redis", exc)
        if self.surprises:
            print(f"\n예상과 다른 결과 {len(self.surprises)}개: {', '.join(self.surprises)}")
            return 1
        print("\n모든 호출이 README 에 적힌 대로 동작했습니다.")
        return 0

    def _unreachable(self, what, url, compose_service, exc):
        print(f"\n{what}({maybe_sanitize_url(url)})에 연결할 수 없습니다:")
        print(f"    {type(exc).__name__}: {(str(exc).strip() or '?').splitlines()[0]}")
        print(f"켜세요:  docker compose up -d {compose_service}")
        return 1
