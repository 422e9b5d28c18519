"""The report's sections, each built from a run folder's stored results.

``outline`` puts them in the order of the study (data, baseline, LOO, groups, Shapley, AME, the
other methods, cleaning, the methods appendix); each other module builds one section or a family
of them, and ``parts`` holds the small pieces they share.
"""
