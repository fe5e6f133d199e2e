"""Homework checking: students' answers (text and LaTeX) parsed by chainrule's own
grammars, checked line by line against the derivation, graded in sandboxed workers.

>>> from chainrule.homework.check import check_answer  # doctest: +SKIP
"""

from . import check_vector  # noqa: F401  (Truth(p) finds VectorTruth among its subclasses)
