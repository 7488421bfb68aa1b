"""cellzoo-classic: classical cell-type annotation baselines for the cellzoo model zoo.

``logreg`` (CellTypist-style logistic regression), ``linear_svm`` (the Abdelaal et al. 2019
winner) and ``knn`` (kNN on PCA, as in Open Problems). Build them by name::

    import cellzoo
    model = cellzoo.create_model("logreg", C=0.1).fit(adata, "cell_type")

The hook module (:mod:`cellzoo_classic.plugin`) only declares them; numpy and scikit-learn are
imported when a model is built, and scikit-learn only when one is trained.
"""

__version__ = "0.1.0"
