"""The error of a recommender used before it was fit."""
from __future__ import annotations

from ..exceptions import NotFittedError


def check_fitted(model, method: str) -> None:
    """Raise NotFittedError naming ``method`` unless ``model.fit`` has run."""
    if "item_factors_" not in vars(model):
        name = type(model).__name__
        raise NotFittedError(f"this {name} is not fitted: call {name}.fit(ratings) before "
                             f"{method}")
