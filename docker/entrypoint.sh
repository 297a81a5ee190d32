#!/bin/sh
# The image's entrypoint, started by tini (PID 1, which passes `docker stop`'s SIGTERM on to the command, so the
# server ends at once). It runs the command (by default step 5's server) so that what the steps write into the
# mounted exercises folder belongs to its owner on the host, whatever the host's UID:
#   - started as root (the default): the command runs as the owner uid:gid of the folder (as root if root owns it:
#     a root-owned folder, or rootless Docker / Podman, where the host user is root in the container);
#   - started with `--user N`: it stays N, with a writable HOME.
# It then checks that the folder can be written (a clear message and exit 1 if not, instead of a Python traceback),
# keeps Hugging Face downloads in the folder (models/hf-cache: a model fetched once is there for the next run,
# offline too), and sets umask 022 (what it writes is readable by the group and others).
# The folder is AURORE_WORKDIR when set, else /aurore; the tests run this script outside Docker with a temporary one.
set -eu

workdir=${AURORE_WORKDIR:-/aurore}
umask 022

uid=$(id -u)
gid=$(id -g)
switch=
if [ "$uid" = 0 ]; then
    mkdir -p "$workdir" 2> /dev/null || true
    if [ -d "$workdir" ]; then
        uid=$(stat -c %u "$workdir")
        gid=$(stat -c %g "$workdir")
    fi
    [ "$uid" = 0 ] || switch=yes
fi

# Runs a command as the user the step will run as.
as_user() {
    if [ -n "$switch" ]; then
        setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
    else
        "$@"
    fi
}

export HF_HOME="${HF_HOME:-$workdir/models/hf-cache}"

for dir in "$workdir" "$workdir/data" "$workdir/models" "$HF_HOME"; do
    if [ "$dir" = "$workdir" ] || [ -e "$dir" ]; then
        as_user test -d "$dir" -a -w "$dir" -a -x "$dir" && continue
        owner=$(stat -c %u:%g "$dir" 2> /dev/null || echo "?")
        cat >&2 << EOF
erreur : impossible d'écrire dans le dossier $dir (le conteneur tourne sous l'UID $uid:$gid, le dossier appartient à $owner).
Les étapes écrivent leurs résultats dans data/ et models/ du dossier $workdir (le dossier monté) : il doit être accessible en écriture.
Que faire, sur votre machine, depuis le dossier du dépôt :
  - lancez le conteneur sans --user : il prend de lui-même l'UID du propriétaire du dossier monté ;
  - ou donnez le dossier à votre utilisateur :  sudo chown -R \$(id -u):\$(id -g) aurore
  - ou rendez-le inscriptible :                 chmod -R u+rwX aurore
  - ou lancez le conteneur sous votre UID :     docker run --user \$(id -u):\$(id -g) ...
Vérifiez aussi que le dossier n'est pas monté en lecture seule (:ro à la fin de -v).
EOF
        exit 1
    fi
done

# HOME: libraries keep their settings there (Keras, Matplotlib). A user without a home of their own (a switched
# UID, or --user N) gets a private one in /tmp, which lasts as long as the container.
if ! as_user test -d "${HOME:-/nonexistent}" -a -w "${HOME:-/nonexistent}"; then
    HOME="${TMPDIR:-/tmp}/aurore-home-$uid"
    as_user mkdir -p "$HOME"
fi
export HOME

if [ -n "$switch" ]; then
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
fi
exec "$@"
