"""Helpers shared by the exercise tests: run a checker and read its verdict."""

from course_lib.exercises import check


def run_check(name, fn, capsys):
    """(verdict as bool, the text check() printed) of check(name, fn)."""
    capsys.readouterr()
    verdict = check(name, fn)
    return bool(verdict), capsys.readouterr().out


def assert_named_mistake(name, fn, phrase, capsys):
    """check(name, fn) fails, and its short verdict names ``phrase`` and points to the hint."""
    ok, out = run_check(name, fn, capsys)
    assert ok is False, out
    first = out.splitlines()[0]
    assert first.startswith(f"❌ {name}:"), out
    assert phrase in first, out
    assert f'hint("{name}")' in out
    assert len(out.splitlines()) <= 4
    return out
