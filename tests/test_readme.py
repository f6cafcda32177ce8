"""README 들(최상위와 실습마다, 한·영)의 링크, 명령, 설정 조각이 실제 실습, 모듈, 실행기, CI와 맞는지 확인한다.

실습 폴더의 모양(파일, NEEDS, '실행' 블록, 출력 예시 블록, 실습 목록의 행)은 playground/check.py 의 검사가
맡는다(tests/test_check.py). 여기에는 check가 알 수 없는 것만 있다.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys

import pytest

from playground import PROJECT_ROOT
from playground.lessons import available_lessons
from playground.readme import (
    PLACEHOLDER,
    README_FILES,
    block_commands,
    code_blocks,
    commands,
    headings,
    inline_code,
    lesson_readmes,
    links,
    prose,
    readme,
    readme_pairs,
    sample_mismatches,
    sample_outputs,
    section,
)
from playground.services import SERVICES
from tests import QUICK_START_ARGS
from tests.readme import parse

# README의 명령이 부르는 프로그램. 새 프로그램이 README에 들어오면 여기에 넣고 확인 방법도 정한다.
# uvicorn은 practice16의 웹 서버다. tests/test_practice16.py 가 README의 명령 그대로 띄워 본다.
KNOWN_PROGRAMS = {"docker", "uv", "python", "celery", "curl", "export", "rabbitmqctl", "ps", "uvicorn"}


def github_slug(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def program_of(command: str) -> list[str]:
    words = shlex.split(command)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words.pop(0)
    return words


def quick_start(name: str) -> list[str]:
    """'빠른 시작'(영어판 'Quick start') 절의 첫 bash 블록의 명령들."""
    title = {"README.md": "빠른 시작", "README.en.md": "Quick start"}[name]
    return block_commands(code_blocks(section(readme(name), title), "bash")[0])


ALL_READMES = [name for pair in readme_pairs(available_lessons()) for name in pair]


@pytest.fixture(params=README_FILES)
def name(request) -> str:
    """최상위 README 하나."""
    return request.param


@pytest.fixture(params=ALL_READMES)
def any_readme(request) -> str:
    """최상위 README나 실습 README 하나."""
    return request.param


def test_the_front_page_is_short_and_explains_celery_before_the_lessons(name):
    text = readme(name)
    assert len(text.splitlines()) < 200
    glance = {"README.md": "## Celery 한눈에 보기", "README.en.md": "## Celery at a glance"}[name]
    lessons = {"README.md": "## 실습 목록", "README.en.md": "## Lessons"}[name]
    assert text.index(glance) < text.index("```mermaid") < text.index(lessons)
    # 실습 목록은 Celery 설명과 두 명령 바로 뒤에 온다: 목록이 50줄 안에서 시작하고, 마지막 실습까지 75줄 안에 나온다.
    assert text[: text.index(lessons)].count("\n") < 50
    assert text[: text.index("[practice12]")].count("\n") < 75


EXPERIMENTS = {  # 최상위 README가 "직접 해 보기 절이 있다"고 말하는 문장과, 실습 README의 그 절의 제목
    "README.md": ("직접 해 볼 실험을 모은 `직접 해 보기` 절", "직접 해 보기"),
    "README.en.md": ("a `Try it by hand` section", "Try it by hand"),
}


def test_every_lesson_the_front_page_names_for_experiments_has_that_section(name):
    sentence, heading = EXPERIMENTS[name]
    paragraph = next(p for p in readme(name).split("\n\n") if sentence in p.replace("\n", " "))
    named = re.findall(r"practice\d\d", paragraph)
    assert named
    language = README_FILES.index(name)
    for lesson in named:
        titles = [h.title for h in headings(readme(lesson_readmes(lesson)[language])) if h.level == 2]
        assert any(title == heading or title.startswith(f"{heading}:") for title in titles), lesson


def _anchors(path) -> set[str]:
    return {github_slug(heading.title) for heading in headings(path.read_text())}


def test_every_link_points_at_a_file_and_heading_that_exist(any_readme):
    # [글](#제목), [글](다른/파일.md), [글](파일.md#제목), ![그림](그림.png): 파일이 있고, 제목이 그 파일에 있다.
    # http 링크는 보지 않는다.
    here = PROJECT_ROOT / any_readme
    local = [link for link in links(here.read_text()) if not link.startswith("http")]
    assert local
    broken = []
    for link in local:
        path, _, anchor = link.partition("#")
        target = (here.parent / path).resolve() if path else here
        if not target.exists() or (anchor and anchor not in _anchors(target)):
            broken.append(link)
    assert broken == []


def test_every_command_in_a_code_block_is_one_we_check(any_readme):
    programs = {program_of(command)[0] for command in commands(readme(any_readme))}
    assert programs <= KNOWN_PROGRAMS, programs - KNOWN_PROGRAMS


def test_every_module_the_readme_runs_exists(any_readme):
    text = readme(any_readme)  # 코드 블록과 본문 속 `…` 모두
    modules = set(re.findall(r"python -m ([\w.]+)", text)) | set(re.findall(r"celery -A ([\w.]+)", text))
    assert modules
    if any_readme in README_FILES:
        assert {"playground", "practice00.call_tasks", "practice00.tasks"} <= modules
    if any_readme.startswith("docs/runner"):
        assert {"benchmarks.course_speed", "benchmarks.worker_startup", "benchmarks.failure_messages"} <= modules
    missing = [m for m in sorted(modules) if importlib.util.find_spec(m) is None]
    assert missing == []


def test_every_celery_command_is_accepted_by_this_celery():
    # 옵션과 인자를 그대로 둔 채 --help 를 붙인다: 모르는 하위 명령이나 옵션이면 celery가 거절한다(종료 코드 2).
    # 모든 README의 명령을 파이썬 프로세스 하나 안에서 celery의 CLI로 판정한다(tests/celery_cli_check.py).
    every = [c for name in ALL_READMES for c in commands(readme(name))]
    celery_commands = sorted({c for c in every if program_of(c)[0] == "celery"})
    assert celery_commands
    parsed = [parse(command) for command in celery_commands]
    requests = [{"env": p.env, "args": p.argv[p.argv.index("celery") + 1 :]} for p in parsed]
    run = subprocess.run(
        [sys.executable, "-m", "tests.celery_cli_check"], input=json.dumps(requests), cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for command, answer in zip(celery_commands, json.loads(run.stdout), strict=True):
        assert answer["returncode"] == 0, f"{command}\n{answer['stdout']}{answer['stderr']}"
        assert "Usage:" in answer["stdout"]


def test_the_celery_command_check_rejects_an_unknown_option_and_subcommand():
    # 위 판정이 거절할 수 있다는 것: 모르는 옵션과 하위 명령은 종료 코드 2.
    requests = [
        {"env": {}, "args": ["-A", "practice00.tasks", "worker", "--no-such-option"]},
        {"env": {}, "args": ["-A", "practice00.tasks", "no-such-command"]},
        {"env": {}, "args": ["-A", "practice00.tasks", "worker", "--loglevel=info"]},
    ]
    run = subprocess.run(
        [sys.executable, "-m", "tests.celery_cli_check"], input=json.dumps(requests), cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert [answer["returncode"] for answer in json.loads(run.stdout)] == [2, 2, 0]


def test_quick_start_is_what_the_runner_ci_and_compose_do(name):
    # 새로 클론한 저장소에서 두 명령: uv run이 환경을 만들고, 실행기와 테스트가 서비스를 확인한다(uv sync는 없다).
    steps = quick_start(name)
    assert steps == ["uv run python -m playground all", "uv run pytest"]
    # 실행기가 docker compose로 띄우는 서비스 이름은 docker-compose.yml 의 서비스 이름이다.
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    for service in SERVICES:
        assert re.search(rf"^  {service.compose_service}:$", compose, re.MULTILINE)
    # CI는 README가 말하는 테스트 명령으로 끝난다.
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "uv run pytest"
    assert "uv sync" not in ci
    assert "uv run pytest" in commands(readme(name))


def test_the_runner_command_in_the_quick_start_is_the_one_the_tests_run(name):
    runner = parse(quick_start(name)[0].removeprefix("uv run "))
    assert runner.argv == [sys.executable, "-m", "playground", *QUICK_START_ARGS]


@pytest.mark.parametrize("language", [0, 1], ids=["ko", "en"])
def test_every_app_conf_snippet_sets_what_the_lesson_app_really_has(language):
    # 실습 README의 `app.conf.update(...)` 조각을 새 앱에 그대로 실행해, 그 실습 앱의 설정과 같은지 본다.
    # 조각의 첫 줄이 `# practiceNN/모듈.py` 이면 그 모듈의 앱과 비교한다(practice12의 Redis 브로커 앱).
    from celery import Celery
    from celery.schedules import crontab
    from kombu import Exchange, Queue

    checked = 0
    for lesson in available_lessons():
        text = readme(lesson_readmes(lesson)[language])
        for block in code_blocks(text, "python"):
            if "app.conf.update(" not in block:
                continue
            named = re.match(rf"# {lesson}/(\w+)\.py\n", block)
            lesson_conf = importlib.import_module(f"{lesson}.{named.group(1) if named else 'tasks'}").app.conf
            app = Celery("readme", set_as_current=False)
            before = dict(app.conf.changes)
            exec(block, {"app": app, "Queue": Queue, "Exchange": Exchange, "crontab": crontab})
            changed = {key for key, value in app.conf.changes.items() if before.get(key, object()) != value}
            assert changed
            for key in changed:
                assert app.conf[key] == lesson_conf[key], (lesson, key)
            checked += 1
    assert checked >= 2


def _without_comments(block: str) -> str:
    return "\n".join(re.sub(r"\s*#.*$", "", line) for line in block.splitlines()).strip()


@pytest.mark.parametrize("pair", readme_pairs(available_lessons()), ids=lambda pair: pair[0])
def test_the_english_readme_is_in_step_with_the_korean_one(pair):
    korean, english = readme(pair[0]), readme(pair[1])
    # 같은 절 구조
    assert [h.level for h in headings(english)] == [h.level for h in headings(korean)]
    # 같은 명령을 같은 순서로 (주석은 번역되므로 빼고)
    assert commands(english) == commands(korean)
    # 같은 코드와 같은 출력 예시
    assert [_without_comments(b) for b in code_blocks(english, "python")] == [
        _without_comments(b) for b in code_blocks(korean, "python")
    ]
    assert code_blocks(english, "text") == code_blocks(korean, "text")
    # 본문 속 명령과 숫자(측정값, 설정값)도 같다
    inline = re.compile(r"(?:uv run )?python -m |celery -A ")
    assert sorted(c for c in inline_code(english) if inline.match(c)) == sorted(
        c for c in inline_code(korean) if inline.match(c)
    )
    number = r"(?<![\d.])\d+\.\d+(?![\d.])"
    assert sorted(re.findall(number, prose(english))) == sorted(re.findall(number, prose(korean)))


@pytest.mark.parametrize("language", [0, 1], ids=["ko", "en"])
def test_a_changed_value_in_a_sample_block_is_caught(language):
    # 예시의 ‹…› 를 값으로 채운 출력과는 맞고, 예시에서 값 하나(숫자 하나)만 바꿔도 맞지 않는다.
    for lesson in available_lessons():
        (sample,) = sample_outputs(readme(lesson_readmes(lesson)[language]))
        output = "\n" + sample.replace(PLACEHOLDER, "7f3a") + "\n모든 호출이 README에 적힌 대로 동작했습니다.\n"
        assert sample_mismatches(sample, output) == [], lesson
        digit = list(re.finditer(r"\d", sample))[-1]  # 예시의 마지막 숫자 하나
        changed = sample[: digit.start()] + str((int(digit.group()) + 1) % 10) + sample[digit.end() :]
        assert sample_mismatches(changed, output) != [], lesson


def test_the_front_page_names_every_lesson_with_a_try_it_by_hand_section():
    # 첫 페이지: "practice07, …의 README에는 직접 해 볼 실험을 모은 `직접 해 보기` 절도 있습니다."
    with_section = {
        lesson
        for lesson in available_lessons()
        if any(h.title.startswith("직접 해 보기") for h in headings(readme(f"{lesson}/README.md")))
    }
    for path, pattern in (
        ("README.md", r"^(practice\d\d(?:, practice\d\d)*)의 README에는 직접 해 볼 실험"),
        ("README.en.md", r"^The READMEs of ((?:practice\d\d(?:,| and) )+practice\d\d) also have a `Try it by hand`"),
    ):
        named = re.search(pattern, readme(path), re.MULTILINE)
        assert named, path
        assert set(re.findall(r"practice\d\d", named.group(1))) == with_section, path
