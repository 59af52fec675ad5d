"""Run the command blocks of a markdown guide, in order, in one shell, as a person would.

A runnable block is a fenced ```console block. In it, a line that starts with `$ ` is a command
(a line ending in a backslash continues it on the next line); the lines after it, up to the next
command, are what the guide says it prints. One bash session runs every command in the guide's
order, so what one command exports the next ones see, as in a terminal; each command's output
(stdout and stderr together) and exit status are kept apart.

    .venv/bin/python -m tests.scripts.guide_session docs/operator-guide.md URL

runs a guide against the chain at URL (its commands' `http://127.0.0.1:8545` replaced by URL)
and prints each command with what it printed: the way to write a guide's transcript.

A command whose shown output holds an `Error: ` line is an error example: it must exit nonzero
and print that one line, and nothing else but Ape's own log lines (`INFO:`, `SUCCESS:`, ...).
Every other command must exit 0 and print the lines shown, in that order, among its output. In a
shown line, `...` stands for any text (addresses and times that differ from run to run).
"""

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEVNET_URL = "http://127.0.0.1:8545"
# Ape's logger prefixes; these lines come and go with Ape's verbosity, the guide leaves them out.
APE_LOG = re.compile(r"^(DEBUG|INFO|SUCCESS|WARNING):\s")


@dataclass
class Command:
    """One command of the guide, with what the guide shows it printing."""

    text: str
    line: int  # where it starts in the guide (1-based)
    shown: list[str] = field(default_factory=list)

    @property
    def is_error_example(self) -> bool:
        return any(line.startswith("Error: ") for line in self.shown)


@dataclass
class Result:
    """What one command did in the session."""

    command: Command
    ran: str  # the command as run (the devnet URL put in)
    exit_code: int
    output: str

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.output.splitlines()]

    def problems(self) -> list[str]:
        """Return how the command differs from what the guide says (empty when it does not)."""
        shown = [line for line in self.command.shown if line.strip()]
        if self.command.is_error_example:
            said = [line for line in self.lines if line.strip() and not APE_LOG.match(line)]
            problems = []
            if self.exit_code == 0:
                problems.append("exited 0, the guide shows an error")
            if len(said) != 1 or not matches(shown[-1], said[0]):
                problems.append(f"printed {said!r}, the guide shows the one line {shown[-1]!r}")
            return problems
        if self.exit_code != 0:
            return [f"exited {self.exit_code}"]
        missing = unmatched(shown, self.lines)
        return [f"did not print {missing!r} (after the lines before it)"] if missing else []

    def report(self) -> str:
        """The command, where it is in the guide, and what it printed."""
        return (
            f"guide line {self.command.line}: $ {self.ran}\n"
            f"exit {self.exit_code}; printed:\n{self.output}"
        )


def parse_guide(text: str) -> list[Command]:
    """Return the commands of the guide's ```console blocks, in order."""
    commands: list[Command] = []
    in_block = False
    continued: Command | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.rstrip()
        if stripped.startswith("```"):
            in_block = stripped == "```console" if not in_block else False
            continued = None
            continue
        if not in_block:
            continue
        if continued is not None:
            continued.text += "\n" + stripped
            continued = continued if stripped.endswith("\\") else None
        elif stripped.startswith("$ "):
            commands.append(Command(text=stripped[2:], line=number))
            continued = commands[-1] if stripped.endswith("\\") else None
        elif commands:
            commands[-1].shown.append(stripped)
    return commands


def matches(shown: str, printed: str) -> bool:
    """Whether a printed line is the shown line, where `...` in it stands for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.rstrip().split("..."))
    return re.fullmatch(pattern, printed.rstrip()) is not None


def unmatched(shown: list[str], printed: list[str]) -> str | None:
    """Return the first shown line not printed in order after the ones before it, or None."""
    position = 0
    for line in shown:
        while position < len(printed) and not matches(line, printed[position]):
            position += 1
        if position == len(printed):
            return line
        position += 1
    return None


def clean_environment() -> dict[str, str]:
    """The environment of a new terminal: no APE_FOUNDRY_HOST, the repo's tools not on PATH.

    The guide's first command sets both; a session that inherited them would not test it.
    """
    env = dict(os.environ)
    env.pop("APE_FOUNDRY_HOST", None)
    tools = {(REPO / ".venv" / "bin").resolve(), (REPO / "node_modules" / ".bin").resolve()}
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if p and Path(p).resolve() not in tools)
    env.pop("VIRTUAL_ENV", None)
    return env


def run_session(
    commands: list[Command], url: str, workdir: Path, timeout: float = 900
) -> list[Result]:
    """Run ``commands`` in order in one bash session at the repo root, against the chain at ``url``.

    Each command's `http://127.0.0.1:8545` (the devnet of `make run`) becomes ``url``, the one
    change from the guide: a test's devnet listens on a port of its own.
    """
    ran = [command.text.replace(DEVNET_URL, url) for command in commands]
    script = [f"cd {_quote(str(REPO))}"]
    for index, text in enumerate(ran):
        out, code = workdir / f"{index}.out", workdir / f"{index}.rc"
        script.append(f"{{\n{text}\n}} >{_quote(str(out))} 2>&1\necho $? >{_quote(str(code))}")
    session = workdir / "session.sh"
    session.write_text("\n".join(script) + "\n")
    subprocess.run(
        ["bash", "--noprofile", "--norc", str(session)],
        stdin=subprocess.DEVNULL,
        env=clean_environment(),
        cwd=REPO,
        timeout=timeout,
        check=True,
    )
    results = []
    for index, command in enumerate(commands):
        code = workdir / f"{index}.rc"
        if not code.exists():  # the session ended before it (a command ran `exit`)
            break
        output = (workdir / f"{index}.out").read_text()
        results.append(Result(command, ran[index], int(code.read_text()), output))
    return results


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def main(guide: Path, url: str) -> None:
    """Run the guide against ``url`` and print each command with what it printed."""
    import tempfile

    commands = parse_guide(guide.read_text())
    with tempfile.TemporaryDirectory() as workdir:
        for result in run_session(commands, url, Path(workdir)):
            print(f"$ {result.ran}  [exit {result.exit_code}]")
            print(result.output, end="" if result.output.endswith("\n") else "\n")
            for problem in result.problems():
                print(f"!! {problem}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
