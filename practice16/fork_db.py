"""practice16: fork 전에 만든 데이터베이스 연결은 풀 프로세스들이 함께 쓴다.

웹 앱에서 흔히 하듯 모듈을 import할 때 SQLAlchemy 엔진을 만들고 한 번 연결해 본다. 워커는 이 모듈을 메인
프로세스에서 import하고(tasks.py 의 include), 그 뒤에 풀 프로세스들을 fork한다. 엔진의 연결 풀에 남아 있던 연결은
소켓째 자식들에게 복사된다. 그래서 자식들은 PostgreSQL 세션 하나를 함께 쓴다. 한 자식이 그 연결을 닫으면 다른
자식의 연결도 끊긴다.
고치려면 worker_process_init 시그널에 함수를 연결하고, 그 함수에서 engine.dispose(close=False) 를 부른다. Celery는
풀 프로세스가 시작할 때 이 시그널에 연결한 함수를 부른다. 그러면 자식은 물려받은 연결을 닫지 않고 연결 풀에서 버린
뒤, 자기 연결을 새로 연다.

tasks.py 의 앱으로 띄운 워커가 이 모듈의 작업도 불러온다. 따로 띄울 워커는 없다.
"""

import os
import time

import sqlalchemy
from celery.signals import worker_process_init

from global_config import POSTGRES_URL
from practice16.tasks import app

# 값을 읽은 뒤 작업이 이만큼 더 풀 프로세스를 붙잡는다. 그동안 보낸 다음 작업은 다른 풀 프로세스가 받는다.
HOLD_SECONDS = 0.5

DATABASE_URL = POSTGRES_URL.removeprefix("db+")
shared_engine = sqlalchemy.create_engine(DATABASE_URL)  # 고치지 않은 엔진
engine = sqlalchemy.create_engine(DATABASE_URL)  # 풀 프로세스마다 연결을 새로 여는 엔진


def backend_pid(which):
    """which 엔진의 연결이 붙은 PostgreSQL 세션의 pid(서버 프로세스 번호)를 돌려준다."""
    with which.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()


# import하면서 연결해 본다. 이 연결은 엔진의 연결 풀에 남는다. 워커에서는 메인 프로세스에 있는 엔진이다.
PARENT_BACKEND_PIDS = {"shared": backend_pid(shared_engine), "own": backend_pid(engine)}


@worker_process_init.connect
def own_connections(**_):
    # 풀 프로세스가 시작할 때 한 번 실행된다. close=False 면 물려받은 연결을 닫지 않고 연결 풀에서 버리기만 한다.
    # 닫으면 그 소켓을 함께 쓰는 부모와 다른 자식의 세션까지 끊긴다.
    engine.dispose(close=False)


@app.task(bind=True)
def backend_pids(self, hold=HOLD_SECONDS):
    # 이 풀 프로세스의 pid와, 두 엔진이 쓰는 PostgreSQL 세션의 pid를 돌려준다. 다 읽었으면 상태를 PROGRESS로 적고
    # hold초 동안 sleep한다. 호출하는 쪽은 PROGRESS를 본 뒤에 다음 작업을 보낸다. 그러면 두 풀 프로세스가 같은
    # 연결을 동시에 쓰지 않는다.
    pids = {"process": os.getpid(), "shared": backend_pid(shared_engine), "own": backend_pid(engine)}
    self.update_state(state="PROGRESS", meta=pids)
    time.sleep(hold)
    return pids


@app.task(bind=True)
def close_shared(self, hold=HOLD_SECONDS):
    # 고치지 않은 엔진의 연결을 닫는다. 그 소켓을 함께 쓰던 다른 풀 프로세스의 세션도 함께 닫힌다.
    shared_engine.dispose()
    self.update_state(state="PROGRESS")
    time.sleep(hold)
    return os.getpid()


@app.task
def query_shared():
    # 고치지 않은 엔진으로 쿼리 하나를 보낸다. 실패하면 예외의 종류와 메시지 첫 줄을 돌려준다.
    try:
        return {"process": os.getpid(), "shared": backend_pid(shared_engine)}
    except sqlalchemy.exc.DBAPIError as exc:
        return {"process": os.getpid(), "error": f"{type(exc.orig).__name__}: {str(exc.orig).splitlines()[0]}"}
