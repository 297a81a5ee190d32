#!/usr/bin/env bash
# CI: build the workshop image and run the documented Docker commands in it, offline, on the stand-in model:
#   steps 1-4 in a folder owned by UID 1000, then in one owned by UID 1234 (the steps must write as the owner);
#   step 1 in a root-owned folder and with --user; a folder the container cannot write (a clear message, exit 1);
#   the default command (step 5's server): /healthz, POST /api/generate, then `docker stop` in under 2 s;
#   the offline room: the organisers' kit built here (python -m aurore kit), then a bare Debian container with
#   --network none installs from it (python3 -m aurore setup --kit), passes doctor, runs steps 1-4 on the stand-in
#   and answers one request on step 5.
#   bash .ci/docker-smoke.sh          (called by .ci/run after the test suite)
# Without a Docker engine it installs Debian's docker.io and starts dockerd itself (stopped again at the end).
# Without Docker Hub it builds the base image with debootstrap (Debian bookworm + python3) and `docker import`s it
# as aurore-base:bookworm. Both images stay in Docker's store, so a rerun reuses them and the build cache.
# Outside CI (CI unset), a machine where Docker cannot be had (no root, no sudo) skips with a message.
# Settings: AURORE_GUTENBERG_MIRROR (the books, default ../shared/corpus/gutenberg), AURORE_DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."
image=text-gen-smoke
local_base=aurore-base:bookworm
books=${AURORE_GUTENBERG_MIRROR:-$(cd .. && pwd)/shared/corpus/gutenberg}
books=${books#file://}
in_ci=$([ -n "${CI:-}" ] && [ "${CI:-}" != false ] && echo yes || true)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aurore-docker-smoke.XXXXXX")
chmod 755 "$tmp"

dockerd_pid=
skipped=
containers=()
stage_names=()
stage_seconds=()
stage_name=
stage_start=

say() { printf '[docker-smoke] %s\n' "$*"; }
fail() {
  printf '[docker-smoke] FAILED: %s\n' "$*" >&2
  exit 1
}
now() { date +%s.%N; }
stage() {  # ends the current stage (recording its time), starts the next one
  if [ -n "$stage_name" ]; then
    stage_names+=("$stage_name")
    stage_seconds+=("$(awk -v a="$stage_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')")
    say "  done in ${stage_seconds[-1]} s"
  fi
  stage_name=${1:-}
  stage_start=$(now)
  [ -z "$stage_name" ] || say "== $stage_name"
}
report() {
  [ ${#stage_names[@]} -gt 0 ] || return 0
  say "timings:"
  for i in "${!stage_names[@]}"; do printf '  %7s s  %s\n' "${stage_seconds[$i]}" "${stage_names[$i]}"; done
}

sudo=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then sudo=sudo; else sudo=none; fi
fi
as_root() {
  [ "$sudo" != none ] || return 1
  ${sudo:+$sudo} "$@"
}
docker_sudo=
# shellcheck disable=SC2032,SC2033  # `docker` below is this function; `sudo docker` is meant to be the real client
docker() { if [ -n "$docker_sudo" ]; then sudo docker "$@"; else command docker "$@"; fi; }
alive() { [ -d "/proc/$1" ]; }

cleanup() {
  local status=$?
  set +e
  [ -z "$stage_name" ] || [ "$status" = 0 ] || say "(failed during: $stage_name)"
  for name in "${containers[@]}"; do docker rm -f "$name" > /dev/null 2>&1; done
  # The work folders hold files of other UIDs: removed from inside a container (root there), then here.
  if docker info > /dev/null 2>&1 && docker image inspect "$image" > /dev/null 2>&1; then
    docker run --rm --entrypoint rm -v "$tmp:/w" "$image" -rf /w/work > /dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd this script started (pid $dockerd_pid)"
    as_root kill "$dockerd_pid"
    for _ in $(seq 60); do alive "$dockerd_pid" || break; sleep 0.5; done
    wait "$dockerd_pid" 2> /dev/null
  fi
  rm -rf --one-file-system "$tmp" 2> /dev/null || as_root rm -rf --one-file-system "$tmp"
  report
  [ "$status" != 0 ] || [ -n "$skipped" ] || say "all checks passed"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip_or_fail() {
  if [ -n "$in_ci" ]; then fail "$1"; fi
  say "skipped: $1 (CI is not set, so this is not an error)"
  skipped=yes
  exit 0
}

apt_install() {
  if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$@"; } > "$tmp/apt.log" 2>&1; then
    tail -20 "$tmp/apt.log" >&2
    return 1
  fi
}

# -- a Docker engine ----------------------------------------------------------------------------------------------
stage "Docker engine"
[ -d "$books" ] || fail "the books folder $books does not exist (set AURORE_GUTENBERG_MIRROR to a folder of pg<ID>.txt)"
books=$(cd "$books" && pwd)
if ! docker info > /dev/null 2>&1; then
  # shellcheck disable=SC2033
  if [ "$sudo" = sudo ] && sudo docker info > /dev/null 2>&1; then
    docker_sudo=yes
  else
    [ "$sudo" != none ] || skip_or_fail "no Docker engine answers, and installing one needs root or sudo"
    if ! command -v dockerd > /dev/null; then
      say "installing Debian's docker.io"
      apt_install docker.io || skip_or_fail "could not install docker.io with apt"
    fi
    say "starting dockerd (log: $tmp/dockerd.log)"
    ${sudo:+"$sudo"} dockerd > "$tmp/dockerd.log" 2>&1 &  # not through a function: $! must be dockerd (or sudo)
    dockerd_pid=$!
    [ -z "$sudo" ] || docker_sudo=yes
    for _ in $(seq 120); do
      docker info > /dev/null 2>&1 && break
      alive "$dockerd_pid" || { tail -20 "$tmp/dockerd.log" >&2; dockerd_pid=; skip_or_fail "dockerd exited at start"; }
      sleep 0.5
    done
    docker info > /dev/null 2>&1 || { tail -20 "$tmp/dockerd.log" >&2; skip_or_fail "dockerd did not answer within 60 s"; }
  fi
fi
say "engine: Docker $(docker version --format '{{.Server.Version}}')"

# -- the base image: python:3.11-slim, else Debian bookworm by debootstrap ----------------------------------------
stage "base image"
proxy_args=()
for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  [ -z "${!var:-}" ] || proxy_args+=(--build-arg "$var=${!var}")
done
[ ${#proxy_args[@]} = 0 ] || proxy_args+=(--network host)  # a proxy on this machine's loopback must be reachable

debian_mirror() {  # the Debian mirror this machine's apt uses (not the security one)
  sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2> /dev/null \
    | tr ' ' '\n' | grep -E '^https?://.*/debian/?$' | head -1
}

build_local_base() {
  command -v debootstrap > /dev/null || apt_install debootstrap || fail "could not install debootstrap with apt"
  local mirror=${AURORE_DEBIAN_MIRROR:-$(debian_mirror)}
  [ -n "$mirror" ] || fail "no Debian mirror in this machine's apt sources: set AURORE_DEBIAN_MIRROR"
  local rootfs=$tmp/rootfs
  say "debootstrap bookworm from $mirror (log: $tmp/debootstrap.log)"
  as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" \
    > "$tmp/debootstrap.log" 2>&1 || { tail -20 "$tmp/debootstrap.log" >&2; fail "debootstrap failed"; }
  # This machine's own CA certificates (a TLS-inspecting proxy's), so that pip in the build trusts what it trusts.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
    as_root cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    as_root chroot "$rootfs" update-ca-certificates > /dev/null 2>&1
  fi
  as_root chroot "$rootfs" apt-get clean
  as_root rm -rf "$rootfs/var/lib/apt/lists"/*
  local changes=(-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'ENV LANG=C.UTF-8')
  local index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2> /dev/null || true)}
  if [[ $index =~ ^https?:// ]]; then changes+=(-c "ENV PIP_INDEX_URL=$index"); fi
  as_root tar -C "$rootfs" -c . | docker import "${changes[@]}" - "$local_base" > /dev/null
  grep -qs " $rootfs" /proc/mounts && fail "debootstrap left file systems mounted under $rootfs"
  as_root rm -rf --one-file-system "$rootfs"
}

base=python:3.11-slim
if docker image inspect "$base" > /dev/null 2>&1; then
  say "using $base (already here)"
elif timeout 120 docker pull -q "$base" > "$tmp/pull.log" 2>&1; then
  say "using $base (pulled)"
else
  say "cannot pull $base: $(tail -1 "$tmp/pull.log")"
  base=$local_base
  if docker image inspect "$base" > /dev/null 2>&1; then
    say "using $base (built by an earlier run)"
  else
    build_local_base
    say "using $base (built now)"
  fi
fi

# -- the image ----------------------------------------------------------------------------------------------------
stage "docker build"
docker build --build-arg "BASE=$base" ${proxy_args[@]+"${proxy_args[@]}"} -t "$image" . > "$tmp/build.log" 2>&1 \
  || { tail -40 "$tmp/build.log" >&2; fail "docker build failed (the last lines are above)"; }
say "image $image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.2f GB", $1 / 1e9 }')"

# -- the steps, as the workshop runs them -------------------------------------------------------------------------
new_workdir() {  # new_workdir NAME UID: a copy of the exercises (no data/, no models/) owned by UID
  local dir=$tmp/work/$1
  mkdir -p "$dir"
  tar -C aurore --exclude=./data --exclude=./models --exclude=./nltk_data --exclude=__pycache__ -c . | tar -C "$dir" -x
  docker run --rm --entrypoint chown -v "$dir:/w" "$image" -R "$2:$2" /w
  echo "$dir"
}

run_in() {  # run_in DIR [docker run options...] -- COMMAND...: the documented `docker run`, offline, on the stand-in
  local dir=$1 options=()
  shift
  while [ "$1" != -- ]; do options+=("$1"); shift; done
  shift
  local name=aurore-smoke-$$-${#containers[@]}
  containers+=("$name")
  say "  docker run --rm -v <folder>:/aurore ${options[*]+${options[*]} }$image $*"
  timeout 600 docker run --rm --name "$name" -v "$dir:/aurore" -v "$books:/books:ro" \
    -e AURORE_GUTENBERG_MIRROR=/books -e HF_HUB_OFFLINE=1 -e AURORE_BASE_MODEL=/aurore/models/standin \
    -e AURORE_MAX_NEW_TOKENS=8 ${options[@]+"${options[@]}"} "$image" "$@"
}

run_step() {  # run_step DIR COMMAND...: fails the script, with the step's output, when the step fails
  local dir=$1
  shift
  run_in "$dir" -- "$@" > "$tmp/step.log" 2>&1 || { tail -30 "$tmp/step.log" >&2; fail "step failed: $*"; }
}

check_owner() {  # check_owner DIR UID: everything in DIR belongs to UID (and, a warning only, can be read by the group)
  local strangers
  strangers=$(find "$1" ! -uid "$2" | head -5)
  [ -z "$strangers" ] || fail "files in $1 do not belong to UID $2: $strangers"
  # The entrypoint's umask 022 covers ordinary files; folders made by tempfile.mkdtemp stay 0700 whatever the umask.
  strangers=$(find "$1" ! -perm -g+r -printf '%m %P\n' | head -5)
  [ -z "$strangers" ] || say "  warning: not readable by the group (mode, path): $(tr '\n' ' ' <<< "$strangers")"
}

for uid in 1000 1234; do
  stage "steps 1-4 (standin) in a folder of UID $uid"
  dir=$(new_workdir "uid$uid" "$uid")
  run_step "$dir" python aurore/1_prepare_dataset_solution.py
  run_step "$dir" python -m aurore build-standin
  run_step "$dir" python aurore/2_tokenize_solution.py
  run_step "$dir" python aurore/3_train_solution.py --max-steps 5
  run_step "$dir" python aurore/4_generate_solution.py
  run_step "$dir" python -m aurore doctor  # in the image: every check passes (books cached, the stand-in, the port)
  [ -d "$dir/models/gpt2-george-sand" ] || fail "step 3 wrote no model in $dir/models"
  check_owner "$dir" "$uid"
done

stage "step 1 in a root-owned folder, and with --user"
dir=$(new_workdir root 0)
run_step "$dir" python aurore/1_prepare_dataset_solution.py
check_owner "$dir" 0
dir=$(new_workdir user 1234)
run_in "$dir" --user 1234:1234 -- python aurore/1_prepare_dataset_solution.py > "$tmp/step.log" 2>&1 \
  || { tail -30 "$tmp/step.log" >&2; fail "step 1 with --user 1234 failed"; }
check_owner "$dir" 1234
if run_in "$tmp/work/uid1000" --user 1234:1234 -- python aurore/1_prepare_dataset_solution.py > "$tmp/step.log" 2>&1; then
  fail "--user 1234 on a folder of UID 1000 should stop with a message"
fi
if ! grep -q "impossible d'écrire dans le dossier /aurore" "$tmp/step.log" || grep -q Traceback "$tmp/step.log"; then
  cat "$tmp/step.log" >&2
  fail "an unwritable folder should give the entrypoint's message, not this"
fi

# -- the default command: step 5's server ---------------------------------------------------------------------------
stage "server start (default command) until /healthz answers"
server=aurore-smoke-$$-server
containers+=("$server")
docker run -d --name "$server" -p 127.0.0.1::8080 -v "$tmp/work/uid1000:/aurore" \
  -e HF_HUB_OFFLINE=1 -e AURORE_BASE_MODEL=/aurore/models/standin -e AURORE_MAX_NEW_TOKENS=8 "$image" > /dev/null
port=$(docker port "$server" 8080/tcp | head -1 | sed 's/.*://')
url=http://127.0.0.1:$port
for _ in $(seq 300); do
  curl -fsS "$url/healthz" > "$tmp/healthz.json" 2> /dev/null && break
  [ "$(docker inspect -f '{{.State.Running}}' "$server")" = true ] \
    || { docker logs "$server" 2>&1 | tail -30 >&2; fail "the server stopped before answering"; }
  sleep 1
done
[ -s "$tmp/healthz.json" ] || { docker logs "$server" 2>&1 | tail -30 >&2; fail "no answer from $url/healthz in 300 s"; }
say "  /healthz: $(cat "$tmp/healthz.json")"

stage "POST /api/generate"
code=$(curl -sS -o "$tmp/generate.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"prompt": "Le soir"}' "$url/api/generate") || fail "POST $url/api/generate: no answer"
[ "$code" = 200 ] || fail "POST /api/generate answered $code: $(cat "$tmp/generate.json")"
python3 -c 'import json, sys; texts = json.load(sys.stdin)["texts"]; assert texts and all(isinstance(t, str) and t for t in texts), texts' \
  < "$tmp/generate.json" || fail "POST /api/generate gave no texts: $(cat "$tmp/generate.json")"
say "  200: $(head -c 300 "$tmp/generate.json")"

stage "docker stop"
start=$(date +%s%N)
docker stop -t 10 "$server" > /dev/null
stop_ms=$((($(date +%s%N) - start) / 1000000))
say "  docker stop took $stop_ms ms (exit code $(docker inspect -f '{{.State.ExitCode}}' "$server"))"
[ "$stop_ms" -lt 2000 ] || fail "docker stop took $stop_ms ms: the server did not end on SIGTERM (tini?)"
docker rm "$server" > /dev/null

# -- the offline room: a laptop with no network installs from the organisers' kit ---------------------------------
kit_python=$(docker run --rm --entrypoint python3 "$base" -c 'import sys; print(*sys.version_info[:2], sep=".")')
stage "kit for linux-x86_64, Python $kit_python (python -m aurore kit)"
python=${AURORE_KIT_BUILDER:-.venv/bin/python}
"$python" -m aurore kit "$tmp/kit" --platform linux-x86_64 --python-version "$kit_python" --gutenberg-mirror "$books" \
  > "$tmp/kit.log" 2>&1 || { tail -30 "$tmp/kit.log" >&2; fail "python -m aurore kit failed"; }
tail -2 "$tmp/kit.log" | head -1
mkdir -p "$tmp/work"
git clone -q . "$tmp/work/laptop"

stage "docker run --network none: setup --kit, doctor, steps 1-5"
name=aurore-smoke-$$-kit
containers+=("$name")
timeout 900 docker run --rm --name "$name" --network none -v "$tmp/kit:/kit:ro" -v "$tmp/work/laptop:/laptop" \
  -w /laptop -e HF_HUB_OFFLINE=1 --entrypoint /bin/sh "$base" -c '
set -e
python3 -m aurore setup --kit /kit --no-doctor
. .venv/bin/activate
python aurore/1_prepare_dataset_solution.py
python -m aurore build-standin
export AURORE_BASE_MODEL=/laptop/aurore/models/standin
python -m aurore doctor
python aurore/2_tokenize_solution.py
python aurore/3_train_solution.py --max-steps 5
python aurore/4_generate_solution.py --max-new-tokens 8
python aurore/5_flask_solution.py --port 8080 > /tmp/server.log 2>&1 &
python - << "PY" || { tail -30 /tmp/server.log; exit 1; }
import json, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen("http://127.0.0.1:8080/healthz", timeout=5)
        break
    except OSError:
        time.sleep(1)
request = urllib.request.Request("http://127.0.0.1:8080/api/generate", data=json.dumps({"prompt": "Le soir"}).encode(),
                                 headers={"Content-Type": "application/json"})
texts = json.load(urllib.request.urlopen(request, timeout=120))["texts"]
assert texts and all(isinstance(text, str) and text for text in texts), texts
print("step 5 answered:", texts[0][:60])
PY
' > "$tmp/kit-laptop.log" 2>&1 || { tail -40 "$tmp/kit-laptop.log" >&2; fail "installing from the kit with --network none failed"; }
grep -E "^(✔|✘|!) |step 5 answered" "$tmp/kit-laptop.log" | sed 's/^/  /'
stage
