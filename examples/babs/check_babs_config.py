"""Render the BABS configuration with BABS's own code (offline): the run script and the SLURM job script.

    python examples/babs/check_babs_config.py [examples/babs/config_bids_taskenc.yaml]

Needs the ``babs`` package (it pins numpy < 2, so use a separate environment: ``python -m venv babs-venv &&
babs-venv/bin/pip install babs``). Prints both scripts; exits non-zero when BABS rejects the configuration or
a script lacks what the GPU run needs (``--nv``, the ``--gres`` line, the participant option).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from babs.generate_bidsapp_runscript import generate_bidsapp_runscript
from babs.generate_submit_script import generate_submit_script
from babs.utils import app_output_settings_from_config


def render(config_path: Path) -> tuple[str, str]:
    config = yaml.safe_load(config_path.read_text())
    inputs = []
    for name, ds in config["input_datasets"].items():
        inputs.append(
            {
                "name": name,
                "path_in_babs": ds["path_in_babs"],
                "unzipped_path_containing_subject_dirs": str(
                    Path(ds["path_in_babs"]) / ds.get("unzipped_path_containing_subject_dirs", "")
                ).rstrip("/"),
                "is_zipped": ds["is_zipped"],
            }
        )
    zips, output_dir = app_output_settings_from_config(config)
    run = generate_bidsapp_runscript(
        inputs,
        "subject",
        "bids-taskenc-0-1-0",
        "containers/.datalad/environments/bids-taskenc-0-1-0/image",
        output_dir,
        zips,
        bids_app_args=config["bids_app_args"],
        singularity_args=config["singularity_args"],
    )
    job = generate_submit_script(
        "slurm",
        config["cluster_resources"],
        config["script_preamble"],
        config["job_compute_space"],
        inputs,
        "subject",
        "bids-taskenc-0-1-0",
        zips,
    )
    return run, job


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("config_bids_taskenc.yaml"))
    run, job = render(path)
    print(run, "\n# ----- participant_job.sh -----\n", job)
    needed = {"--nv": run, "--participant-label": run, "outputs/bids_taskenc": run, "#SBATCH --gres=gpu:1": job}
    missing = [what for what, text in needed.items() if what not in text]
    if missing:
        print(f"missing from the rendered scripts: {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
