"""Orchestration of whole experiments, apart from evaluation (``eval/``) and training (``train/``).

* :mod:`.reproduce`: ``reproduce`` and ``ablate``, the stages in order;
* :mod:`.manifest`: the runs an experiment makes and ``manifest.json``;
* :mod:`.stages`: data, train, evaluate, probing and report, each a library call that skips or
  resumes what is done;
* :mod:`.timings`: ``timings.json``, stage seconds kept across interrupted invocations;
* :mod:`.probing`: the probing experiments, one module per figure (Fig. 3 left/right, Fig. 6).

Layout of an experiment folder: ``docs/experiments.md``.
"""
