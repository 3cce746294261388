"""The NIfTI intent of each statistic we write (NIfTI-1 ``intent_code``, parameters and name; GIFTI ``Intent``).

A viewer or a script that reads the header knows what a map holds without our sidecar: a Pearson r with its
degrees of freedom (``NIFTI_INTENT_CORREL``, p1 = n - 2, so that ``r sqrt(p1) / sqrt(1 - r²)`` is t with p1 degrees
of freedom), a p-value (``NIFTI_INTENT_PVAL``), a group t (``NIFTI_INTENT_TTEST``, p1 = participants - 1), anything
else an estimate (``NIFTI_INTENT_ESTIMATE``). BH-FDR q-values are adjusted p-values and carry the p-value intent
with the name ``BH-FDR q``. The intent name (16 bytes at most) is the ``stat-`` label.
"""

from __future__ import annotations

from dataclasses import dataclass

from nibabel.nifti1 import intent_codes

#: Longest intent name NIfTI-1 holds (bytes).
NAME_BYTES = 16


@dataclass(frozen=True)
class Intent:
    """``code``: nibabel's intent label (``'correlation'``); ``params``: p1.. ; ``name``: the header's intent_name."""

    code: str
    params: tuple[float, ...] = ()
    name: str = ""

    @property
    def nifti_string(self) -> str:
        """``'NIFTI_INTENT_CORREL'``: the GIFTI ``Intent`` attribute."""
        return str(intent_codes.niistring[self.code])


def _is_p(stat: str) -> bool:
    return stat == "p" or stat.startswith("uniquep")


def _is_q(stat: str) -> bool:
    return stat == "q" or stat.startswith("uniqueq")


def statistic_intent(stat: str, *, n_samples: int | None = None, dof: int | None = None) -> Intent:
    """The intent of a ``stat-`` map.

    Parameters
    ----------
    stat : str
        The ``stat-`` label: ``r``, ``jointr`` (test-set correlations), ``p``, ``q``, ``uniquep<set>``,
        ``uniqueq<set>``, ``t`` (group one-sample t), anything else an estimate.
    n_samples : int, optional
        Test images a correlation was computed on: the correlation's degrees of freedom are ``n_samples - 2``.
        Without it (or below 3) a correlation is written as an estimate.
    dof : int, optional
        Degrees of freedom of a ``t`` map; without it a ``t`` map is an estimate.
    """
    name = stat[:NAME_BYTES]
    if stat in ("r", "jointr") and n_samples is not None and n_samples >= 3:
        return Intent("correlation", (float(n_samples - 2),), name)
    if stat == "t" and dof is not None and dof >= 1:
        return Intent("t test", (float(dof),), name)
    if _is_q(stat):
        return Intent("p value", (), "BH-FDR q")
    if _is_p(stat):
        return Intent("p value", (), name)
    return Intent("estimate", (), name)


def sidecar_intent(stat: str, sidecar: dict) -> Intent:
    """:func:`statistic_intent` of a participant map, its test-set size read from the sidecar (``Split.NTest``)."""
    n_test = (sidecar.get("Split") or {}).get("NTest")
    return statistic_intent(stat, n_samples=int(n_test) if isinstance(n_test, int | float) else None)


def set_nifti_intent(img, intent: Intent):
    """Write ``intent`` into a NIfTI-1 image's header (in place); returns the image."""
    img.header.set_intent(intent.code, intent.params, name=intent.name)
    return img


def gifti_intent_meta(intent: Intent) -> dict[str, str]:
    """A GIFTI data array's metadata for the intent's parameters (``intent_p1``..., as the GIFTI format stores them)."""
    return {f"intent_p{i + 1}": f"{p:g}" for i, p in enumerate(intent.params)}
