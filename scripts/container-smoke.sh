#!/usr/bin/env bash
# Build the container image the way production does, run it, call it, push it to a
# registry and pull it back by digest. On demand (needs root and a few GB of disk), not CI.
#
#   scripts/container-smoke.sh                 # CPU Bento, OpenCV inpainter
#   scripts/container-smoke.sh --keep          # leave the image in the smoke storage
#   scripts/container-smoke.sh --clean-all     # remove everything, base image included, and stop
#
# Environment:
#   SMOKE_HOME   where the image storage, base image and Bento store live (/var/tmp/iopaint-smoke)
#   SMOKE_PORT   loopback port of the service (18300); SMOKE_REGISTRY_PORT (18301);
#                SMOKE_REDIS_PORT (18302) and the two replicas that share it (18303, 18304)
#   SMOKE_BENTOFILE  bentofile to build (bentofile.cpu.yaml; bentofile.yaml is the GPU image)
#   SMOKE_WEIGHTS    LaMa weights to import (`iopaint-api models import`) and serve with
#                    IOPAINT_MODEL=lama; unset: the OpenCV inpainter
#
# Works without Docker: buildah builds, podman runs, skopeo inspects (Debian packages),
# all as root on their own `vfs` storage under SMOKE_HOME, so nothing here touches the
# machine's default container storage. No registry but the package mirrors is reachable,
# so the base image BentoML's Dockerfile starts from (python:3.11-slim) is made locally
# with debootstrap (Debian bookworm ships Python 3.11) and this machine's CA certificates.
# The CPU Bento is the default because no GPU is here and the CUDA image is several GB.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=$PWD

SMOKE_HOME=${SMOKE_HOME:-/var/tmp/iopaint-smoke}
SMOKE_PORT=${SMOKE_PORT:-18300}
SMOKE_REGISTRY_PORT=${SMOKE_REGISTRY_PORT:-18301}
SMOKE_REDIS_PORT=${SMOKE_REDIS_PORT:-18302}
SMOKE_BENTOFILE=${SMOKE_BENTOFILE:-bentofile.cpu.yaml}
SMOKE_WEIGHTS=${SMOKE_WEIGHTS:-}
BASE_IMAGE=localhost/python:3.11-slim
IMAGE=localhost/iopaint-api:smoke
CONTAINER=iopaint-api-smoke
# runc, not crun, and explicit rlimits: the defaults fail to apply in this sandbox.
RUN_FLAGS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
REPOSITORY=iopaint-api
KEEP=false
CLEAN_ALL=false
for arg in "$@"; do
  case $arg in
    --keep) KEEP=true ;;
    --clean-all) CLEAN_ALL=true ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }
