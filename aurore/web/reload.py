"""Step 5's edit loop: an edit of the participant's script is served at the next request, the models kept loaded.

Exercise 5 is edit -> reload the page. Restarting the server would import TensorFlow and read the weights again
(10-15 s); Flask's debug reloader restarts the whole process (and its debugger must never face a network). Here the
WSGI app waitress serves checks the script's modification time at each request (a `stat`, so it works on a Docker
bind mount too); when it changed, the script is imported again and its `create_app(models)` called on the models
already loaded: the compiled decoders, workers and queues stay. An edit that breaks (a syntax error, an exception in
`create_app`) keeps the last good app serving and says what broke, in the console and on the pages, until the next
good edit. A request runs to its end on the app that took it.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

STEP_SCRIPT = re.compile(r"^[1-6]_\w+\.py$")


@dataclass
class ReloadStatus:
    error: str | None = None  # what broke at the last reload (French), None when the app is current


STATUS = ReloadStatus()  # one server per process; the pages show STATUS.error (web.setup)
_names = itertools.count(1)


def where_it_broke(error: BaseException) -> str:
    """"5_flask.py, ligne 42 : NameError: …": the participant's line (a step script's last frame), else the error."""
    if isinstance(error, SyntaxError):
        return f"{Path(error.filename or '?').name}, ligne {error.lineno} : erreur de syntaxe ({error.msg})"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if STEP_SCRIPT.match(Path(f.filename).name)]
    place = f"{Path(frames[-1].filename).name}, ligne {frames[-1].lineno} : " if frames else ""
    return f"{place}{type(error).__name__}: {error}"


def load_create_app(script: Path) -> Callable:
    """Import the script again under a name of its own (its `if __name__ == "__main__"` block does not run)."""
    spec = importlib.util.spec_from_file_location(f"aurore_step_reloaded_{next(_names)}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_app


class ReloadingApp:
    """The WSGI app: the current Flask app, made again from `script` when the file changes."""

    def __init__(self, script: str | Path, app, models):
        self.script, self.app, self.models = Path(script).resolve(), app, models
        self._seen = self._stamp()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int]:
        try:
            found = self.script.stat()
            return found.st_mtime_ns, found.st_size
        except OSError:
            return 0, 0  # mid-save by an editor: try again at the next request

    def __call__(self, environ, start_response):
        if self._stamp() != self._seen:
            with self._lock:  # one reload, even when several requests arrive together
                if self._stamp() != self._seen:
                    self._seen = self._stamp()
                    self.reload()
        return self.app(environ, start_response)  # the app current when this request arrived, to its end

    def reload(self) -> bool:
        try:
            app = load_create_app(self.script)(self.models)
        except Exception as error:  # a syntax error is one too: keep serving the last good app
            STATUS.error = where_it_broke(error)
            print(f"\nerreur : la nouvelle version de {self.script.name} ne se charge pas : {STATUS.error}\n"
                  "  -> La page sert encore la version précédente ; corrigez le fichier et enregistrez : elle est "
                  "rechargée à la requête suivante.", flush=True)
            return False
        self.app, STATUS.error = app, None
        print(f"{self.script.name} modifié : rechargé (les modèles restent chargés).", flush=True)
        return True
