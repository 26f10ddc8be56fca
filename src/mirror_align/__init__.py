"""mirror-align: embodied representation alignment with mirror neurons.

The method lives in :mod:`mirror_align.align` and imports no concrete model:

>>> from mirror_align.align import Aligner
"""

__version__ = "0.1.0"
