"""The README's commands are the ones CI runs: its test command sits between markers that .ci/run reads."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _block(name: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- {name}:start -->\n```bash\n(.*?)```\n<!-- {name}:end -->", text, re.DOTALL)
    assert found, f"README.md has no ```bash block between <!-- {name}:start/end --> markers"
    return [line for line in found.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_the_test_command_is_one_line_that_installs_the_dev_extra_and_runs_pytest():
    lines = _block("test-command")
    assert lines == ['pip install -e ".[dev]" && python -m pytest']


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command:start" in ci and "python3 -m venv" in ci
    assert 'run_pytest "$test_command"' in ci
