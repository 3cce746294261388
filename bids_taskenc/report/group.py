"""The group report ``<out>/group.html``: similarity, trees, graph, comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bids_taskenc.__about__ import __version__
from bids_taskenc.report import figures
from bids_taskenc.report.inputs import find_tasks, group_file, read_json, read_table
from bids_taskenc.report.render import figure_path, render_page

#: Edges drawn in the task graph have a cosine similarity above this value.
GRAPH_THRESHOLD = 0.2


def write_group_report(output_dir: str | Path, *, task: str | None = None,
                       graph_threshold: float = GRAPH_THRESHOLD) -> Path:
    """Write ``<output_dir>/group.html`` and its PNG figures under ``figures/``.

    Reads the group-level derivatives in ``<output_dir>/group/`` (similarity
    matrix, tree, graph, consistency and, when present, the Taskonomy comparison).

    Raises
    ------
    FileNotFoundError
        When the group level has not been run (no similarity matrix).
    """
    out = Path(output_dir)
    if task is None:
        tasks = find_tasks(out)
        if not tasks:
            raise FileNotFoundError(f"no group-level outputs under {out / 'group'}")
        task = tasks[0]
    sim_path = group_file(out, task, "similarity", "matrix", ".tsv")
    sim = read_table(sim_path)
    if sim is None:
        raise FileNotFoundError(f"{sim_path} is missing: run the group level first")
    meta = read_json(group_file(out, task, "similarity", "matrix", ".json"))
    tree = read_json(group_file(out, task, "tree", "dendrogram", ".json"))
    groups_of = meta.get("FeatureGroups", tree.get("FeatureGroups", {}))
    labels = list(sim["task"])
    matrix = sim.set_index("task").loc[labels, labels]
    order = tree.get("LeafOrder", labels)
    figs: dict[str, str] = {}

    path, figs["similarity"] = figure_path(out, task=task, desc="similarity")
    figures.similarity_heatmap(
        matrix.loc[order, order].to_numpy(), order, [groups_of.get(t) for t in order], path,
        title="task x task similarity (cosine of thresholded r maps), tree order",
    )

    ref_tree = read_json(group_file(out, task, "taskonomytree", "dendrogram", ".json"))
    trees = []
    if tree.get("Linkage"):
        trees.append(("brain (this dataset)", tree["Linkage"], tree["LinkageLeaves"], groups_of))
    if ref_tree.get("Linkage"):
        trees.append(("Taskonomy (transfer affinities)", ref_tree["Linkage"], ref_tree["LinkageLeaves"], groups_of))
    if trees:
        path, figs["trees"] = figure_path(out, task=task, desc="trees")
        figures.dendrograms(trees, path)

    edges = read_table(group_file(out, task, "graph", "edges", ".tsv"))
    if edges is not None:
        path, figs["graph"] = figure_path(out, task=task, desc="graph")
        figures.task_graph(
            labels, [groups_of.get(t) for t in labels],
            edges[["source", "target", "weight"]].itertuples(index=False, name=None), graph_threshold, path,
        )

    comparison = read_json(group_file(out, task, "taskonomy", "comparison", ".json"))
    consistency = read_json(group_file(out, task, "consistency", "stats", ".json"))
    pairs = read_table(group_file(out, task, "consistency", "stats", ".tsv"))
    clades = read_table(group_file(out, task, "tree", "clades", ".tsv"))
    topk = read_table(group_file(out, task, "graph", "topk", ".tsv"))
    return render_page(
        "group.html.j2",
        out / "group.html",
        title=f"bids_taskenc group report: task {task}",
        task=task,
        participants=meta.get("Participants", []),
        spaces=meta.get("Spaces", {}),
        settings=meta.get("Settings", {}),
        features=[(t, meta.get("FeatureSpaces", {}).get(t, t), groups_of.get(t, "other")) for t in order],
        figs=figs,
        has_reference=bool(ref_tree),
        graph_threshold=graph_threshold,
        comparison=comparison,
        consistency=consistency,
        pairs=_records(pairs),
        clades=_records(clades),
        topk=_records(topk),
        command_line=meta.get("CommandLine", "n/a"),
        versions=meta.get("SoftwareVersions", {}),
        config={},
        version=__version__,
    )


def _records(table) -> list[dict]:
    if table is None:
        return []
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]
