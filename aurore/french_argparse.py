"""argparse in French, for every command line of the workshop (the steps, `python -m aurore`, the set-up).

Standard library only, like `aurore/config.py` and `aurore/bootstrap.py` that import it: any Python from 3.9 runs
it before `.venv` exists.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import NoReturn

# argparse's own messages (Python 3.10-3.13), as participants should read them.
_ARGPARSE_MESSAGES = [
    (r"unrecognized arguments: (.*)", r"option inconnue de cette étape : \1"),
    (r"argument (\S+): invalid choice: (.*) \(choose from (.*)\)", r"\1 : choix inconnu \2 (au choix : \3)"),
    (r"argument (\S+): expected one argument", r"l'option \1 attend une valeur"),
    (r"argument (\S+): invalid (\w+) value: (.*)", r"\1 : valeur invalide \3"),
    (r"argument (\S+): ignored explicit argument (.*)", r"l'option \1 ne prend pas de valeur (reçu \2)"),
    (r"ambiguous option: (\S+) could match (.*)", r"option ambiguë : \1 peut désigner \2"),
    (r"the following arguments are required: (.*)", r"il manque : \1"),
]


class _FrenchHelp(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, "usage : " if prefix is None else prefix)


class FrenchArgumentParser(argparse.ArgumentParser):
    """argparse as the participants read it: the help's headings and the command-line errors in French, each
    error followed by the command that lists the step's options (rather than the whole usage line)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, add_help=False, formatter_class=_FrenchHelp, **kwargs)
        self._optionals.title = "options"
        self._positionals.title = "arguments"
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS, help="affiche cette aide")

    def error(self, message: str) -> NoReturn:
        for pattern, french in _ARGPARSE_MESSAGES:
            if re.fullmatch(pattern, message):
                message = re.sub(pattern, french, message)
                break
        command = self.prog if self.prog.startswith("python ") else f"python {sys.argv[0]}"  # as it was typed
        self.exit(2, f"erreur : {message}{self._suggestion(message)}\n"
                     f"  -> Les options de cette commande : {command} --help\n")

    def _suggestion(self, message: str) -> str:
        """For an unknown flag, the step's own flag it most resembles (step 6's --batch-size: --mini-batch-size)."""
        unknown = re.match(r"option inconnue de cette étape : (--[\w-]+)", message)
        known = [option for action in self._actions for option in action.option_strings if option.startswith("--")]
        if not unknown:
            return ""
        flag = unknown.group(1)
        mini = "--mini-" + flag[2:]  # step 6 names its own settings so
        close = [mini] if mini in known else difflib.get_close_matches(flag, known, n=1, cutoff=0.8)
        return f" (vouliez-vous dire {close[0]} ?)" if close else ""
