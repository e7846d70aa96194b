"""Perform the Dockerfile's steps without Docker, then start its CMD and check the service it runs.

    python scripts/dockerfile_steps.py                                   # ARG defaults, models/ as shipped
    python scripts/dockerfile_steps.py --build-arg TORCH_PIP_ARGS= --models-from /tmp/models

No Docker engine runs where this project is tested, so this script reads the Dockerfile itself and
carries out each instruction on this machine; the image recipe and its test cannot drift apart.

- FROM: the tag's Python version is compared with the one running this script (the venv's base).
- ARG, ENV: as Docker (ARG defaults, overridden by `--build-arg NAME=VALUE`; ARGs are environment
  variables of RUN commands only; ENV wins over an ARG of the same name).
- WORKDIR, COPY: image paths are mapped into a fresh staging root (`/app` -> STAGING/root/app); COPY
  reads from the repository, honouring .dockerignore (`--models-from DIR` stands in for `models/`).
- RUN: `/bin/sh -c` in a plain fresh virtual environment standing in for the image's Python, so every
  install really happens (the machine's pip configuration applies, as a build's would). `--mount`
  flags are skipped: a cache mount becomes the machine's own pip cache. RUN commands must use paths
  relative to WORKDIR. A RUN that creates a user (`useradd`, `adduser`) is not run — it would add a
  user to this machine — but its user name is recorded and must be the one USER names.
- USER: must not be root and must have been created; outside a container everything runs as the
  current user, so this does not prove file permissions inside the image.
- CMD: started with the image's environment (ENV, absolute image paths mapped into the staging root)
  in WORKDIR, on a free port instead of the EXPOSEd one (the CMD's `--port` and the HEALTHCHECK's URL
  are rewritten, and said so). The HEALTHCHECK command is repeated until it succeeds, then `/ready`,
  `/languages` and one real `/translate` request are checked, then SIGTERM must give a clean exit 0.

Exit status 0 when every step passed; the staging directory is removed unless `--keep`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
USER_CREATION = ("useradd", "adduser")
# Host variables that would change what the image's programs do; a container starts without them.
HOST_ONLY_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX")


class StepFailed(Exception):
    """A Dockerfile step did not do what it should; the message says which and why."""


# -- parsing ---------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case
    arguments: str  # the rest of the instruction, continuation lines joined, flags removed
    flags: dict[str, str]  # leading --name=value flags (RUN --mount, COPY --chown, HEALTHCHECK --interval)
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None for the shell form."""
        text = self.arguments.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None  # Docker too falls back to the shell form
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
        return None

    def __str__(self) -> str:
        flags = "".join(f"--{name}={value} " for name, value in self.flags.items())
        return f"{self.keyword} {flags}{self.arguments}"


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, `\\` continuation lines joined, leading flags split off."""
    instructions: list[Instruction] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start = index
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        parts = []
        while line.endswith("\\"):
            parts.append(line[:-1].strip())
            line = ""
            while index < len(lines):  # comment lines inside a continued instruction are dropped
                candidate = lines[index].strip()
                index += 1
                if candidate.startswith("#"):
                    continue
                line = candidate
                break
        parts.append(line)
        joined = " ".join(part for part in parts if part)
        keyword, _, rest = joined.partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        instructions.append(Instruction(keyword.upper(), rest, flags, start + 1))
    return instructions


_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def substitute(text: str, variables: dict[str, str]) -> str:
    """Docker's variable substitution: `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME:+alternative}`."""

    def replace(match: re.Match) -> str:
        name = match.group("braced") or match.group("plain")
        value = variables.get(name, "")
        if match.group("op") == "-":
            return value or match.group("word")
        if match.group("op") == "+":
            return match.group("word") if value else ""
        return value

    return _VARIABLE.sub(replace, text)


def parse_assignments(text: str) -> dict[str, str | None]:
    """`ENV`/`ARG` arguments: `A=1 B="two words"`, or the legacy `ENV NAME value with spaces`."""
    words = shlex.split(text)
    if words and "=" not in words[0]:
        if len(words) == 1:
            return {words[0]: None}  # ARG NAME without a default
        return {words[0]: text.split(None, 1)[1]}
    return dict(word.split("=", 1) for word in words)


