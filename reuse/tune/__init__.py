"""`reuse tune`: the practical guide's coarse-to-fine hyperparameter search, on Optuna.

`search.tune` runs it (`TuneOptions`), `space` parses `--space`, `study` keeps the trials in a
database that resumed and parallel processes share, `features` makes trials train from the
feature cache, `result` holds the table and writes best.json; `reuse.guide.plots.plot_search` draws it.
"""
