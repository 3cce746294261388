"""Fast static checks of the container files (no podman/docker needed).

The full build lives in ``tests/container/build_and_run.sh``; these tests only make
sure the Dockerfile and singularity.def stay consistent with the package: the
entry point is a declared console script, the final stage carries no compiler, the
image runs as a non-root user with its data folders outside $HOME, and the labels
and Singularity sections are present.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SINGULARITY = ROOT / "singularity.def"

COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|cmake|make|python3-dev|cc)\b")


# --------------------------------------------------------------------------- parsing
def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    instructions: list[tuple[str, str]] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):  # comment lines inside a continuation are skipped
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            word, _, rest = buffer.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        buffer = ""
    if buffer.strip():
        raise ValueError("Dockerfile ends inside a line continuation")
    return instructions


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Instructions split at each FROM (the FROM line starts its stage)."""
    out: list[list[tuple[str, str]]] = []
    for ins in instructions:
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def key_values(args: str) -> dict[str, str]:
    """LABEL / ENV ``k=v k2="v 2"`` pairs."""
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        if sep:
            pairs[key] = value
    return pairs


def parse_singularity(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(header keywords, {section name: body}) of a Singularity definition file."""
    header: dict[str, str] = {}
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^%(\w+)\s*$", line.strip())
        if match:
            current = match.group(1)
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
        elif line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
    return header, sections


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def docker():
    ins = parse_dockerfile(DOCKERFILE.read_text())
    return ins, stages(ins)


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _final_env(final) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in final:
        if word == "ENV":
            env.update(key_values(args))
    return env


# --------------------------------------------------------------------------- Dockerfile
def test_parser_handles_continuations_and_comments():
    ins = parse_dockerfile('# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\n\nENTRYPOINT ["e"]\n')
    assert ins == [("FROM", "a AS b"), ("RUN", "x  && y"), ("ENTRYPOINT", '["e"]')]


def test_multistage_from_debian_bookworm_slim(docker):
    _, st = docker
    assert len(st) >= 2, "expected a builder stage and a final stage"
    for stage in st:
        assert stage[0][1].split()[0] == "debian:bookworm-slim"
    final = st[-1]
    copies = [args for word, args in final if word == "COPY"]
    assert any("--from=" in c and "/opt/venv" in c for c in copies), "final stage copies the venv from the builder"


def test_entrypoint_is_a_declared_console_script(docker, scripts):
    _, st = docker
    entry = [args for word, args in st[-1] if word == "ENTRYPOINT"]
    assert len(entry) == 1
    argv = json.loads(entry[0])  # exec form
    assert isinstance(argv, list) and argv
    assert Path(argv[0]).name in scripts
    assert Path(argv[0]).name == "bids_taskenc"


def test_final_stage_has_no_compilers(docker):
    _, st = docker
    for word, args in st[-1]:
        if word == "RUN":
            assert not COMPILERS.search(args), f"compiler in the final stage: {args[:120]}"


def test_runs_as_non_root_user(docker):
    _, st = docker
    users = [args.strip() for word, args in st[-1] if word == "USER"]
    assert users, "final stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_oci_labels(docker):
    _, st = docker
    labels: dict[str, str] = {}
    for word, args in st[-1]:
        if word == "LABEL":
            labels.update(key_values(args))
    for key in ("title", "version", "source", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"label org.opencontainers.image.{key} missing"
    license_ = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert labels["org.opencontainers.image.licenses"] == license_.get(
        "text", labels["org.opencontainers.image.licenses"]
    )


def test_version_arg_matches_package(docker):
    ins, _ = docker
    about = (ROOT / "bids_taskenc" / "__about__.py").read_text()
    version = re.search(r"__version__\s*=\s*[\"']([^\"']+)", about).group(1)
    defaults = [args.split("=", 1)[1] for word, args in ins if word == "ARG" and args.startswith("VERSION=")]
    assert defaults == [version], "Dockerfile ARG VERSION must equal bids_taskenc.__about__.__version__"


def test_build_args_and_environment(docker):
    ins, st = docker
    args = {a.split("=", 1)[0] for word, a in ins if word == "ARG"}
    assert {"TORCH_SPEC", "TORCH_WHEEL_DIR", "PREFETCH"} <= args
    env = _final_env(st[-1])
    assert env["BIDS_TASKENC_CONTAINER"] == "docker"
    assert "/opt/venv/bin" in env["PATH"]
    # data folders fixed inside the image, never under $HOME (Singularity mounts the host's)
    for name in ("BIDS_TASKENC_MODELS", "TORCH_HOME", "TEMPLATEFLOW_HOME", "XDG_CACHE_HOME"):
        assert env[name].startswith("/opt/"), name
    assert env["MPLCONFIGDIR"].startswith("/tmp")
    assert env["HOME"] == "/tmp"


def test_env_var_names_exist_in_the_code():
    """The names the Dockerfile sets are the names the app reads."""
    code = "\n".join(p.read_text() for p in (ROOT / "bids_taskenc").rglob("*.py"))
    for name in ("BIDS_TASKENC_MODELS", "BIDS_TASKENC_CONTAINER", "XDG_CACHE_HOME"):
        assert name in code, name


def test_dockerignore_keeps_what_the_build_copies():
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    for needed in ("pyproject.toml", "README.md", "bids_taskenc"):
        assert needed not in patterns and f"{needed}/" not in patterns
    assert "**/.venv" in patterns or ".venv" in patterns
    assert "!tests/container/wheels/" in patterns


# --------------------------------------------------------------------------- singularity.def
def test_singularity_definition(scripts):
    header, sections = parse_singularity(SINGULARITY.read_text())
    assert header.get("Bootstrap") in {"docker-daemon", "docker"}
    assert header.get("From", "").startswith("bids_taskenc")
    for name in ("runscript", "help", "labels", "environment"):
        assert sections.get(name, "").strip(), f"%{name} missing or empty"
    assert "BIDS_TASKENC_CONTAINER=singularity" in sections["environment"]
    run = sections["runscript"].split()
    assert run[:2] == ["exec", "bids_taskenc"] and run[1] in scripts


def test_singularity_definition_with_spython(scripts):
    """The def file as Singularity's own Python client (spython, a test extra) reads it."""
    spython = pytest.importorskip("spython.main.parse.parsers")
    recipe = spython.SingularityParser(str(SINGULARITY)).recipe
    (stage,) = recipe.values()
    assert stage.fromHeader == f"bids_taskenc:{_package_version()}"
    assert stage.cmd.split()[:2] == ["exec", "bids_taskenc"] and "bids_taskenc" in scripts
    assert "BIDS_TASKENC_CONTAINER=singularity" in stage.environ
    labels = dict(label.split(None, 1) for label in stage.labels)
    assert labels["org.opencontainers.image.version"] == _package_version()
    assert labels["org.opencontainers.image.licenses"] == "MIT"


def test_singularity_version_matches_package():
    header, sections = parse_singularity(SINGULARITY.read_text())
    version = _package_version()
    assert header["From"] == f"bids_taskenc:{version}"
    assert f"org.opencontainers.image.version {version}" in sections["labels"]


# --------------------------------------------------------------------------- helpers
def _package_version() -> str:
    about = (ROOT / "bids_taskenc" / "__about__.py").read_text()
    return re.search(r"__version__\s*=\s*[\"']([^\"']+)", about).group(1)


def _arg_default(instructions, name: str) -> str:
    for word, args in instructions:
        if word == "ARG" and args.split("=", 1)[0] == name:
            return shlex.split(args.split("=", 1)[1])[0] if "=" in args else ""
    raise AssertionError(f"no ARG {name}")


# --------------------------------------------------------------------------- baked data
def test_image_environment_points_the_app_at_the_baked_folders(docker, monkeypatch):
    """With the image's ENV, the app looks for weights and reference files where PREFETCH puts them."""
    from bids_taskenc.features import store
    from bids_taskenc.group import reference

    _, st = docker
    env = _final_env(st[-1])
    for name in ("BIDS_TASKENC_MODELS", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TORCH_HOME", "HOME"):
        monkeypatch.setenv(name, env[name])
    assert store.weights_dir() == Path(env["BIDS_TASKENC_MODELS"])
    assert reference.default_cache_dir() == Path(env["XDG_CACHE_HOME"]) / "bids_taskenc" / "reference"
    # the folders exist in the image: created by the final stage
    runs = " ".join(args for word, args in st[-1] if word == "RUN")
    for name in ("BIDS_TASKENC_MODELS", "TORCH_HOME", "TEMPLATEFLOW_HOME"):
        assert f'"${name}"' in runs, name
    assert '"$XDG_CACHE_HOME/bids_taskenc/reference"' in runs


def _prefetch_branch(final) -> str:
    runs = [args for word, args in final if word == "RUN" and "PREFETCH" in args]
    assert len(runs) == 1, "one RUN of the final stage handles PREFETCH"
    match = re.search(r'if \[ "\$\{PREFETCH\}" = "1" \]; then.*?\bfi;', runs[0], re.S)
    assert match, 'the PREFETCH RUN has an `if [ "${PREFETCH}" = "1" ]; then ... fi;` branch'
    return match.group(0)


@pytest.mark.parametrize("tasks", ["", "keypoints3d normal", "all"])
def test_prefetch_branch_runs_the_store_commands(docker, tmp_path, tasks):
    """Run the PREFETCH shell code with stub commands: it calls `bids_taskenc-models fetch`
    and `verify` with arguments the real parser accepts, then downloads the reference
    affinities with a function that exists (the download itself needs GitHub)."""
    import ast
    import inspect
    import os
    import subprocess

    from bids_taskenc.cli import models
    from bids_taskenc.group import reference

    _, st = docker
    branch = _prefetch_branch(st[-1])
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls"
    for name in ("bids_taskenc-models", "python"):
        stub = stubs / name
        stub.write_text('#!/bin/sh\nprintf "%s\\0" "$(basename "$0")" "$@" >> "$CALLS"\nprintf "\\n" >> "$CALLS"\n')
        stub.chmod(0o755)
    env = {"PATH": f"{stubs}:{os.environ['PATH']}", "CALLS": str(log), "PREFETCH_TASKS": tasks}

    subprocess.run(["sh", "-eu", "-c", branch], env={**env, "PREFETCH": "0"}, check=True)
    assert not log.exists(), "PREFETCH=0 must not fetch anything"

    subprocess.run(["sh", "-eu", "-c", branch], env={**env, "PREFETCH": "1"}, check=True)
    calls = [line.split("\0")[:-1] for line in log.read_text().splitlines()]
    assert [c[:2] for c in calls] == [
        ["bids_taskenc-models", "fetch"],
        ["bids_taskenc-models", "verify"],
        ["python", "-c"],
    ]
    for call in calls[:2]:
        args = models.build_parser().parse_args(call[1:])
        assert args.tasks == (tasks.split() or None)
        assert models._tasks(args.tasks)  # names the store knows
    code = calls[2][2]
    imports = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ImportFrom)]
    assert [(i.module, [a.name for a in i.names]) for i in imports] == [
        ("bids_taskenc.group.reference", ["fetch_affinities"])
    ]
    inspect.signature(reference.fetch_affinities).bind()  # callable without arguments


