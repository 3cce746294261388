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
    ins = parse_dockerfile("# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y\n\nENTRYPOINT [\"e\"]\n")
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
    assert labels["org.opencontainers.image.licenses"] == license_.get("text", labels["org.opencontainers.image.licenses"])


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
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
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