# podman schedules HEALTHCHECK timers through systemd, absent here: drop that complaint
# (`podman healthcheck run` below checks on demand).
# shellcheck disable=SC2032
podman() { command podman "$@" 2> >(grep -v 'systemd connection' >&2); }
wait_healthy() { # container, base URL
  for _ in $(seq 1 180); do
    curl -fsS -o /dev/null "$2/api/v1/health" 2>/dev/null && return 0
    if [[ $(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null) != true ]]; then
      podman logs "$1" 2>&1 | tail -40
      fail "container $1 stopped"
    fi
    sleep 1
  done
  podman logs "$1" 2>&1 | tail -40
  fail "$1 not healthy after 180 s"
}
fail() { printf '\nSMOKE FAILED: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

[[ $EUID -eq 0 ]] || fail "run as root (buildah and podman use root's vfs storage here)"

# --- private container storage: vfs (works without overlay support), under SMOKE_HOME ----
mkdir -p "$SMOKE_HOME"
cat >"$SMOKE_HOME/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$SMOKE_HOME/storage"
runroot = "$SMOKE_HOME/run"
EOF
export CONTAINERS_STORAGE_CONF=$SMOKE_HOME/storage.conf
export BENTOML_HOME=$SMOKE_HOME/bentoml BENTOML_DO_NOT_TRACK=true

registry_pid="" redis_pid=""
cleanup() {
  local rc=$?
  set +e
  say "Cleaning up"
  podman rm -f --time 5 "$CONTAINER" "$CONTAINER-a" "$CONTAINER-b" >/dev/null 2>&1
  for pid in $registry_pid $redis_pid; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$SMOKE_HOME/registry" "$SMOKE_HOME/work"
  if [[ $KEEP == false ]]; then
    podman rmi -f "$IMAGE" "127.0.0.1:$SMOKE_REGISTRY_PORT/$REPOSITORY:smoke" >/dev/null 2>&1
    # shellcheck disable=SC2033 # the podman binary, not the function, is what xargs needs
    podman images --format '{{.Id}} {{.Repository}}' | awk '$2 ~ /iopaint-api/ {print $1}' |
      xargs -r podman rmi -f >/dev/null 2>&1
    podman image prune -f >/dev/null 2>&1
    rm -rf "$BENTOML_HOME"
  fi
  echo "Storage left in $SMOKE_HOME: $(du -sh "$SMOKE_HOME" 2>/dev/null | cut -f1) (base image kept; --clean-all removes it)"
  exit $rc
}

if [[ $CLEAN_ALL == true ]]; then
  say "Removing $SMOKE_HOME (images, base image, Bento store)"
  podman rm -af >/dev/null 2>&1 || true
  podman rmi -af >/dev/null 2>&1 || true
  rm -rf "$SMOKE_HOME"
  exit 0
fi

# --- tools --------------------------------------------------------------------------------
missing=()
for tool in buildah podman skopeo runc debootstrap docker-registry redis-server; do
  # type -P: the binary on PATH (`command -v podman` would find the wrapper function above).
  type -P "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  say "Installing ${missing[*]} (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
[[ -x .venv/bin/bentoml ]] || fail ".venv/bin/bentoml is missing: python3 -m venv .venv && .venv/bin/pip install -e ."
trap cleanup EXIT
rm -rf "$SMOKE_HOME/work" && mkdir -p "$SMOKE_HOME/work"

# --- 1. base image ------------------------------------------------------------------------
if podman image exists "$BASE_IMAGE"; then
  say "Base image $BASE_IMAGE is there"
else
  say "Building base image $BASE_IMAGE (debootstrap bookworm + python3 + this machine's CA certificates)"
  t0=$(now)
  rootfs=$SMOKE_HOME/work/rootfs
  nice -n 19 debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >"$SMOKE_HOME/work/debootstrap.log" 2>&1 ||
    fail "debootstrap failed; see $SMOKE_HOME/work/debootstrap.log"
  # This machine reaches package registries through a TLS-intercepting proxy: its CA must
  # be trusted inside the build (pip, uv, apt over https). Local certificates only.
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$rootfs" update-ca-certificates >/dev/null
  # Like python:3.11-slim: `python` and `pip` on PATH, pip may install system-wide.
  ln -sf python3 "$rootfs/usr/bin/python"
  rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED
  # The local package mirror may serve Release files past their Valid-Until date.
  echo 'Acquire::Check-Valid-Until "false";' >"$rootfs/etc/apt/apt.conf.d/99smoke-mirror"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/debootstrap
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  echo "base image built in $(elapsed "$t0") s: $(podman run --rm "${RUN_FLAGS[@]}" "$BASE_IMAGE" python3 --version)"
fi

# --- 2. Bento -----------------------------------------------------------------------------
if [[ $SMOKE_BENTOFILE == bentofile.cpu.yaml ]]; then
  scripts/fetch-cpu-wheel
fi
model=opencv
if [[ -n $SMOKE_WEIGHTS ]]; then
  say "Importing $SMOKE_WEIGHTS into the model store"
  .venv/bin/iopaint-api models import "$SMOKE_WEIGHTS"
  model=lama
fi
say "Building the Bento ($SMOKE_BENTOFILE)"
t0=$(now)
tag=$(nice -n 19 .venv/bin/bentoml build -f "$SMOKE_BENTOFILE" --output tag | sed -n 's/^__tag__://p')
[[ -n $tag ]] || fail "bentoml build printed no tag"
bento_build_s=$(elapsed "$t0")
echo "built $tag in $bento_build_s s"
.venv/bin/bentoml get "$tag" -o json | python3 -c 'import json, sys
b = json.load(sys.stdin)
tags = [m["tag"] for m in b.get("models", [])] + [m["tag"] for s in b.get("services", []) for m in s.get("models", [])]
print("models in the Bento:", ", ".join(tags) or "none")'

# --- 3. image -----------------------------------------------------------------------------
# format=docker keeps the HEALTHCHECK, which the OCI image format has no field for.
say "Containerizing with buildah (chroot isolation, host network for the package mirrors)"
t0=$(now)
# From /: BentoML 1.4.40 refuses the Bento's Dockerfile template, copied to a temporary
# build context, when that context is not under the working directory (bentoml#5566).
(cd / && nice -n 19 "$PROJECT/.venv/bin/bentoml" containerize "$tag" --backend buildah \
  --image-tag "$IMAGE" --opt isolation=chroot --opt network=host --opt format=docker) \
  >"$SMOKE_HOME/containerize.log" 2>&1 ||
  { tail -30 "$SMOKE_HOME/containerize.log"; fail "containerize failed; see $SMOKE_HOME/containerize.log"; }
containerize_s=$(elapsed "$t0")
image_bytes=$(podman image inspect "$IMAGE" --format '{{.Size}}')
image_size=$(numfmt --to=iec --suffix=B "$image_bytes")
image_user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
image_ports=$(podman image inspect "$IMAGE" --format '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')
image_health=$(podman image inspect "$IMAGE" --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{else}}none{{end}}')
echo "image $IMAGE: $image_size, built in $containerize_s s; user $image_user; exposes $image_ports"
echo "healthcheck: $image_health"
[[ $image_user != "" && $image_user != root && $image_user != 0* ]] || fail "image runs as root"
[[ $image_health != none ]] || fail "image has no HEALTHCHECK"

# --- 4. run and call it -------------------------------------------------------------------
say "Running $IMAGE on 127.0.0.1:$SMOKE_PORT"
podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
t0=$(now)
podman run -d --name "$CONTAINER" "${RUN_FLAGS[@]}" -p "127.0.0.1:$SMOKE_PORT:3000" \
  -e IOPAINT_MODEL="$model" -e IOPAINT_LOG_LEVEL=info \
  "$IMAGE" >/dev/null
base_url=http://127.0.0.1:$SMOKE_PORT
wait_healthy "$CONTAINER" "$base_url"
health=$(curl -fsS "$base_url/api/v1/health")
startup_s=$(elapsed "$t0")
echo "healthy after $startup_s s: $health"
image_models=$(podman exec "$CONTAINER" sh -c 'ls "$BENTO_PATH/models" 2>/dev/null' | tr '\n' ' ')
echo "models in the image (\$BENTO_PATH/models): ${image_models:-none}"
uid=$(podman exec "$CONTAINER" id -u)
[[ $uid != 0 ]] || fail "the service runs as root"
podman healthcheck run "$CONTAINER" >/dev/null && healthcheck_result=healthy || healthcheck_result="unhealthy"
echo "process uid $uid; podman healthcheck run: $healthcheck_result"
livez=$(curl -s -o /dev/null -w '%{http_code}' "$base_url/livez")

key=$(podman exec "$CONTAINER" iopaint-api keys create --plan pro --name smoke --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') || fail "could not create a key in the container"
samples=$PROJECT/../shared/reference/samples
if [[ -f $samples/watermark.jpg && -f $samples/watermark_mask.png ]]; then
  image_file=$samples/watermark.jpg mask_file=$samples/watermark_mask.png
else
  image_file=$SMOKE_HOME/work/image.png mask_file=$SMOKE_HOME/work/mask.png
  .venv/bin/python -c "
from PIL import Image, ImageDraw
Image.new('RGB', (256, 192), (40, 120, 200)).save('$image_file')
m = Image.new('L', (256, 192), 0); ImageDraw.Draw(m).rectangle((100, 80, 160, 110), fill=255); m.save('$mask_file')"
fi
t0=$(now)
status=$(curl -sS -o "$SMOKE_HOME/work/result.png" -D "$SMOKE_HOME/work/headers.txt" -w '%{http_code}' \
  -H "X-API-Key: $key" -F "image=@$image_file" -F "mask=@$mask_file" "$base_url/api/v1/remove-watermark")
remove_s=$(elapsed "$t0")
[[ $status == 200 ]] || { cat "$SMOKE_HOME/work/result.png"; echo; fail "remove-watermark answered $status"; }
result=$(.venv/bin/python -c "
from PIL import Image; a = Image.open('$image_file'); b = Image.open('$SMOKE_HOME/work/result.png')
print(f'{b.format} {b.size[0]}x{b.size[1]} (input {a.size[0]}x{a.size[1]})'); assert b.size == a.size")
model_header=$(grep -i '^x-model:' "$SMOKE_HOME/work/headers.txt" | tr -d '\r' || true)
unauth=$(curl -s -o /dev/null -w '%{http_code}' -F "image=@$image_file" -F "mask=@$mask_file" "$base_url/api/v1/remove-watermark")
echo "remove-watermark: 200 in $remove_s s, $result, $model_header; without a key: $unauth; /livez: $livez"
[[ $unauth == 401 ]] || fail "a request without a key answered $unauth, not 401"

# --- 5. two replicas, one Redis: a key made on one works on the other ----------------------
say "Two replicas sharing a Redis (appendonly) on 127.0.0.1:$SMOKE_REDIS_PORT"
podman rm -f --time 5 "$CONTAINER" >/dev/null
mkdir -p "$SMOKE_HOME/work/redis"
redis-server --port "$SMOKE_REDIS_PORT" --bind 127.0.0.1 --dir "$SMOKE_HOME/work/redis" \
  --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save "" \
  >"$SMOKE_HOME/work/redis/log" 2>&1 &
redis_pid=$!
redis_url=redis://127.0.0.1:$SMOKE_REDIS_PORT/0
for _ in $(seq 1 20); do redis-cli -p "$SMOKE_REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.5; done
ports=($((SMOKE_REDIS_PORT + 1)) $((SMOKE_REDIS_PORT + 2)))
# Host network so the replicas reach the loopback Redis; each binds 127.0.0.1 only.
for i in 0 1; do
  replica=$CONTAINER-$([[ $i == 0 ]] && echo a || echo b)
  podman run -d --name "$replica" "${RUN_FLAGS[@]}" --network host \
    -e IOPAINT_MODEL=opencv -e IOPAINT_PORT="${ports[$i]}" -e IOPAINT_REDIS_URL="$redis_url" \
    "$IMAGE" --host 127.0.0.1 >/dev/null
done
wait_healthy "$CONTAINER-a" "http://127.0.0.1:${ports[0]}"
wait_healthy "$CONTAINER-b" "http://127.0.0.1:${ports[1]}"
shared_key=$(podman exec "$CONTAINER-a" iopaint-api keys create --plan pro --name smoke-redis --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "X-API-Key: $shared_key" \
  -F "image=@$image_file" -F "mask=@$mask_file" "http://127.0.0.1:${ports[1]}/api/v1/remove-watermark")
[[ $status == 200 ]] || fail "replica b answered $status to a key created on replica a"
# Usage is recorded just after the response is sent: give replica b a moment.
for _ in $(seq 1 20); do
  used=$(curl -fsS -H "X-API-Key: $shared_key" "http://127.0.0.1:${ports[0]}/api/v1/stats" |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["success"], s["quota"]["used"])')
  [[ $used == "1 1" ]] && break
  sleep 0.5
done
[[ $used == "1 1" ]] || fail "replica a sees usage '$used' (success, quota used), not '1 1'"
aof=$(redis-cli -p "$SMOKE_REDIS_PORT" config get appendonly | tail -1)
redis_keys=$(redis-cli -p "$SMOKE_REDIS_PORT" --scan --pattern 'iopaint:*' | wc -l)
replicas_result="key made on a, request served by b (200), usage seen on a (1 success); Redis appendonly=$aof, $redis_keys iopaint:* keys"
echo "$replicas_result"
podman rm -f --time 10 "$CONTAINER-a" "$CONTAINER-b" >/dev/null

# --- 6. registry: push, pull back by digest -----------------------------------------------
say "Pushing to a docker-registry on 127.0.0.1:$SMOKE_REGISTRY_PORT and pulling back by digest"
mkdir -p "$SMOKE_HOME/registry/data"
cat >"$SMOKE_HOME/registry/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $SMOKE_HOME/registry/data}
  delete: {enabled: true}
http: {addr: "127.0.0.1:$SMOKE_REGISTRY_PORT"}
EOF
docker-registry serve "$SMOKE_HOME/registry/config.yml" >"$SMOKE_HOME/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 30); do curl -fsS -o /dev/null "http://127.0.0.1:$SMOKE_REGISTRY_PORT/v2/" 2>/dev/null && break; sleep 0.5; done
remote=127.0.0.1:$SMOKE_REGISTRY_PORT/$REPOSITORY
t0=$(now)
nice -n 19 podman push --quiet --tls-verify=false --digestfile "$SMOKE_HOME/work/digest" "$IMAGE" "docker://$remote:smoke"
push_s=$(elapsed "$t0")
digest=$(cat "$SMOKE_HOME/work/digest")
podman rmi -f "$IMAGE" >/dev/null # the pull below must really come from the registry
t0=$(now)
nice -n 19 podman pull --quiet --tls-verify=false "$remote@$digest" >/dev/null
pull_s=$(elapsed "$t0")
inspected=$(skopeo inspect --tls-verify=false "docker://$remote@$digest" --format '{{.Digest}}')
pushed_bytes=$(skopeo inspect --raw --tls-verify=false "docker://$remote@$digest" |
  python3 -c 'import json,sys; print(sum(layer["size"] for layer in json.load(sys.stdin)["layers"]))')
pushed_size=$(numfmt --to=iec --suffix=B "$pushed_bytes")
[[ $inspected == "$digest" ]] || fail "registry digest $inspected differs from pushed $digest"
podman tag "$remote@$digest" "$IMAGE"
echo "pushed $remote:smoke in $push_s s -> $digest ($pushed_size compressed layers)"
echo "pulled $remote@$digest in $pull_s s; skopeo inspect: $inspected"

say "Smoke passed"
cat <<EOF
bento            $tag (build $bento_build_s s, $SMOKE_BENTOFILE)
image            $IMAGE $image_size (containerize $containerize_s s), user $image_user, exposes $image_ports
start to healthy $startup_s s ($model); docker HEALTHCHECK: $healthcheck_result; /livez $livez; models in image: ${image_models:-none}
remove-watermark 200 in $remove_s s, $result; no key: $unauth
replicas+Redis   $replicas_result
registry         push $push_s s ($pushed_size compressed), pull by digest $pull_s s, $digest
EOF