class DockerIgnore:
    """.dockerignore patterns: Go filepath.Match syntax plus `**`, `!` exceptions, last match wins.

    A pattern matching a directory excludes everything below it (unless a later `!` pattern brings a
    path back), as Docker does.
    """

    def __init__(self, text: str = ""):
        self.rules: list[tuple[re.Pattern, bool]] = []  # (pattern, excludes)
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            excludes = not line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((re.compile(_pattern_regex(pattern)), excludes))

    @classmethod
    def of(cls, context: Path) -> DockerIgnore:
        path = context / ".dockerignore"
        return cls(path.read_text(encoding="utf-8") if path.is_file() else "")

    def excluded(self, relative: str) -> bool:
        parts = PurePosixPath(relative).parts
        candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        verdict = False
        for pattern, excludes in self.rules:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                verdict = excludes
        return verdict


def _pattern_regex(pattern: str) -> str:
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif char == "*":
            regex += "[^/]*"
            i += 1
        elif char == "?":
            regex += "[^/]"
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                regex += re.escape(char)
                i += 1
            else:
                body = pattern[i + 1 : end]
                regex += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end + 1
        else:
            regex += re.escape(char)
            i += 1
    return regex


# -- the build -------------------------------------------------------------------------------------


@dataclass
class Image:
    """What the build has made so far: the image's filesystem (staging root), environment and metadata."""

    context: Path
    root: Path  # the image's "/"
    venv: Path  # stands in for the image's Python installation
    ignore: DockerIgnore
    overlays: dict[str, Path]  # first context path component -> directory used instead
    build_args: dict[str, str]  # from the command line
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in the current stage
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    created_users: list[str] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)
    healthcheck: Instruction | None = None
    cmd: list[str] | None = None
    stop_signal: str = "SIGTERM"
    consumed_args: set[str] = field(default_factory=set)

    def host_path(self, image_path: str) -> Path:
        path = PurePosixPath(self.workdir) / image_path  # an absolute image_path replaces workdir
        return self.root / str(path).lstrip("/")

    def variables(self) -> dict[str, str]:
        """What `$NAME` means in the current instruction: ARGs in scope, then ENV on top."""
        values = {name: value for name, value in self.args.items() if value is not None}
        return {**values, **self.env}

    def mapped(self, value: str) -> str:
        """An absolute image path in an ENV value, moved into the staging root (others unchanged)."""
        if value.startswith("/") and not value.startswith("//"):
            top = PurePosixPath(value).parts[1:2]
            if top and (self.root / top[0]).exists():
                return str(self.root / value.lstrip("/"))
        return value

    def process_env(self, *, build: bool) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("CAROUSEL_") and name not in HOST_ONLY_VARIABLES}
        if build:  # ARGs exist while building only
            env.update({name: value for name, value in self.args.items() if value is not None})
        env.update({name: self.mapped(value) for name, value in self.env.items()})
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
        env["VIRTUAL_ENV"] = str(self.venv)
        return env


def step(number: int, total: int, instruction: Instruction) -> None:
    print(f"\nStep {number}/{total} (Dockerfile:{instruction.line}): {instruction}", flush=True)


def note(message: str) -> None:
    print(f" ---> {message}", flush=True)


def build(instructions: list[Instruction], image: Image) -> None:
    handlers = {
        "FROM": do_from, "ARG": do_arg, "ENV": do_env, "WORKDIR": do_workdir, "COPY": do_copy, "ADD": do_copy,
        "RUN": do_run, "USER": do_user, "EXPOSE": do_expose, "HEALTHCHECK": do_healthcheck, "CMD": do_cmd,
        "LABEL": lambda i, im: note("label only"), "STOPSIGNAL": do_stopsignal,
    }
    for number, instruction in enumerate(instructions, start=1):
        step(number, len(instructions), instruction)
        handler = handlers.get(instruction.keyword)
        if handler is None:
            raise StepFailed(f"Dockerfile:{instruction.line}: {instruction.keyword} is not understood by this script; "
                             f"extend scripts/dockerfile_steps.py or keep to {', '.join(sorted(handlers))}")
        started = time.perf_counter()
        handler(instruction, image)
        if instruction.keyword == "RUN":
            note(f"done in {time.perf_counter() - started:.1f} s")
    unused = set(image.build_args) - image.consumed_args
    if unused:
        print(f"[warning] build arguments not declared by any ARG: {', '.join(sorted(unused))}")
    if image.cmd is None:
        raise StepFailed("the Dockerfile has no CMD")


