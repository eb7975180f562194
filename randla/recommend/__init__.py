"""Recommender systems on randomized SVD: rating files, PureSVD top-N, soft-impute rating
prediction with biases, fold-in of new users, and top-N / rating metrics.

Examples
--------
>>> from randla.recommend import PureSVD, SoftImpute, synthetic_ratings, metrics
>>> train, test = synthetic_ratings(400, 300, 12_000, rng=0).split(0.2, by="user", rng=0)
>>> top = PureSVD(10, rng=0).fit(train)
>>> metrics.evaluate(top, test).precision > 0.05
True
"""
from . import metrics
from ._fitted import NotFittedError
from .metrics import Evaluation, evaluate
from .puresvd import PureSVD
from .ratings import Ratings, load_ratings
from .softimpute import SoftImpute
from .store import RatingStore, RatingStoreOperator, open_ratings, save_ratings
from .synthetic import synthetic_ratings

__all__ = ["Ratings", "load_ratings", "PureSVD", "SoftImpute", "synthetic_ratings", "metrics",
           "evaluate", "Evaluation", "RatingStore", "RatingStoreOperator", "save_ratings",
           "open_ratings", "NotFittedError"]
