"""Task graph: one node per feature space, edges weighted by similarity.

Tables are pandas DataFrames (written by :func:`bids_taskenc.outputs.atomic.write_tsv`);
the GraphML text comes from networkx and is written with ``write_text``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np
import pandas as pd


def edge_table(similarity: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """All ``F(F-1)/2`` task pairs: columns ``source, target, weight``, by decreasing weight."""
    iu, ju = np.triu_indices(len(labels), k=1)
    table = pd.DataFrame(
        {
            "source": [labels[i] for i in iu.tolist()],
            "target": [labels[j] for j in ju.tolist()],
            "weight": np.asarray(similarity, dtype=float)[iu, ju],
        }
    )
    return table.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)


def top_k_table(similarity: np.ndarray, labels: Sequence[str], k: int) -> pd.DataFrame:
    """The ``k`` most similar other tasks of each task.

    Columns ``task, rank, neighbor, weight`` (rank 1 = most similar); ties keep
    the label order. Only positive similarities count: a task whose maps share
    no voxel with another's has no neighbour there, rather than an arbitrary one.
    """
    s = np.asarray(similarity, dtype=float)
    n = len(labels)
    k = max(0, min(int(k), n - 1))
    rows = []
    for i in range(n):
        others = [j for j in range(n) if j != i and s[i, j] > 0]
        order = sorted(others, key=lambda j: -s[i, j])[:k]
        rows += [
            {"task": labels[i], "rank": r + 1, "neighbor": labels[j], "weight": s[i, j]} for r, j in enumerate(order)
        ]
    return pd.DataFrame(rows, columns=["task", "rank", "neighbor", "weight"])


def build_graph(
    similarity: np.ndarray,
    labels: Sequence[str],
    info: Mapping[str, Mapping[str, str]] | None = None,
    top_k: int | None = None,
) -> nx.Graph:
    """Undirected weighted graph of all task pairs.

    Node attributes: ``group``, ``feature_space``. Edge attributes: ``weight``
    (similarity) and ``top_k`` (True when the edge is among either end's ``top_k``).
    """
    info = info or {}
    graph = nx.Graph(name="task similarity")
    for label in labels:
        extra = info.get(label, {})
        graph.add_node(
            label,
            group=str(extra.get("group", "other")),
            feature_space=str(extra.get("feature_space", label)),
        )
    top = set()
    if top_k:
        for row in top_k_table(similarity, labels, top_k).itertuples():
            top.add(frozenset((row.task, row.neighbor)))
    for row in edge_table(similarity, labels).itertuples():
        graph.add_edge(
            row.source, row.target, weight=float(row.weight), top_k=frozenset((row.source, row.target)) in top
        )
    return graph


def graphml_text(graph: nx.Graph) -> str:
    """GraphML document of ``graph`` (networkx's writer, as text)."""
    return "\n".join(nx.generate_graphml(graph)) + "\n"