def do_from(instruction: Instruction, image: Image) -> None:
    reference = substitute(instruction.arguments.split()[0], image.variables())
    if image.cmd is not None or image.venv.exists():
        raise StepFailed("multi-stage builds are not supported by this script")
    image.args = {}  # ARGs declared before FROM are not in scope after it
    tag = reference.rpartition(":")[2]
    match = re.match(r"(\d+)\.(\d+)", tag)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if reference.split(":")[0].split("/")[-1] == "python" and match:
        wanted = f"{match.group(1)}.{match.group(2)}"
        if wanted != here:
            print(f"[warning] the image runs Python {wanted}; this script runs on Python {here}")
    note(f"base {reference}: a fresh virtual environment of Python {here} ({sys.executable}) stands in for it")
    subprocess.run([sys.executable, "-m", "venv", str(image.venv)], check=True)


def do_arg(instruction: Instruction, image: Image) -> None:
    for name, default in parse_assignments(instruction.arguments).items():
        if name in image.build_args:
            value, origin = image.build_args[name], "--build-arg"
            image.consumed_args.add(name)
        else:
            value = None if default is None else substitute(default, image.variables())
            origin = "default"
        image.args[name] = value
        note(f"{name}={value!r} ({origin})")


def do_env(instruction: Instruction, image: Image) -> None:
    variables = image.variables()
    for name, value in parse_assignments(instruction.arguments).items():
        image.env[name] = substitute(value or "", variables)
        note(f"{name}={image.env[name]}")


def do_workdir(instruction: Instruction, image: Image) -> None:
    image.workdir = str(PurePosixPath(image.workdir) / substitute(instruction.arguments.strip(), image.variables()))
    image.host_path(".").mkdir(parents=True, exist_ok=True)
    note(f"{image.workdir} -> {image.host_path('.')}")


def _context_source(image: Image, relative: str) -> Path:
    parts = PurePosixPath(relative).parts
    if parts and parts[0] in image.overlays:
        return image.overlays[parts[0]].joinpath(*parts[1:])
    return image.context / relative


def do_copy(instruction: Instruction, image: Image) -> None:
    if instruction.keyword == "ADD":
        raise StepFailed(f"Dockerfile:{instruction.line}: use COPY (ADD's URL and archive handling is not mirrored)")
    if "from" in instruction.flags:
        raise StepFailed(f"Dockerfile:{instruction.line}: COPY --from (multi-stage) is not supported by this script")
    for flag in instruction.flags:
        note(f"--{flag} not applied outside a container")
    words = instruction.exec_form() or shlex.split(instruction.arguments)
    words = [substitute(word, image.variables()) for word in words]
    *sources, destination = words
    if not sources:
        raise StepFailed(f"Dockerfile:{instruction.line}: COPY needs a source and a destination")
    into_directory = destination.endswith("/") or len(sources) > 1
    copied = 0
    for source in sources:
        relative = os.path.normpath(source).lstrip("/")
        matches = _expand(image, relative)
        if not matches:
            raise StepFailed(f"Dockerfile:{instruction.line}: COPY source {source!r} not found in the context "
                             f"(or excluded by .dockerignore)")
        for match in matches:
            origin = _context_source(image, match)
            if origin.is_dir():
                target = image.host_path(destination)
                copied += _copy_tree(image, match, origin, target)
            else:
                into = into_directory or len(matches) > 1 or image.host_path(destination).is_dir()
                target = image.host_path(destination) / origin.name if into else image.host_path(destination)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
                copied += 1
    note(f"{copied} files into {PurePosixPath(image.workdir) / destination}")


