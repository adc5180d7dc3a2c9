#!/bin/sh
# The install the Lambda image performs, and that a test repeats into a folder: facereel with
# its `aws` extra into TARGET with `pip install --target` (what Lambda's own Python images do
# with LAMBDA_TASK_ROOT), then every converted model built into MODELS, so a read-only
# function converts and downloads nothing.
#   deploy/aws/install.sh SOURCE_TREE TARGET MODELS       (PYTHON=python3.11 by default)
set -eu
source_tree=${1:?source tree}
target=${2:?target folder}
models=${3:?models folder}
python=${PYTHON:-python3.11}
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$source_tree"
"$python" -m pip install --quiet --target "$target" "$(ls "$wheels"/facereel-*.whl)[aws]"
PYTHONPATH="$target" "$python" -S -m facereel models prepare --cache-dir "$models"
