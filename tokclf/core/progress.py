"""Progress bars that cost nothing when hidden (tqdm is imported only when one is shown)."""

from __future__ import annotations

from typing import Any


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, show: bool, **tqdm_kwargs: Any) -> Any:
    """A tqdm bar over `total` items when `show`, else a no-op object with the same two methods."""
    if not show:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, **tqdm_kwargs)
