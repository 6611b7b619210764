#!/usr/bin/env bash
# The main job: train the Iris classifier with trainforge, end to end, on the embedded defaults
# (SQLite store under ~/.trainforge, data and output on local paths). Expects the project's
# .venv (make example sets it up) and builds the example image if it is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work="$root/.cache/example"
mkdir -p "$work"
image=$(python3 "$root/scripts/images.py" --tag example)
name="iris-$(date +%Y%m%d-%H%M%S)"
sed -e "s|@NAME@|$name|" -e "s|@IMAGE@|$image|" -e "s|@DATA@|$here/data|g" \
    -e "s|@OUTPUT@|$work/output|" "$here/job.template.json" > "$work/job.json"
echo "Running training job $name (image $image); request in $work/job.json" >&2
status=0
"$root/.venv/bin/trainforge" run --cli-input-json "file://$work/job.json" > "$work/describe.json" || status=$?
if [ ! -s "$work/describe.json" ]; then
    # Refused before it ran (trainforge said why above): there is no job to describe.
    echo "The job was not run (exit status $status)." >&2
    exit "$status"
fi
model=$("$root/.venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ModelArtifacts"]["S3ModelArtifacts"])' "$work/describe.json")
echo
echo "DescribeTrainingJob: $work/describe.json"
if [ "$status" -eq 0 ]; then
    echo "The model landed at $model"
    tar -tzvf "${model#file://}"
else
    echo "The job did not complete (exit status $status); see $work/describe.json" >&2
fi
exit "$status"
