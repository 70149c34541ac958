"""`jobstack completion bash|zsh`: a shell completion script, written from the parser itself so it never
drifts from the commands. Install: `eval "$(jobstack completion bash)"` in ~/.bashrc (zsh: `... zsh`)."""

from __future__ import annotations

import argparse

from cli.errors import OK

_BASH = """_jobstack_complete() {
    local cur="${COMP_WORDS[COMP_CWORD]}" command="" action="" skip="" i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if [[ -n "$skip" ]]; then skip=""; continue; fi
        case "$word" in
            %(valued)s) skip=1 ;;
            -*) ;;
            *) if [[ -z "$command" ]]; then command="$word"; elif [[ -z "$action" ]]; then action="$word"; fi ;;
        esac
    done
    local words
    case "$command" in
%(cases)s
        *) words="%(commands)s %(global)s" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _jobstack_complete jobstack
"""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for action in parser._actions for o in action.option_strings if o.startswith("--"))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _valued(parser: argparse.ArgumentParser) -> set[str]:
    """Options that take a value (the word after them is not a command)."""
    found = {o for a in parser._actions for o in a.option_strings if a.nargs != 0 and o.startswith("--")}
    for sub in _subparsers(parser).values():
        found |= _valued(sub)
    return found


def bash_script(parser: argparse.ArgumentParser) -> str:
    commands = _subparsers(parser)
    cases = []
    for name, sub in sorted(commands.items()):
        actions = _subparsers(sub)
        if actions:
            inner = " ".join(f'{action}) words="{" ".join(_options(p))}" ;;' for action, p in sorted(actions.items()))
            cases.append(f'        {name}) case "$action" in {inner} *) words="{" ".join(sorted(actions))}" ;; esac ;;')
        else:
            cases.append(f'        {name}) words="{" ".join(_options(sub))}" ;;')
    return _BASH % {
        "valued": "|".join(sorted(_valued(parser))),
        "cases": "\n".join(cases),
        "commands": " ".join(sorted(commands)),
        "global": " ".join(o for o in _options(parser) if o != "--help"),
    }


def cmd_completion(args: argparse.Namespace) -> int:
    """`jobstack completion bash|zsh`: the script for this very parser."""
    from cli.parser import build_parser

    return print_completion(build_parser(), args.shell)


def print_completion(parser: argparse.ArgumentParser, shell: str) -> int:
    script = bash_script(parser)
    if shell == "zsh":  # zsh runs bash completion functions through bashcompinit
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    print(script, end="")
    return OK
