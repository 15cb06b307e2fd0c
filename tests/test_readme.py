"""README promises exactly two commands, and CI runs the test command verbatim."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", readme)


def test_two_commands_open_and_test():
    commands = _commands()
    assert len(commands) == 2, commands
    assert "jupyter lab" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _commands()[1] in ci


def test_syllabus_links_point_to_notebooks():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for link in re.findall(r"\]\((notebooks/[^)]+)\)", readme):
        assert (ROOT / link).is_file(), link
