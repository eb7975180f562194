"""Warnings and errors that randla raises on purpose (no randla imports: the lowest layer)."""


class AccuracyWarning(UserWarning):
    """A result that could not be certified to the accuracy asked for.

    Raised, for example, when a fixed-accuracy decomposition stops before its tolerance, when a
    tolerance lies below what the working precision can resolve, or when a parameter-choice
    rule picked a value it cannot vouch for. The message says what was asked, what was reached
    and why. Turn it into an error with ``warnings.simplefilter("error", randla.AccuracyWarning)``.
    """


class NotFittedError(ValueError, AttributeError):
    """A model's method called before ``fit``: a ValueError and an AttributeError, as
    scikit-learn's ``NotFittedError`` (so ``hasattr`` on a fitted-only property is False)."""
