"""Errors users see. Each says what went wrong, where (file, row/line, key) and how to fix it.

One exception family, so the CLI prints them without a traceback and exits non-zero. Like spaCy's
errors catalogue, every raise site carries a stable code (`code="E2004"`) that a user can search
for: docs/errors.md lists each code with its message and fix. The messages stay at their raise
sites (they need the local values); the catalogue is generated from those sites by
`scripts/errors_catalogue.py`, and `tests/test_errors_catalogue.py` fails when a site has no code,
two share one, or the page is stale.
"""

from __future__ import annotations


class TokclfError(Exception):
    """Base class for every error tokclf raises on purpose (bad input, bad params, bad env)."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None,
                 code: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        self.code = code
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        parts = [f"[{self.code}] {head}" if self.code else head]
        if self.fix:
            parts.append(f"  How to fix: {self.fix}")
        return "\n".join(parts)


class ParamsError(TokclfError):
    """Invalid or contradictory parameters (unknown key, impossible combination)."""


class DataError(TokclfError):
    """Input data that cannot be read or does not make sense (malformed file, missing column)."""


class ValidationFailed(TokclfError):
    """Data validation found hard errors; `problems` holds each one (file, row/line, message)."""

    def __init__(self, problems: list[str], *, report_path: str | None = None, code: str | None = None) -> None:
        self.problems = problems
        self.report_path = report_path
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(
            f"data validation failed with {len(problems)} error(s):\n{shown}{more}",
            fix="correct the rows named above (or run `tokclf validate` to see the full report).",
            code=code,
        )


class EnvironmentProblem(TokclfError):
    """The machine cannot do what was asked (fp16 without a GPU, a slow tokenizer, ...)."""
