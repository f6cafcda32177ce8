"""모든 테스트가 실제 RabbitMQ, PostgreSQL, Redis와 실제 `celery worker` 하위 프로세스를 쓴다."""

from __future__ import annotations

import compileall
import fcntl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

import global_config
from playground import EXIT_SERVICES_DOWN, PROJECT_ROOT, isolation
from playground.broker import ManagementError, queue_counts
from playground.lessons import lesson_workers, purge, worker_on_empty_queue
from playground.services import ensure_services, sqlalchemy_url
from playground.workers import Worker, running
from tests.readme import readme_workers

# 테스트는 대부분의 시간을 기다리며 보낸다(작업, 워커 기동과 종료). 그래서 2코어 기계에서도 코어 수보다 많은
# 프로세스가 이득이다. `uv run pytest -n N` 으로 바꾸고, `-p no:xdist` 면 한 프로세스에서 차례로 돈다.
# 실습 15개, 테스트 617개에서 잰 전체 시간은 프로세스 8개면 225초, 10개면 215초였다. 그동안 기계 전체(서비스 포함)의
# CPU는 두 코어의 78%, 84%가 바빴다. 긴 테스트를 먼저 나눠 준 뒤의 수치다(pytest_collection_modifyitems).
DEFAULT_TEST_PROCESSES = 10
# alone 테스트의 제한 시간: 다른 프로세스에서 돌고 있는 테스트가 끝나기를 기다리는 시간까지 든다.
ALONE_TIMEOUT_SECONDS = 300


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        if config.option.numprocesses is None:
            config.option.numprocesses = DEFAULT_TEST_PROCESSES
        if config.option.dist == "no":
            config.option.dist = "loadgroup"  # 모듈의 xdist_group 묶음을 한 프로세스에서 실행한다
        # 묶음은 모은 순서대로 나눠 준다(early가 맨 앞, alone이 맨 뒤, pytest_collection_modifyitems). xdist의 기본값은
        # 테스트가 많은 묶음부터 나눠 주어서, 테스트 셋짜리 alone 묶음이 한 개짜리 묶음 수백 개보다 먼저 나간다.
        config.option.loadscopereorder = False
        # 죽은 테스트 프로세스를 새로 띄우지 않는다: 그런 실행은 실패다(새 프로세스에는 준비된 자리도 없다).
        config.option.maxworkerrestart = 0


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    # xdist는 테스트 프로세스를 띄울 때 처음 받은 명령 줄 인자로 설정을 다시 만든다. 그래서 위에서 정한 `loadgroup` 이
    # 테스트 프로세스에는 가지 않고, xdist_group 표시가 무시된다(모듈의 테스트가 프로세스마다 흩어져 같은 워커를
    # 프로세스마다 또 띄운다). 조정 프로세스가 정한 분배 방식을 테스트 프로세스에 넘긴다.
    node.workerinput["dist"] = node.config.option.dist


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)
    if worker is not None and worker.get("dist") == "loadgroup":
        config.option.loadgroup = True  # xdist가 xdist_group 이름을 테스트 id에 붙이는 표시(xdist/remote.py)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        # xdist의 테스트 프로세스: 조정 프로세스가 서비스를 확인하고 자리를 만들어 두었다.
        isolation.use(worker["workerid"])
        return
    # 서비스가 없으면 테스트를 건너뛰지 않고, 무엇이 없는지 말하며 곧바로 실패한다(병렬이면 워커를 띄우기 전에).
    problems = ensure_services()
    if problems:
        pytest.exit(
            "서비스가 응답하지 않아 테스트를 시작할 수 없습니다.\n" + "\n".join(problems), returncode=EXIT_SERVICES_DOWN
        )
    # 테스트 프로세스마다 자기 가상 호스트, 데이터베이스, Redis 번호를 쓴다(playground/isolation.py).
    processes = getattr(config.option, "numprocesses", None) or 0
    slots = [f"gw{n}" for n in range(processes)] or ["main"]
    compiling = threading.Thread(target=_compile_once, args=(config,), daemon=True)
    compiling.start()  # 자리를 만드는 동안(네트워크를 기다리는 일) 함께 한다
    try:
        isolation.prepare(slots)
    except ManagementError as exc:
        pytest.exit(str(exc), returncode=EXIT_SERVICES_DOWN)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        # 예: CREATEDB 권한이 없는 역할. 실행기는 그런 역할로도 동작하지만 테스트는 자리마다 데이터베이스를 만든다.
        cause = getattr(exc, "orig", None) or exc
        pytest.exit(
            "테스트는 프로세스마다 PostgreSQL 데이터베이스를 지우고 새로 만듭니다(celery_jobs_main 등).\n"
            "POSTGRES_URL 의 역할에 CREATEDB 권한이 있어야 합니다.\n"
            f"  원인: {type(cause).__name__}: {str(cause).strip().splitlines()[0]}",
            returncode=EXIT_SERVICES_DOWN,
        )
    finally:
        compiling.join()
    if not processes:
        isolation.use("main")


