"""Homework checking: students' answers (text and LaTeX) parsed by chainrule's own
grammars, checked line by line against the derivation, graded in sandboxed workers.

>>> from chainrule.homework.check import check_answer  # doctest: +SKIP
"""

# Truth(p) finds VectorTruth among its subclasses; answers find IndexAnswer (index notation)
from . import answer_matrix, check_vector, index_answers  # noqa: F401
