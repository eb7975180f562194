"""Online change-point detection with sketches: NEWMA (random features, constant memory and
time per sample) and the kernel Scan-B baseline."""
from ._common import ChangepointResult
from .newma import NEWMA, forgetting_factors
from .scanb import ScanB

__all__ = ["NEWMA", "ScanB", "ChangepointResult", "forgetting_factors"]