def _expand(image: Image, pattern: str) -> list[str]:
    """Context paths (relative, posix) a COPY source names, wildcards expanded, .dockerignore applied."""
    if not any(char in pattern for char in "*?["):
        if pattern == ".":
            return ["."]
        return [pattern] if _context_source(image, pattern).exists() and not image.ignore.excluded(pattern) else []
    parent = PurePosixPath(pattern).parent
    names = sorted(p.name for p in _context_source(image, str(parent)).glob("*"))
    found = [str(parent / name) if str(parent) != "." else name for name in names]
    return [path for path in found if fnmatch.fnmatchcase(path, pattern) and not image.ignore.excluded(path)]


def _copy_tree(image: Image, relative: str, origin: Path, target: Path) -> int:
    """The contents of a directory (not the directory itself, as Docker), minus what is ignored."""
    count = 0
    target.mkdir(parents=True, exist_ok=True)
    for directory, subdirectories, files in os.walk(origin):
        inner = Path(directory).relative_to(origin)
        for name in sorted(files):
            context_path = str(PurePosixPath(relative) / inner.as_posix() / name).removeprefix("./")
            if image.ignore.excluded(context_path):
                continue
            destination = target / inner / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(directory) / name, destination)
            count += 1
        subdirectories.sort()
    return count


def do_run(instruction: Instruction, image: Image) -> None:
    for flag, value in instruction.flags.items():
        why = "the machine's own cache serves instead" if "type=cache" in value else "not applied outside a container"
        note(f"--{flag}={value}: {why}")
    argv = instruction.exec_form()
    command = instruction.arguments if argv is None else shlex.join(argv)
    words = shlex.split(command)
    if words and words[0] in USER_CREATION:
        if any(separator in command for separator in ("&&", "||", ";", "|", "\n", "$(", "`")):
            raise StepFailed(f"Dockerfile:{instruction.line}: keep {words[0]} in a RUN of its own, so this script "
                             f"can skip it (it would add a user to this machine)")
        user = words[-1]
        image.created_users.append(user)
        note(f"user {user!r} is created in the image; not on this machine")
        return
    argv = argv or ["/bin/sh", "-c", command]
    done = subprocess.run(argv, check=False, cwd=image.host_path("."), env=image.process_env(build=True))
    if done.returncode:
        raise StepFailed(f"Dockerfile:{instruction.line}: RUN exited with status {done.returncode}")


def do_user(instruction: Instruction, image: Image) -> None:
    user = substitute(instruction.arguments.strip(), image.variables()).split(":")[0]
    if user in ("root", "0"):
        raise StepFailed(f"Dockerfile:{instruction.line}: the service must not run as root")
    if not user.isdigit() and user not in image.created_users:
        raise StepFailed(f"Dockerfile:{instruction.line}: USER {user} was not created by an earlier RUN "
                         f"({' or '.join(USER_CREATION)})")
    image.user = user
    note(f"the image runs as {user!r}; here everything runs as {_current_user()!r}")


def do_expose(instruction: Instruction, image: Image) -> None:
    for word in substitute(instruction.arguments, image.variables()).split():
        image.exposed.append(int(word.split("/")[0]))
    note(f"ports {image.exposed}")


def do_healthcheck(instruction: Instruction, image: Image) -> None:
    if instruction.arguments.strip().upper() == "NONE":
        image.healthcheck = None
        return
    keyword, _, rest = instruction.arguments.partition(" ")
    if keyword.upper() != "CMD":
        raise StepFailed(f"Dockerfile:{instruction.line}: HEALTHCHECK needs CMD or NONE")
    image.healthcheck = Instruction("CMD", rest.strip(), instruction.flags, instruction.line)
    note(f"recorded ({', '.join(f'{k}={v}' for k, v in instruction.flags.items()) or 'default timing'})")


def do_cmd(instruction: Instruction, image: Image) -> None:
    image.cmd = instruction.exec_form() or ["/bin/sh", "-c", instruction.arguments]
    note(f"recorded {image.cmd}")


def do_stopsignal(instruction: Instruction, image: Image) -> None:
    image.stop_signal = instruction.arguments.strip()
    note(f"containers are stopped with {image.stop_signal}")