def test_prefetched_files_stay_in_one_layer(docker):
    """chmod in a later RUN would copy every baked weights file into a second layer."""
    _, st = docker
    runs = [args for word, args in st[-1] if word == "RUN"]
    prefetch = [r for r in runs if "PREFETCH" in r][0]
    assert "chmod -R a+rX /opt/bids_taskenc" in prefetch
    assert not any("chmod" in r for r in runs if r is not prefetch)


# --------------------------------------------------------------------------- pycortex
def test_pycortex_options_baked_where_pycortex_reads_them(docker):
    """pycortex reads $XDG_CONFIG_HOME/pycortex/options.cfg; the image bakes it, with the
    filestore inside the image and the cache in a writable place."""
    import configparser

    _, st = docker
    env = _final_env(st[-1])
    target = f"{env['XDG_CONFIG_HOME']}/pycortex/options.cfg"
    copies = [args.split() for word, args in st[-1] if word == "COPY" and "--from" not in args]
    sources = {dst: src for *srcs, dst in copies for src in srcs}
    assert target in sources, f"no COPY to {target}"
    cfg_file = ROOT / sources[target]
    cfg = configparser.ConfigParser()
    assert cfg.read(cfg_file) == [str(cfg_file)]
    assert cfg["basic"]["filestore"].startswith("/opt/bids_taskenc/")
    assert cfg["basic"]["cache"].startswith("/tmp/")
    assert cfg["webgl"]["colormaps"].startswith("/opt/venv/")
    assert cfg.has_section("sulci"), "without [sulci] older pycortex rewrites the file on import"
    runs = " ".join(args for word, args in st[-1] if word == "RUN")
    assert cfg["basic"]["filestore"] in runs, "the filestore folder is created in the image"
    assert env["XDG_CONFIG_HOME"].startswith("/opt/")


