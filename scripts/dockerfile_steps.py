"""Perform the Dockerfile's steps without Docker, then start its CMD and check the service it runs.

    python scripts/dockerfile_steps.py --build-arg TORCH_PIP_ARGS= --models-from /tmp/models [--staging DIR]

No Docker engine runs where this project is tested, so this script carries out the Dockerfile's own
instructions (only those it uses; others fail loudly). FROM: a fresh venv stands in for the image's
Python. Image paths live under STAGING/root (`/app` -> STAGING/root/app). COPY reads the repository
through .dockerignore (`--models-from` stands in for models/). RUN: `/bin/sh -c` in WORKDIR with ARGs
and ENV set, so installs really happen with this machine's pip configuration; a RUN creating a user is
recorded, not run, and USER must name it. CMD: on a free port (its `--port` and the HEALTHCHECK URL
rewritten) until the HEALTHCHECK passes, then /ready, /languages, one /translate; SIGTERM must exit 0.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
USER_CREATION = ("useradd", "adduser")
HOST_ONLY = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX")  # a container lacks them
# The instructions this script performs, with the flags each may carry, and those Docker substitutes variables in.
FLAGS = {"FROM": set(), "ARG": set(), "ENV": set(), "WORKDIR": set(), "COPY": set(), "RUN": {"mount"}, "USER": set(),
         "EXPOSE": set(), "HEALTHCHECK": {"interval", "timeout", "start-period", "retries"}, "CMD": set()}
SUBSTITUTING = ("ARG", "ENV", "WORKDIR", "COPY", "USER", "EXPOSE")


class StepFailed(Exception):
    """A Dockerfile step did not do what it should; the message says which and why."""


@dataclass
class Instruction:
    keyword: str  # upper case
    flags: dict[str, str]  # leading --name=value flags
    arguments: str  # the rest, continuation lines joined

    def argv(self) -> list[str]:
        """The JSON array of the exec form, else the shell form as `/bin/sh -c ...`."""
        return json.loads(self.arguments) if self.arguments.startswith("[") else ["/bin/sh", "-c", self.arguments]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comment and blank lines dropped, `\\` continuations joined, --flags split off."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    instructions = []
    for line in re.sub(r"\s*\\\n", " ", "\n".join(lines)).splitlines():
        keyword, flags, arguments = re.fullmatch(r"(\S+)\s*((?:--\S+\s+)*)(.*)", line).groups()
        flags = dict(flag[2:].partition("=")[::2] for flag in flags.split())
        instructions.append(Instruction(keyword.upper(), flags, arguments.strip()))
    return instructions


def assignments(text: str) -> dict[str, str | None]:
    """`ARG`/`ENV` arguments `A=1 B="two words" C` as {A: "1", B: "two words", C: None}."""
    return {name: value if eq else None for name, eq, value in (word.partition("=") for word in shlex.split(text))}


def _match(pattern: list[str], parts: list[str]) -> bool:
    """Path components against pattern components: fnmatch each, `**` for any number of them."""
    if pattern and pattern[0] == "**":
        return any(_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    if not pattern or not parts:
        return not pattern and not parts
    return fnmatch.fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:])


class DockerIgnore:
    """.dockerignore: `**`, `!` exceptions, leading `/` ignored, last match wins, a directory excludes its contents."""

    def __init__(self, text: str = ""):
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        self.rules = [(not line.startswith("!"), os.path.normpath(line.lstrip("!").strip()).strip("/").split("/"))
                      for line in lines]

    def excluded(self, relative: str) -> bool:
        parts, verdict = PurePosixPath(relative).parts, False
        for excludes, pattern in self.rules:
            if any(_match(pattern, list(parts[:n])) for n in range(1, len(parts) + 1)):
                verdict = excludes
        return verdict


def note(message: str) -> None:
    print(f" ---> {message}")


class Image:
    """The image being built: its / (STAGING/root), its Python (a venv in STAGING/venv), ARGs, ENV and CMD."""

    def __init__(self, staging: Path):
        self.root, self.venv, self.args, self.env, self.exposed = staging / "root", staging / "venv", {}, {}, []
        self.workdir, self.user, self.healthcheck, self.cmd = "/", "root", None, None

    def path(self, image_path: str) -> Path:
        return self.root / str(PurePosixPath(self.workdir) / image_path).lstrip("/")

    def process_env(self, *, building: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAROUSEL_") and k not in HOST_ONLY}
        env.update({k: v for k, v in self.args.items() if v is not None and building})  # ARGs: while building only
        for name, value in self.env.items():  # absolute image paths move into the staging root
            top = PurePosixPath(value).parts[1:2] if value.startswith("/") else ()
            env[name] = str(self.root / value.lstrip("/")) if top and (self.root / top[0]).exists() else value
        return env | {"PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(self.venv)}


def refuse_what_is_not_understood(instructions: list[Instruction]) -> None:
    """Before any step: whatever this script would not do as Docker does fails here, loudly."""
    users = []
    for number, ins in enumerate(instructions, start=1):
        words = (shlex.split(ins.arguments) if ins.keyword in ("RUN", "USER") else []) or [""]
        users += [words[-1]] if ins.keyword == "RUN" and words[0] in USER_CREATION else []
        problems = {
            f"{ins.keyword} is not understood by this script": ins.keyword not in FLAGS,
            f"flags other than {FLAGS.get(ins.keyword)}": set(ins.flags) - FLAGS.get(ins.keyword, set()),
            "one FROM, as the first instruction": (ins.keyword == "FROM") != (number == 1),
            "variables only in RUN (its shell expands them)": "$" in ins.arguments and ins.keyword in SUBSTITUTING,
            "only cache mounts (this machine's pip cache serves)": any("type=cache" not in v for v in ins.flags.values())
            and ins.keyword == "RUN",
            "a user is created in a RUN of its own (it is skipped here)": words[0] in USER_CREATION
            and re.search(r"[;&|`\n]|\$\(", ins.arguments),
            "USER names a non-root user an earlier RUN created": ins.keyword == "USER" and words[0] not in users,  # never root
            "ENV NAME=value": ins.keyword == "ENV" and None in assignments(ins.arguments).values(),
            "HEALTHCHECK CMD, durations in whole seconds": ins.keyword == "HEALTHCHECK" and (
                not ins.arguments.startswith("CMD ") or not all(re.fullmatch(r"\d+" + "s" * (k != "retries"), v) for k, v in ins.flags.items())),
        }
        if any(problems.values()):
            raise StepFailed(f"instruction {number} ({ins.keyword} {ins.arguments[:60]}): "
                             f"{'; '.join(why for why, bad in problems.items() if bad)}")
    if missing := {"CMD", "HEALTHCHECK", "EXPOSE"} - {ins.keyword for ins in instructions}:
        raise StepFailed(f"the Dockerfile needs {', '.join(sorted(missing))}")


def build(instructions: list[Instruction], image: Image, build_args: dict[str, str], models_from: Path | None) -> None:
    refuse_what_is_not_understood(instructions)
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text(encoding="utf-8"))
    for number, ins in enumerate(instructions, start=1):
        flags, where = "".join(f"--{k}={v} " for k, v in ins.flags.items()), f"Step {number}/{len(instructions)}"
        print(f"\n{where}: {ins.keyword} {flags}{ins.arguments}")
        match ins.keyword:
            case "FROM":
                note(f"{ins.arguments}: a fresh venv of Python {sys.version.split()[0]} ({sys.executable}) stands in")
                subprocess.run([sys.executable, "-m", "venv", str(image.venv)], check=True)
            case "ARG":
                for name, default in assignments(ins.arguments).items():
                    image.args[name] = build_args.get(name, default)
                    note(f"{name}={image.args[name]!r} ({'--build-arg' if name in build_args else 'default'})")
            case "ENV":
                image.env.update(assignments(ins.arguments))
            case "WORKDIR":
                image.workdir = str(PurePosixPath(image.workdir) / ins.arguments)
                image.path(".").mkdir(parents=True, exist_ok=True)
            case "COPY":
                *sources, destination = shlex.split(ins.arguments)
                for source in sources:
                    copy(source, image.path(destination), many=destination.endswith("/") or len(sources) > 1,
                         ignore=ignore, models_from=models_from, where=where)
            case "RUN" if shlex.split(ins.arguments)[0] in USER_CREATION:  # it would add a user to this machine
                note(f"user {shlex.split(ins.arguments)[-1]!r} is created in the image; not on this machine")
            case "RUN":
                started, env = time.perf_counter(), image.process_env(building=True)
                if subprocess.run(ins.argv(), check=False, cwd=image.path("."), env=env).returncode:
                    raise StepFailed(f"{where}: RUN failed")
                note(f"done in {time.perf_counter() - started:.1f} s")
            case "USER":
                image.user = ins.arguments
            case "EXPOSE":
                image.exposed += [int(word.split("/")[0]) for word in ins.arguments.split()]
            case "HEALTHCHECK":
                image.healthcheck = Instruction("CMD", ins.flags, ins.arguments.removeprefix("CMD").strip())
            case "CMD":
                image.cmd = ins.argv()


def copy(source: str, target: Path, *, many: bool, ignore: DockerIgnore, models_from: Path | None, where: str) -> None:
    """COPY one source: a file (into `target` when `many`), or a directory's contents; .dockerignore applies."""
    relative = PurePosixPath(os.path.normpath(source).lstrip("/"))
    origin = models_from.joinpath(*relative.parts[1:]) if models_from and relative.parts[0] == "models" else ROOT / relative
    if re.search(r"[*?\[]", source) or not origin.exists() or ignore.excluded(str(relative)):
        raise StepFailed(f"{where}: COPY source {source!r} is a pattern, missing or .dockerignored")
    files = [(origin, target / origin.name if many else target)] if origin.is_file() else [
        (file, target / file.relative_to(origin)) for file in sorted(origin.rglob("*"))
        if file.is_file() and not ignore.excluded(str(relative / file.relative_to(origin).as_posix()))]
    for file, destination in files:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, destination)
    note(f"{len(files)} files into {target}")


