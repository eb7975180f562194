"""A LinearOperator that counts its products, for tests of the passes rsvd reports."""
import scipy.sparse.linalg as spla


class CountedOperator(spla.LinearOperator):
    """A as a LinearOperator (no Frobenius norm known) that counts its products with A and
    A^H."""

    def __init__(self, A):
        super().__init__(A.dtype, A.shape)
        self.A, self.count = A, 0

    def _matmat(self, X):
        self.count += 1
        return self.A @ X

    def _rmatmat(self, Y):
        self.count += 1
        return self.A.conj().T @ Y

    _matvec = _matmat
    _rmatvec = _rmatmat
