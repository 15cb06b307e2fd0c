"""README promises exactly two commands, CI runs the test command verbatim, and the course's order
(05 for PyTorch beginners, then 01 → 02 → 03 → 04) is the same in README, its syllabus and every notebook.

The two commands are README's two ```bash blocks; the per-platform variants under "Start on your
machine" use other fences (```sh, ```powershell) on purpose, so that they are not counted here.
"""

import json
import pathlib
import re

from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# The course's order: the lesson a PyTorch beginner starts with, then the rest in sequence.
ORDER = ["05_pytorch_basics", "01_attention", "02_transformer", "03_gpt", "04_bert", "06_frameworks"]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", _readme())


def _section(text: str, heading: str) -> str:
    """The text under a '## ' heading, up to the next '## ' heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def _torch_pin() -> str:
    """The exact torch version pyproject.toml pins ("torch==X")."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pins = re.findall(r'"torch==([^"]+)"', pyproject)
    assert len(pins) == 1, f"pyproject.toml should pin torch exactly once with ==, found {pins}"
    return pins[0]


def _next_paragraph(notebook: str) -> str:
    """The last markdown paragraph of a notebook that says what comes next."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    paragraphs = [p for c in cells if c["cell_type"] == "markdown"
                  for p in "".join(c["source"]).split("\n\n")
                  if re.match(r"\*\*(Next|Where to go next|What comes next)\b", p.strip())]
    assert paragraphs, f"{notebook} has no paragraph starting **Next** / **Where to go next** / **What comes next**"
    return paragraphs[-1]


def test_two_commands_open_and_test():
    commands = _commands()
    assert len(commands) == 2, commands
    assert "jupyter lab" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _commands()[1] in ci


def test_syllabus_links_point_to_notebooks():
    for link in re.findall(r"\]\((notebooks/[^)]+)\)", _readme()):
        assert (ROOT / link).is_file(), link


def test_first_command_opens_the_first_lesson():
    first = _commands()[0]
    assert first.endswith(f"jupyter lab notebooks/{ORDER[0]}.ipynb"), first
    assert (ROOT / "notebooks" / f"{ORDER[0]}.ipynb").is_file()


def test_first_command_installs_the_pinned_cpu_torch_before_the_requirements():
    # Without the version, the CPU index gives its newest torch, which misses the pin, and the
    # next pip replaces it with PyPI's CUDA build (2.7 GB on Linux): the version must be the pin.
    first, pin = _commands()[0], _torch_pin()
    cpu_step = f"pip install torch=={pin} --index-url {CPU_INDEX}"
    assert cpu_step in first, f"the first command should contain {cpu_step!r}: {first}"
    assert first.index(cpu_step) < first.index("pip install -r requirements.txt"), first


def test_every_torch_requirement_accepts_the_cpu_build():
    # The CPU wheel is "X+cpu"; the requirements must accept it so that pip keeps it (PEP 440:
    # "==X" matches "X+cpu", "==X+cu130" would not).
    pin = _torch_pin()
    lines = [line.split("#")[0].strip() for name in ("requirements.txt", "requirements-dev.txt")
             for line in (ROOT / name).read_text(encoding="utf-8").splitlines()]
    lines += re.findall(r'"(torch[^"]*)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    torch_reqs = [Requirement(line) for line in lines if re.match(r"torch\b(?![-_])", line)]
    assert torch_reqs, "no torch requirement found"
    for req in torch_reqs:
        assert req.specifier.contains(f"{pin}+cpu"), f"{req} rejects the CPU build {pin}+cpu"


def test_readme_states_the_order_and_where_pytorch_users_start():
    start = _section(_readme(), "Start")
    order = " → ".join(name[:2] for name in ORDER)
    assert order in start, f"README's Start should state the order {order!r}"
    assert f"notebooks/{ORDER[1]}.ipynb" in start, "say where someone who knows PyTorch starts"
    assert "### Start on your machine" in start


def test_syllabus_lists_the_lessons_in_course_order():
    syllabus = _section(_readme(), "Syllabus")
    rows = re.findall(r"^\| \[[^\]]+\]\(notebooks/([^)]+)\.ipynb\)", syllabus, flags=re.MULTILINE)
    assert rows == ORDER, rows


def test_each_lesson_names_the_next_one():
    for lesson, following in zip(ORDER, ORDER[1:]):
        paragraph = _next_paragraph(lesson)
        assert re.search(rf"\bnotebook {following[:2]}\b", paragraph, flags=re.IGNORECASE), \
            f"{lesson}'s next should be notebook {following[:2]}: {paragraph[:200]}"


def test_the_last_lesson_sends_nobody_back():
    # the last lesson's "what comes next" must not present another lesson of the course as the next one.
    paragraph = _next_paragraph(ORDER[-1])
    named = re.findall(r"\bnotebook (\d\d)\b", paragraph, flags=re.IGNORECASE)
    assert not named, f"{ORDER[-1]}'s next names notebook(s) {named}: {paragraph[:200]}"