def _compile_once(config: pytest.Config) -> None:
    """저장소의 파이썬 파일을 조정 프로세스에서 한 번 컴파일해 __pycache__ 에 둔다. 테스트 모듈은 assert를 다시 쓴다.

    `PYTHONDONTWRITEBYTECODE` 가 켜진 기계에서는 파이썬이 .pyc를 남기지 않는다(있는 것은 읽는다). 그러면 테스트 프로세스
    열 개와 그들이 띄우는 프로세스 수백 개(워커, call_tasks, 실행기)가 import 할 때마다 소스를 다시 컴파일한다.
    pytest도 같다. 테스트 모듈을 import 할 때 assert를 다시 쓰고(실패했을 때 값을 보여 주려고) 그 결과를 .pyc로
    남기는데, 남기지 못하면 테스트 프로세스마다 모든 모듈을 다시 쓴다. 모으기(collection)에 드는 CPU의 절반이 넘는
    일이다(프로세스마다 3.4초 대신 1.6초). 여기서 만든 .pyc는 파이썬과 pytest가 스스로 만드는 것과 같은 파일이고,
    원본이 바뀌면 다시 만든다.
    """
    # 맨 위의 모듈들(course.py, global_config.py)과 패키지들(실습, playground, tests, benchmarks). 설치된 패키지는 uv가
    # 설치할 때 컴파일했다(pyproject.toml 의 compile-bytecode).
    compileall.compile_dir(PROJECT_ROOT, maxlevels=0, quiet=1)
    for package in sorted(path.parent for path in PROJECT_ROOT.glob("*/__init__.py")):
        compileall.compile_dir(package, quiet=1)
    from _pytest.assertion import rewrite  # pytest의 내부 API다. pyproject.toml 이 pytest의 버전을 묶어 둔다

    state = config.stash.get(rewrite.assertstate_key, None)
    if state is None:  # --assert=plain: 다시 쓰지 않는다
        return
    for source in sorted(Path(__file__).parent.glob("test_*.py")):
        cache_dir = rewrite.get_cache_dir(source)
        pyc = cache_dir / (source.name[:-3] + rewrite.PYC_TAIL)
        if rewrite.try_makedirs(cache_dir) and rewrite._read_pyc(source, pyc, state.trace) is None:
            source_stat, code = rewrite._rewrite_test(source, config)
            rewrite._write_pyc(state, code, source_stat, pyc)


