#!/usr/bin/env bash
# Hearth developer set-up: installs what is missing, builds, then runs the server or the tests.
#
#   scripts/setup.sh run [hearth-server flags…]   set up, build, start the server (foreground)
#   scripts/setup.sh test                          set up, build (plain and sanitizer), run every test
#   scripts/setup.sh build                         set up and build only
#
# Idempotent: every step checks first and does nothing when the machine is ready, so a second
# run on a ready machine takes seconds.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Pinned versions. pyspark 4.3.0 is the newest release on PyPI and runs on the machine's JDK 17
# (Spark 4.x needs Java 17 or 21); its wheel carries Spark's jars, spark-submit and the Scala
# 2.13 REPL. JeroMQ is bundled into the agent jar; jnacl is its one runtime dependency.
readonly MAVEN_ARTIFACTS=(org.zeromq:jeromq:0.6.0 eu.neilalexander:jnacl:1.0.0)
readonly APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libpistache-dev rapidjson-dev cppzmq-dev libzmq3-dev libhiredis-dev libboost-dev libgtest-dev
  libcli11-dev libssl-dev
  redis-server openjdk-17-jdk-headless maven python3 python3-venv procps
)

log() { printf '[setup] %s\n' "$*" >&2; }

install_debian_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_python_env() {
  local stamp=.venv/.requirements.sha256
  local want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  log "creating the virtual environment .venv (pyspark and test clients)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$want" > "$stamp"
}

install_maven_artifacts() {
  mkdir -p .deps/maven
  for coords in "${MAVEN_ARTIFACTS[@]}"; do
    IFS=: read -r _group artifact version <<< "$coords"
    [ -f ".deps/maven/$artifact-$version.jar" ] && continue
    log "fetching $coords from Maven Central"
    mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$coords" -DoutputDirectory="$repo/.deps/maven"
  done
}

build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > /dev/null
  fi
  cmake --build "$dir" -j "$(nproc)"
}

setup() {
  install_debian_packages
  install_python_env
  install_maven_artifacts
  build build
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case "$cmd" in
  build)
    setup
    ;;
  run)
    setup
    exec build/bin/hearth-server "$@"
    ;;
  test)
    setup
    log "tests (plain build): unit, component, e2e"
    (cd build && ctest --output-on-failure)
    # The same suites against a server built with AddressSanitizer and UndefinedBehaviorSanitizer
    # (it launches the agent jar of the plain build; the Java check ran above).
    build build-asan -DHEARTH_SANITIZE=ON -DHEARTH_BUILD_DRIVER=OFF \
      -DHEARTH_AGENT_JAR="$repo/build/lib/hearth-driver.jar"
    log "tests (AddressSanitizer + UndefinedBehaviorSanitizer build): unit, component, e2e"
    (cd build-asan && ctest --output-on-failure)
    ;;
  *)
    echo "usage: scripts/setup.sh run|test|build" >&2
    exit 2
    ;;
esac