def with_port(argv: list[str], exposed: int, port: int) -> list[str]:
    """`argv` with the EXPOSEd port replaced by `port` in `--port N`, `--port=N` and `:N` URLs."""
    return shlex.split(re.sub(rf"(--port[= ]|:){exposed}\b", rf"\g<1>{port}", shlex.join(argv)))


def request(url: str, data: dict | None = None):
    """The JSON answer to a GET, or to a JSON POST when `data` is given; OSError unless 2xx."""
    body = None if data is None else json.dumps(data).encode()
    with urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}), timeout=30) as r:
        return json.loads(r.read())


def serve(image: Image, wait: float, log_path: Path) -> None:
    """Start the CMD on a free port, wait for the HEALTHCHECK and /ready, translate once, then SIGTERM."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exposed, base = image.exposed[0], f"http://127.0.0.1:{port}"
    cmd, health = with_port(image.cmd, exposed, port), with_port(image.healthcheck.argv(), exposed, port)
    if cmd == image.cmd or health == image.healthcheck.argv():
        raise StepFailed(f"the CMD and HEALTHCHECK must name the EXPOSEd port {exposed}, to move it to {port} here")
    env, cwd, deadline = image.process_env(building=False), image.path("."), time.monotonic() + wait
    print(f"\nCMD in {cwd}, port {port} for {exposed}, image user {image.user!r}: {shlex.join(cmd)}")
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def tail() -> str:
        return "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])

    def wait_for(what: str, check) -> None:  # check() true; a refused connection, error status or timeout is false
        while not _quietly(check):
            if process.poll() is not None or time.monotonic() > deadline:
                raise StepFailed(f"not {what} (server exit status {process.returncode}):\n{tail()}")
            time.sleep(0.5)
        note(f"{what} after {wait - (deadline - time.monotonic()):.1f} s")

    timeout = int(image.healthcheck.flags.get("timeout", "30s")[:-1])
    try:
        wait_for("healthy", lambda: subprocess.run(
            health, cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False).returncode == 0)
        wait_for("ready", lambda: request(f"{base}/ready") is not None)
        source, target = next((e["code"], t) for e in request(f"{base}/languages") for t in e["targets"])
        text = "En el principio creó Dios los cielos y la tierra." if source == "es" else "In the beginning was the Word."
        answer = request(f"{base}/translate", {"q": text, "source": source, "target": target})["translatedText"]
        note(f"{source}->{target}: {text!r} -> {answer!r}")
        process.terminate()  # SIGTERM, as `docker stop`
        if process.wait(timeout=60) != 0 or "Traceback" in log_path.read_text(errors="replace"):
            raise StepFailed(f"unclean exit after SIGTERM (status {process.returncode}):\n{tail()}")
        note("SIGTERM: exit status 0, no traceback in the log")
    except (OSError, KeyError, StopIteration, subprocess.TimeoutExpired) as error:
        raise StepFailed(f"{type(error).__name__}: {error}\n{tail()}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _quietly(check) -> bool:
    try:
        return check()
    except (OSError, subprocess.TimeoutExpired):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--models-from", type=Path, metavar="DIR", help="use DIR in place of models/")
    parser.add_argument("--staging", type=Path, help="an empty directory for the image root and venv (kept)")
    parser.add_argument("--wait", type=float, default=180, help="seconds to wait for health and readiness")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # steps and the RUN commands' own output in order
    staging = args.staging or Path(tempfile.mkdtemp(prefix="dockerfile-steps-"))
    staging.mkdir(parents=True, exist_ok=True)
    if any(staging.iterdir()):
        parser.error(f"--staging {staging}: not empty")
    image = Image(staging)
    image.root.mkdir()
    started = time.perf_counter()
    try:
        build_args = dict(item.partition("=")[::2] for item in args.build_arg)
        build(parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8")), image, build_args, args.models_from)
        note(f"built in {time.perf_counter() - started:.1f} s")
        serve(image, args.wait, staging / "cmd.log")
    except StepFailed as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    finally:
        if not args.staging:
            shutil.rmtree(staging, ignore_errors=True)
    print(f"\nAll steps passed in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