def _current_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


# -- running the CMD -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_port(argv: list[str], exposed: int, port: int) -> list[str]:
    """The command with the EXPOSEd port replaced by `port` in `--port N`, `--port=N` and `:N` URLs."""
    out, previous = [], ""
    for word in argv:
        if previous == "--port" and word == str(exposed):
            word = str(port)
        elif word == f"--port={exposed}":
            word = f"--port={port}"
        else:
            word = re.sub(rf":{exposed}\b", f":{port}", word)
        out.append(word)
        previous = word
    return out


def request(url: str, data: dict | None = None, timeout: float = 30) -> tuple[int, Mapping[str, str], object]:
    """(status, headers, JSON body or text) of a GET, or of a JSON POST when `data` is given."""
    body = None if data is None else json.dumps(data).encode()
    headers = {"Content-Type": "application/json"} if body else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=timeout) as answer:
            status, answer_headers, text = answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, answer_headers, text = error.code, error.headers, error.read().decode()
    try:
        return status, answer_headers, json.loads(text)
    except json.JSONDecodeError:
        return status, answer_headers, text


def _seconds(value: str | None, default: float) -> float:
    """A Docker duration (`30s`, `1m30s`, `500ms`) in seconds."""
    if not value:
        return default
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * units[unit] for number, unit in re.findall(r"([\d.]+)(ms|s|m|h)", value))


def run_cmd(image: Image, port: int, wait: float, log_path: Path) -> None:
    exposed = image.exposed[0] if image.exposed else port
    cmd = with_port(image.cmd, exposed, port)
    if port != exposed:
        if cmd == image.cmd:
            raise StepFailed(f"the CMD does not name port {exposed}; cannot move it to the free port {port}")
        note(f"port {exposed} -> {port} on this machine (CMD and HEALTHCHECK rewritten)")
    env = image.process_env(build=False)
    workdir = image.host_path(".")
    print(f"\nStarting CMD in {workdir} as {_current_user()!r} (the image's user is {image.user!r}):\n    {shlex.join(cmd)}",
          flush=True)
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _check_service(image, process, port, exposed, wait, env, workdir, log_path)
        print(f"\nStopping with {image.stop_signal}", flush=True)
        started = time.perf_counter()
        stop_signal = _signal(image.stop_signal)
        process.send_signal(stop_signal)
        try:
            status = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"the server did not exit within 60 s of {image.stop_signal}") from None
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        # `carousel serve` drains, then exits with status 0 (carousel/commands/serve.py), as a container's PID 1 or not.
        if status != 0 or "Traceback" in log_text:
            raise StepFailed(f"unclean exit (status {status}):\n{_tail(log_path)}")
        note(f"exit status 0 in {time.perf_counter() - started:.1f} s, no traceback in the log")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _check_service(image, process, port, exposed, wait, env, workdir, log_path) -> None:
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    started = time.perf_counter()

    def alive() -> None:
        if process.poll() is not None:
            raise StepFailed(f"the server exited with status {process.returncode}:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            raise StepFailed(f"gave up after {wait:.0f} s:\n{_tail(log_path)}")

    if image.healthcheck is None:
        raise StepFailed("the Dockerfile has no HEALTHCHECK")
    check = image.healthcheck.exec_form() or ["/bin/sh", "-c", image.healthcheck.arguments]
    check = with_port(check, exposed, port)
    timeout = _seconds(image.healthcheck.flags.get("timeout"), 30)
    print(f"\nHEALTHCHECK until it succeeds: {json.dumps(check)}", flush=True)
    while True:
        alive()
        try:
            done = subprocess.run(check, check=False, cwd=workdir, env=env, capture_output=True, timeout=timeout)
            if done.returncode == 0:
                break
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.5)
    note(f"healthy after {time.perf_counter() - started:.1f} s")

    print("\nGET /ready until 200", flush=True)
    while True:
        alive()
        try:
            status, headers, answer = request(f"{base}/ready", timeout=5)
        except OSError:
            status, headers, answer = 0, {}, None
        if status == 200:
            break
        if status == 503 and headers.get("Retry-After") is None:  # not loading any more: it never will be ready
            raise StepFailed(f"/ready answered 503 after loading: {answer}")
        time.sleep(0.5)
    note(f"ready after {time.perf_counter() - started:.1f} s: {answer}")

    print("\nGET /languages, POST /translate", flush=True)
    status, _, languages = request(f"{base}/languages")
    pairs = [(entry["code"], target) for entry in languages for target in entry["targets"]] if status == 200 else []
    if not pairs:
        raise StepFailed(f"/languages answered {status} with no language pair: {languages}")
    source, target = pairs[0]
    text = "En el principio creó Dios los cielos y la tierra." if source == "es" else "In the beginning God created the heavens and the earth."
    status, _, answer = request(f"{base}/translate", {"q": text, "source": source, "target": target})
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("translatedText"), str):
        raise StepFailed(f"/translate {source}->{target} answered {status}: {answer}")
    note(f"{source}->{target}: {text!r} -> {answer['translatedText']!r}")


