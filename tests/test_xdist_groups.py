"""xdist_group 표시가 정말로 한 모듈의 테스트를 한 테스트 프로세스에 모으는가. 테스트를 나눠 주는 순서.

모듈 범위의 워커를 쓰는 모듈은 이 표시에 기댄다. 모이지 않으면 아무것도 실패하지 않은 채 프로세스마다 같은 워커를
또 띄운다(pytest 9.2와 xdist 3.8이 그렇다, pyproject.toml). 그래서 두 테스트로 확인한다. 첫 테스트가 자기 프로세스를
적고, 둘째 테스트가 같은 프로세스에서 도는지 본다. 흩어지면 둘째가 먼저 돌거나 다른 프로세스에서 돈다.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("xdist-groups")


@pytest.fixture
def note(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    # 이 세션의 프로세스들이 함께 보는 폴더(conftest.py 의 _share_the_machine 과 같은 곳)에 둔 파일 하나.
    basetemp = tmp_path_factory.getbasetemp()
    shared = basetemp.parent if hasattr(request.config, "workerinput") else basetemp
    return shared / f"xdist-group-{os.environ.get('PYTEST_XDIST_TESTRUNUID', 'main')}"


def test_the_first_test_of_a_group_notes_its_process(note):
    note.write_text(str(os.getpid()))


def test_the_second_test_of_the_group_runs_after_it_in_the_same_process(note):
    assert note.exists(), "the group's second test ran before its first: the tests were not kept together"
    assert note.read_text() == str(os.getpid()), "the group's tests ran in different test processes"


def test_long_groups_go_out_first_then_long_tests_then_the_rest_then_alone_tests(request: pytest.FixtureRequest):
    # 나눠 주는 순서(tests/conftest.py 의 _turn): 모은 테스트 전체가 그 차례대로 늘어서 있다.
    from tests.conftest import _turn

    turns = [_turn(item) for item in request.session.items]
    assert turns == sorted(turns)
    assert _turn(request.node) == 2  # early도 alone도 아닌 보통 테스트


def test_every_test_module_has_its_rewritten_assertions_cached_before_the_test_processes_collect():
    # 조정 프로세스가 테스트 프로세스를 띄우기 전에 만들어 둔다(conftest.py 의 _rewrite_test_modules_once).
    from _pytest.assertion.rewrite import PYC_TAIL, get_cache_dir

    tests = Path(__file__).parent
    missing = [
        source.name
        for source in sorted(tests.glob("test_*.py"))
        if not (get_cache_dir(source) / (source.name[:-3] + PYC_TAIL)).is_file()
    ]
    assert missing == []