def test_extras_are_built_in_the_builder_stage(docker):
    """Extras that need a compiler (pycortex: sdist with C code) are built in the builder,
    which gets a compiler only for them; the final stage copies the finished venv."""
    ins, st = docker
    builder = st[0]
    extras = _arg_default(ins, "EXTRAS")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    if "flatmaps" in declared:
        assert "flatmaps" in extras.split(","), "the image should carry the flatmaps extra"
    runs = [args for word, args in builder if word == "RUN"]
    assert any("build-essential" in r and "EXTRAS" in r for r in runs)
    assert any('"/src${EXTRAS:+[${EXTRAS}]}"' in r for r in runs), "pip installs /src[EXTRAS]"
    assert not any("build-essential" in args for word, args in st[-1])


def test_builder_copies_what_the_wheel_build_needs(docker):
    """pip builds the wheel from /src: pyproject's readme, packages and force-included
    files must all be copied there, else the build fails."""
    _, st = docker
    copied: set[str] = set()
    for word, args in st[0]:
        if word == "COPY" and "--from" not in args:
            *sources, dest = args.split()
            if dest.startswith("/src"):
                copied.update(s.rstrip("/") for s in sources)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
    needed = {"pyproject.toml", project["project"]["readme"], *wheel.get("packages", [])}
    needed |= set(wheel.get("force-include", {}))
    for path in sorted(needed):
        assert any(path == c or path.startswith(c + "/") for c in copied), f"{path} is not copied into /src"
    ignored = {
        p.strip().rstrip("/")
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    }
    assert not {c.split("/")[0] for c in copied} & ignored, ".dockerignore drops a copied path"