@pytest.hookimpl(tryfirst=True)  # xdist가 xdist_group 이름을 읽기 전에(xdist/remote.py) 표시를 더한다
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # 모듈 범위의 워커를 쓰는 모듈은 `pytestmark = pytest.mark.xdist_group(LESSON)` 으로 스스로 한 프로세스에 모인다
    # (아래 worker 같은 모듈 범위 fixture가 그 표시를 요구한다).
    # early 테스트는 맨 앞으로 보낸다. 오래 걸리는 것들이다: 한 프로세스에서 차례로 실행되는 긴 묶음(실행기 한 번으로
    # 모든 실습을 실행하는 test_scenarios, RabbitMQ 클러스터의 노드를 멈췄다 띄우는 practice14 등)이 먼저, 그다음에
    # 혼자 15초쯤 넘게 걸리는 테스트. 오래 걸리는 것이 먼저 시작해야, 다른 프로세스들이 짧은 테스트를 나누어 실행하는
    # 동안 함께 끝난다. xdist는 프로세스마다 테스트를 두세 개씩 미리 나눠 주므로, 늦게 나눠 준 긴 테스트는 다른
    # 프로세스가 모두 끝난 뒤에도 혼자 남는다.
    # alone 테스트는 맨 뒤로 보내고, 모듈의 묶음에서도 떼어 "alone" 묶음에 넣는다. 모듈의 묶음 안에 남으면 그 묶음을
    # 맡은 프로세스가 일찍부터 배타 잠금을 기다리며 놀게 된다(다른 프로세스가 모두 끝날 때까지). 떼어 낸 테스트는
    # 모듈 범위의 워커를 자기 프로세스에서 한 번 더 띄운다. 다른 테스트가 거의 끝났을 때 혼자 실행되므로, 남은
    # 테스트가 끝나기를 기다리는 시간까지 들도록 제한 시간을 넉넉히 준다.
    items.sort(key=_turn)
    for item in items:
        if item.get_closest_marker("alone") is not None:
            item.add_marker(pytest.mark.timeout(ALONE_TIMEOUT_SECONDS))
            item.add_marker(pytest.mark.xdist_group("alone"))


def _turn(item: pytest.Item) -> int:
    """나눠 줄 차례: 긴 묶음, 긴 테스트, 나머지, alone 테스트 순서. 같은 차례 안에서는 모은 순서를 지킨다."""
    if item.get_closest_marker("alone") is not None:
        return 3
    if item.get_closest_marker("early") is None:
        return 2
    return 0 if item.get_closest_marker("xdist_group") is not None else 1


def _module_lesson(request: pytest.FixtureRequest) -> str:
    """모듈 범위 fixture를 부른 테스트 모듈의 실습(LESSON).

    그 모듈에는 `LESSON` 과 xdist 묶음 표시(pytestmark)가 함께 있어야 한다. 하나라도 없으면 테스트를 실패시킨다.
    """
    module = request.module
    lesson = getattr(module, "LESSON", None)
    if lesson is None:
        pytest.fail(f"{module.__name__}: a module that uses the lesson's worker names it: LESSON = 'practiceNN'")
    if request.node.get_closest_marker("xdist_group") is None:
        # 표시가 없으면 이 모듈의 테스트가 여러 프로세스로 흩어져, 프로세스마다 같은 워커를 또 띄운다.
        pytest.fail(f"{module.__name__}: a module with a module-scoped worker says pytestmark = xdist_group(LESSON)")
    return lesson


@pytest.fixture(scope="module")
def worker(request: pytest.FixtureRequest) -> Iterator[Worker]:
    """모듈이 LESSON으로 정한 실습의 tasks.py 워커 하나. 큐를 비운 뒤 띄우고, 모듈의 테스트가 모두 끝나면 멈춘다.

    모듈에 WORKER_OPTIONS가 있으면 그 값(풀, 큐, 환경 변수 등)을 Worker에 그대로 넘긴다.
    """
    lesson = _module_lesson(request)
    with worker_on_empty_queue(lesson, **getattr(request.module, "WORKER_OPTIONS", {})) as started:
        yield started


@pytest.fixture(scope="module")
def readme_processes(request: pytest.FixtureRequest) -> Iterator[tuple[Worker, ...]]:
    """모듈이 LESSON으로 정한 실습 README의 '실행' 절에 적힌 워커 명령들을 글자 그대로 띄운다(tests/readme.py).

    띄우기 전에 큐를 비운다.
    """
    lesson = _module_lesson(request)
    purge(lesson)
    with running(*readme_workers(lesson)) as started:
        yield started


