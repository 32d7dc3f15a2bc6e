#!/bin/sh
# Lints the templates `cdk synth` writes with cfn-lint (a Python tool, 1.51 on these machines:
# pipx install 'cfn-lint==1.51.*'). Arguments go to cdk synth, e.g. scripts/cfn-lint.sh -c stage=prod
# The tests run the same check on the synthesized template: test/infra/cfn-lint.test.ts.
set -eu
cd "$(dirname "$0")/.."
if ! command -v "${CFN_LINT:-cfn-lint}" >/dev/null 2>&1; then
  echo "cfn-lint is not installed: pipx install 'cfn-lint==1.51.*' (or pip install), then run this again" >&2
  exit 2
fi
npx cdk synth --quiet "$@" >/dev/null
"${CFN_LINT:-cfn-lint}" --regions us-east-1 eu-west-1 ap-southeast-1 -- cdk.out/*.template.json
echo "cfn-lint: no findings in $(ls cdk.out/*.template.json | tr '\n' ' ')"