def test_torch_default_is_the_pypi_cuda_build(docker):
    """No CPU index or local-version suffix by default: PyPI's Linux torch is the CUDA build."""
    ins, _ = docker
    spec = _arg_default(ins, "TORCH_SPEC")
    assert spec.startswith("torch==") and "+" not in spec
    assert _arg_default(ins, "TORCH_INDEX_URL") == ""


# --------------------------------------------------------------------------- scripts, docs
@pytest.mark.parametrize("script", ["tests/container/build_and_run.sh", "examples/slurm_array.sh"])
def test_shell_scripts_parse(script):
    import subprocess

    subprocess.run(["bash", "-n", str(ROOT / script)], check=True)


FAKE_SBATCH = r"""#!/usr/bin/env bash
# records the submission, then runs the job here, once per array index
n=$(( $(cat "$SIM/jobid" 2>/dev/null || echo 100) + 1 )); echo "$n" > "$SIM/jobid"
echo "SBATCH $n $*" >> "$SIM/log"
arr=""
while [ $# -gt 0 ]; do case $1 in --array=*) arr=${1#--array=}; shift;; --*) shift;; *) break;; esac; done
script=$1; shift
if [ -n "$arr" ]; then
  for i in $(seq "${arr%-*}" "${arr#*-}"); do SLURM_ARRAY_TASK_ID=$i bash "$script" "$@" >> "$SIM/log" 2>&1; done
else
  bash "$script" "$@" >> "$SIM/log" 2>&1
fi
echo "$n"
"""


