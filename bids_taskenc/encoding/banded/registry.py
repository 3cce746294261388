"""The CV solvers of banded ridge, by name, without torch: ``fit_banded_ridge(cv_solver=...)`` and every list of
the choices (``benchmarks/banded.py --cv-solver``, the docs) read :data:`REGISTRY`.

A CV solver scores every (band weights, alpha) pair of the grid on the CV folds, chooses each voxel's pair and
refits on the whole training set: ``solve(problem: BandedProblem) -> BandedSolution``
(:mod:`~bids_taskenc.encoding.banded.problem`). Adding one is one module with that function and one
``REGISTRY.register(CVSolver(...))`` line here; a test plugs in a toy one with ``REGISTRY.temporarily(...)``.
The sidecars record the name (``CVSolver``), from which the methods text takes the entry's sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.registry import Registry, UnknownChoiceError, resolve

__all__ = ["CVSolver", "REGISTRY", "DEFAULT_CV_SOLVER", "UnknownChoiceError", "resolve"]


@dataclass(frozen=True)
class CVSolver:
    """One way to solve banded ridge's CV folds.

    Attributes
    ----------
    name : what users pass (``cv_solver='hold-out'``).
    description : one line for ``--help`` and the docs.
    methods : the sentence the methods text says about how the folds were solved.
    citations : keys of ``boilerplate/references.bib`` the methods sentence cites.
    implementation : ``"package.module:function"``, a ``solve(problem) -> BandedSolution``.
    hold_out : scores every fold from the whole training set's model with the fold's rows held out (exact only
        when features are centred, not scaled, per fold: ``standardize=False``).
    factor : what it decomposes, which sizes its memory: ``'eigh'`` (eigenbases, run by a pool of workers) or
        ``'cholesky'`` (float64 Cholesky factors of the whole training set's kernel).
    """

    name: str
    description: str
    methods: str
    implementation: str
    citations: tuple[str, ...] = ()
    hold_out: bool = False
    factor: str = "eigh"

    def __post_init__(self) -> None:
        if self.factor not in ("eigh", "cholesky"):
            raise ValueError(f"CV solver {self.name!r}: factor must be 'eigh' or 'cholesky', got {self.factor!r}")


#: The CV solvers, in the order of the docs; the first is the default.
REGISTRY: Registry[CVSolver] = Registry("cv_solver")

REGISTRY.register(
    CVSolver(
        name="per-fold",
        description="one eigendecomposition per CV fold and band-weight row (any standardisation)",
        methods="Each cross-validation fold's model was solved from its own eigendecomposition for every "
        "band-weight vector.",
        implementation="bids_taskenc.encoding.banded.per_fold:solve",
    )
)
REGISTRY.register(
    CVSolver(
        name="hold-out",
        description="one eigendecomposition of the whole training set per band-weight row serves every fold "
        "(standardize=False)",
        methods="Every cross-validation fold was scored exactly from one eigendecomposition of the whole training "
        "set per band-weight vector, with the fold's samples held out through the inverse of the bordered kernel "
        "matrix (the per-fold centring as an unpenalised intercept).",
        implementation="bids_taskenc.encoding.banded.holdout:solve",
        hold_out=True,
    )
)
REGISTRY.register(
    CVSolver(
        name="cholesky",
        description="the hold-out identities from one float64 Cholesky factor per (band weights, alpha), no "
        "eigendecomposition (standardize=False; meant for GPUs)",
        methods="Every cross-validation fold was scored exactly from one Cholesky factorisation of the whole "
        "training set's penalised kernel per band-weight vector and alpha, with the fold's samples held out "
        "through the inverse of the bordered kernel matrix (the per-fold centring as an unpenalised intercept).",
        implementation="bids_taskenc.encoding.banded.cholesky:solve",
        hold_out=True,
        factor="cholesky",
    )
)

#: What ``fit_banded_ridge`` uses unless told otherwise.
DEFAULT_CV_SOLVER = REGISTRY.names()[0]
