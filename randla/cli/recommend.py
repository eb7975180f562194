"""``randla recommend``: top-N items for a user from a ratings file (PureSVD), or the accuracy
of PureSVD and SoftImpute on a held-out file.

    randla recommend RATINGS --user ID [-n 10] [-k 20] [--seed S]
    randla recommend RATINGS --evaluate TEST [-n 10] [-k 20] [--seed S]

RATINGS and TEST are MovieLens u.data, ratings.dat, ratings.csv or any
``user,item,rating[,timestamp]`` text file (the separator is detected).
"""
from __future__ import annotations

import sys
import warnings

from .args import count_arg, error_message, one_line_warnings, seed_arg


def add_arguments(p):
    p.add_argument("ratings", metavar="RATINGS", help="ratings file (user, item, rating[, time])")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--user", metavar="ID", help="recommend for this user id")
    what.add_argument("--evaluate", metavar="TEST", help="held-out ratings to score the models on")
    p.add_argument("-n", type=count_arg(1), default=10, help="items to recommend (default 10)")
    p.add_argument("-k", "--rank", type=count_arg(1), default=20,
                   help="rank of the factorization (default 20)")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    return p


def run(args) -> int:
    warnings.showwarning = one_line_warnings("recommend")
    try:
        return _run(args)
    except (OSError, ValueError, TypeError, MemoryError) as e:
        print(f"randla recommend: error: {error_message(e)}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from ..recommend import PureSVD, SoftImpute, evaluate, load_ratings
    R = load_ratings(args.ratings)
    k = args.rank
    if k >= min(R.shape):    # not clamped: at min(users, items) PureSVD's scores are noise
        raise ValueError(f"-k {k} must be less than the numbers of users ({R.shape[0]}) and "
                         f"items ({R.shape[1]}) in {args.ratings}")
    model = PureSVD(k, rng=args.seed).fit(R)
    if args.user is not None:
        top = model.recommend(_user_row(R, args.user, args.ratings), n=args.n)[0]
        for item in R.items[top[top >= 0]]:
            print(item)
        return 0
    test = load_ratings(args.evaluate).align_to(R)
    top = evaluate(model, test, k=args.n)
    rmse = evaluate(SoftImpute(k, rng=args.seed).fit(R), test, k=args.n).rmse
    print(f"PureSVD(k={k}): precision@{args.n} {top.precision:.4f}  recall@{args.n} "
          f"{top.recall:.4f}  ndcg@{args.n} {top.ndcg:.4f}")
    print(f"SoftImpute(k={k}): RMSE {rmse:.4f}")
    return 0


def _user_row(R, user, path):
    """The row of the user id written ``user``, compared as the file's ids are read: as an
    integer only when the file's ids are integers and ``user`` is one written the same way."""
    user = user.strip()
    if R.users.dtype.kind in "iu":
        try:
            value = int(user)
        except ValueError:
            value = None
        if value is None or str(value) != user:
            raise ValueError(f"user id {user!r} is not in {path}")
        user = value
    try:
        return R.to_indices([user], None)[0]
    except ValueError:
        raise ValueError(f"user id {user!r} is not in {path}") from None
