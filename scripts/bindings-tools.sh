#!/usr/bin/env bash
# Installs (or finds) what the binding suites need and prints the environment they use, as
# `export` lines for `eval`: the Kotlin compiler and its coroutines jar (npm package
# `kotlin-compiler`), JNA (Debian `libjna-java`), JDK 17 (already on the machines), and a
# Python virtual environment with maturin and pytest. Everything lands under target/tools.
set -euo pipefail
cd "$(dirname "$0")/.."

KOTLIN_VERSION=2.4.20
MATURIN_VERSION=1.12.3
PYTEST_VERSION=8.4.2
tools="$PWD/target/tools"
mkdir -p "$tools"

kotlin="$tools/kotlin/node_modules/kotlin-compiler"
if [ ! -x "$kotlin/bin/kotlinc-jvm" ]; then
  echo "bindings-tools: installing kotlin-compiler $KOTLIN_VERSION from npm" >&2
  npm install --prefix "$tools/kotlin" --no-audit --no-fund --silent "kotlin-compiler@$KOTLIN_VERSION" >&2
fi

jna=/usr/share/java/jna.jar
if [ ! -f "$jna" ]; then
  echo "bindings-tools: installing libjna-java from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q libjna-java >&2 || { apt-get update -q >&2 && apt-get install -y -q libjna-java >&2; }
fi

venv="$tools/python"
if [ ! -x "$venv/bin/pytest" ] || [ ! -x "$venv/bin/maturin" ]; then
  echo "bindings-tools: creating the Python environment (maturin $MATURIN_VERSION, pytest $PYTEST_VERSION)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "maturin==$MATURIN_VERSION" "pytest==$PYTEST_VERSION" >&2
fi

echo "export KOTLIN_HOME='$kotlin'"
echo "export KOTLINC='$kotlin/bin/kotlinc-jvm'"
echo "export KOTLIN_COROUTINES_JAR='$(ls "$kotlin"/lib/kotlinx-coroutines-core-jvm*.jar | head -n1)'"
echo "export JNA_JAR='$jna'"
echo "export PYTHON_VENV='$venv'"
