"""Checks shared by the command-line tests: the files a command left behind, and the one-line
error contract (exit code 2, one ``Error: ...`` line naming the bad value, no traceback)."""


def files(directory):
    """{relative path: bytes} of every file below ``directory``."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def assert_one_error_line(result, *named, stdout_empty: bool = True):
    """Exit code 2 and one ``Error:`` line on stderr containing every text in ``named``."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for text in named:
        assert text in lines[0], result.stderr
    assert "Traceback" not in result.output
    if stdout_empty:
        assert result.stdout == "", result.stdout