@pytest.mark.parametrize("warm", ["1", "0"])
def test_slurm_example_submits_participants_then_group(tmp_path, warm):
    """Dry run with a fake sbatch (runs each job here) and a fake singularity (echoes)."""
    import os
    import subprocess

    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text(FAKE_SBATCH)
    (bin_ / "singularity").write_text('#!/bin/sh\necho "SINGULARITY $*"\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    bids = tmp_path / "bids"
    for label in ("CSI1", "CSI2", "CSI3"):
        (bids / f"sub-{label}").mkdir(parents=True)
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-CSI1\t1\nsub-CSI2\t2\nsub-CSI3\t3\n")
    (tmp_path / "bids_taskenc.sif").touch()
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "SIM": str(tmp_path), "WARM_CACHE": warm}
    subprocess.run(
        ["bash", str(ROOT / "examples" / "slurm_array.sh"), str(bids), str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    log = (tmp_path / "log").read_text().splitlines()
    submits = [line.split() for line in log if line.startswith("SBATCH ")]
    runs = [line for line in log if line.startswith("SINGULARITY ")]
    participant = [r for r in runs if " participant " in r]
    assert len(participant) == 3 and all("run --nv" in r and "-w /work" in r for r in participant)
    assert all("--bids-database-dir /work/bids_db" in r for r in participant), "one dataset index for the array"
    assert [r.split("--participant-label ")[1].split()[0] for r in participant] == ["CSI1", "CSI2", "CSI3"]
    assert len({r.split("-B ")[2] for r in runs}) == 1, "one shared work dir"
    part_ids = [s[1] for s in submits if "--job-name=taskenc-part" in s]
    assert all(any(a.startswith("--gres=gpu") for a in s) for s in submits if "--job-name=taskenc-part" in s)
    assert len(part_ids) == (2 if warm == "1" else 1)
    group = [s for s in submits if "--job-name=taskenc-group" in s]
    assert len(group) == 1 and f"--dependency=afterok:{':'.join(part_ids)}" in group[0]
    assert runs[-1].endswith("/data /out group -w /work"), "the group job runs last"


def test_docs_show_the_singularity_command():
    """The containers page gives the Singularity command; the README links to it."""
    page = (ROOT / "docs" / "containers.md").read_text()
    assert (
        "singularity run --nv -B data:/data -B out:/out bids_taskenc.sif /data /out participant "
        "--participant-label CSI1"
    ) in page
    assert "(docs/containers.md)" in (ROOT / "README.md").read_text()


def test_license_and_citation_match_the_package():
    """pyproject says MIT; the LICENSE file and CITATION.cff must say the same and carry the version."""
    from bids_taskenc.__about__ import __version__

    root = Path(__file__).resolve().parents[2]
    assert (root / "LICENSE").read_text().startswith("MIT License")
    cff = (root / "CITATION.cff").read_text()
    assert re.search(r"^license: MIT$", cff, re.M)
    assert re.search(rf"^version: {re.escape(__version__)}$", cff, re.M)
    assert 'license = { text = "MIT" }' in (root / "pyproject.toml").read_text()
