"""테스트들이 함께 쓰는 값. 테스트 모듈 하나의 모양은 CONTRIBUTING.md "목록"의 5번 항목(테스트)에 있다."""

# 테스트가 call_tasks 를 기다리는 상한. pytest-timeout(120초, pyproject.toml)보다 짧게 두어, 멈춘 call_tasks 는
# 먼저 죽이고 그때까지의 출력을 실패 메시지에 남긴다.
CALL_TIMEOUT_SECONDS = 90

# 최상위 README '빠른 시작'의 실행기 명령(`uv run python -m playground all`)의 인자. 테스트는 그 명령을 그대로 실행한다.
QUICK_START_ARGS = ("all",)

# 테스트가 결과나 로그 한 줄을 기다리는 상한(get(timeout=…), wait_until). 정상이라면 병렬 부하에서도 훨씬 빨리 온다.
WAIT_SECONDS = 20