@pytest.fixture
def empty_queue(request: pytest.FixtureRequest) -> Iterator[str]:
    """모듈이 LESSON으로 정한 실습의 큐를 비우고 그 이름을 넘긴다. 그 큐를 소비하는 워커가 없는지도 확인한다.

    테스트가 끝나면 남은 메시지를 지운다.
    """
    lesson = getattr(request.module, "LESSON", None)
    if lesson is None:
        pytest.fail(f"{request.module.__name__}: a module that uses the lesson's queue names it: LESSON = 'practiceNN'")
    purge(lesson)  # 큐가 없으면 선언도 한다
    assert queue_counts(lesson) == (0, 0), "another consumer is on the lesson's queue"
    yield lesson
    purge(lesson)


@pytest.fixture(scope="module")
def lesson_processes(request: pytest.FixtureRequest) -> Iterator[tuple[Worker, ...]]:
    """모듈이 LESSON으로 정한 실습이 lesson.py 의 NEEDS에 적은 프로세스 모두(워커들과 beat). 큐를 비운 뒤
    실행기와 똑같이 띄운다.
    """
    lesson = _module_lesson(request)
    purge(lesson)
    with running(*lesson_workers(lesson)) as started:
        yield started


@pytest.fixture(autouse=True)
def _share_the_machine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`@pytest.mark.alone` 인 테스트는 다른 테스트가 하나도 돌지 않을 때 혼자 돈다(병렬 부하에서 지킬 수 없는
    시간 주장을 재는 테스트). 나머지 테스트는 서로 함께 돈다.

    모든 프로세스가 같은 파일에 flock을 건다: 보통 테스트는 공유 잠금, alone 테스트는 배타 잠금. alone 테스트는
    맨 뒤로 모아 두므로(pytest_collection_modifyitems) 다른 프로세스가 할 일을 다 끝낼 무렵 차례가 온다.
    """
    alone = request.node.get_closest_marker("alone") is not None
    # 이 세션의 프로세스들이 함께 보는 폴더: xdist면 프로세스마다의 임시 폴더의 부모, 혼자면 그 임시 폴더.
    basetemp = tmp_path_factory.getbasetemp()
    shared_dir = basetemp.parent if hasattr(request.config, "workerinput") else basetemp
    with open(shared_dir / "alone.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _engine(database: str | None = None) -> sqlalchemy.Engine:
    url = sqlalchemy_url(global_config.POSTGRES_URL)
    if database is not None:
        url = url.set(database=database)
    return sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def compose() -> dict:
    """docker-compose.yml 을 읽은 dict. 학습자가 쓰는 파일이므로 테스트는 이것으로 서비스를 띄우지 않고 내용만 본다."""
    import yaml

    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


@pytest.fixture
def results_db() -> Iterator[sqlalchemy.Connection]:
    """결과 백엔드 데이터베이스(celery_jobs)에 직접 붙은 연결: Celery가 무엇을 남겼는지 본다."""
    engine = _engine()
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def empty_database() -> Iterator[str]:
    """테이블이 하나도 없는 새 데이터베이스를 만들고, 그 POSTGRES_URL 을 넘긴다. 끝나면 지운다."""
    name = f"celery_fresh_{uuid.uuid4().hex[:10]}"
    admin = _engine(database="postgres")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy_url(global_config.POSTGRES_URL).set(database=name)
    try:
        yield "db+" + url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def table_names():
    """POSTGRES_URL 이 가리키는 데이터베이스의 테이블 이름들."""

    def names(postgres_url: str) -> set[str]:
        engine = sqlalchemy.create_engine(sqlalchemy_url(postgres_url), poolclass=NullPool)
        try:
            return set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()

    return names
