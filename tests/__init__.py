# 테스트가 call_tasks 를 기다리는 상한. pytest-timeout(120초, pyproject.toml)보다 짧게 두어, 멈춘 call_tasks 는
# 죽이고 그때까지의 출력을 실패 메시지에 남긴다.
CALL_TIMEOUT_SECONDS = 90