def _signal(name: str) -> signal.Signals:
    """A STOPSIGNAL value (`SIGTERM`, `TERM` or `15`) as a signal."""
    if name.isdigit():
        return signal.Signals(int(name))
    return signal.Signals[name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"]


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _check_torch(image: Image) -> None:
    """The image is CPU-only: the installed torch must not be a CUDA build."""
    probe = "import torch; print(torch.__version__, torch.version.cuda)"
    done = subprocess.run([str(image.venv / "bin" / "python"), "-c", probe], check=False, capture_output=True, text=True,
                          env=image.process_env(build=False))
    if done.returncode:
        raise StepFailed(f"torch does not import in the built environment:\n{done.stderr}")
    version, cuda = done.stdout.split()
    if cuda != "None":
        raise StepFailed(f"torch {version} is a CUDA {cuda} build; the image is meant to carry the CPU build")
    note(f"torch {version}, CPU build")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=Path, default=ROOT, help="build context (default: the repository)")
    parser.add_argument("--dockerfile", type=Path, help="default: CONTEXT/Dockerfile")
    parser.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--models-from", type=Path, metavar="DIR", help="use DIR in place of the context's models/")
    parser.add_argument("--staging", type=Path, help="where the image root and venv go (default: a new temporary directory)")
    parser.add_argument("--port", type=int, default=0, help="port on this machine for the CMD (default: a free one)")
    parser.add_argument("--wait", type=float, default=180, help="seconds to wait for health and readiness")
    parser.add_argument("--keep", action="store_true", help="keep the staging directory")
    args = parser.parse_args(argv)

    context = args.context.resolve()
    dockerfile = args.dockerfile or context / "Dockerfile"
    build_args = {}
    for item in args.build_arg:
        name, equals, value = item.partition("=")
        build_args[name] = value if equals else os.environ.get(name, "")
    overlays = {}
    if args.models_from:
        if not args.models_from.is_dir():
            parser.error(f"--models-from {args.models_from}: not a directory")
        overlays["models"] = args.models_from.resolve()
    staging = args.staging or Path(tempfile.mkdtemp(prefix="dockerfile-steps-"))
    staging.mkdir(parents=True, exist_ok=True)
    if any(staging.iterdir()):
        parser.error(f"--staging {staging}: not empty")
    image = Image(context=context, root=staging / "root", venv=staging / "venv", ignore=DockerIgnore.of(context),
                  overlays=overlays, build_args=build_args)
    image.root.mkdir()
    print(f"Dockerfile {dockerfile}, context {context}, staging {staging}", flush=True)
    started = time.perf_counter()
    try:
        build(parse_dockerfile(dockerfile.read_text(encoding="utf-8")), image)
        note(f"built in {time.perf_counter() - started:.1f} s")
        _check_torch(image)
        run_cmd(image, args.port or free_port(), args.wait, staging / "cmd.log")
    except StepFailed as error:
        print(f"\nFAILED: {error}", file=sys.stderr, flush=True)
        if args.keep or args.staging:
            print(f"staging kept in {staging}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and not args.staging:
            shutil.rmtree(staging, ignore_errors=True)
    print(f"\nAll steps passed in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
