#!/bin/bash
# headroom's first boot on an Auto Scaling group instance, run by cloud-init (user-data.yaml
# writes this file and /etc/default/headroom-bootstrap, then runs it once).
#
# It installs the headroom .deb from HEADROOM_DEB_URL after checking HEADROOM_DEB_SHA256, and
# writes /etc/headroom/headroom.toml: the group from HEADROOM_GROUP or the instance tag named
# by HEADROOM_GROUP_TAG (instance metadata tags must be enabled in the launch template); the
# coordinator URLs and the token from HEADROOM_COORDINATOR_URLS / HEADROOM_TOKEN or from SSM
# Parameter Store (HEADROOM_COORDINATOR_URLS_PARAM, HEADROOM_TOKEN_PARAM as a SecureString;
# needs the aws CLI and ssm:GetParameter in the instance profile). Every lookup is retried a
# bounded number of times; any failure stops the script with a message on stderr and in the
# journal, and cloud-init reports the boot as failed.
set -euo pipefail

# shellcheck source=/dev/null
[ -r /etc/default/headroom-bootstrap ] && . /etc/default/headroom-bootstrap

: "${HEADROOM_DEB_URL:?HEADROOM_DEB_URL is not set}"
: "${HEADROOM_DEB_SHA256:?HEADROOM_DEB_SHA256 is not set}"
ATTEMPTS=${HEADROOM_ATTEMPTS:-6}
IMDS=http://169.254.169.254

fail() {
    echo "headroom-bootstrap: $*" >&2
    logger -t headroom-bootstrap -p user.err "$*" || true
    exit 1
}

# retry WHAT COMMAND...: runs COMMAND up to ATTEMPTS times, 2, 4, 8... seconds apart (at most 30).
retry() {
    local what=$1 delay=2 i
    shift
    for ((i = 1; i <= ATTEMPTS; i++)); do
        if "$@"; then
            return 0
        fi
        echo "headroom-bootstrap: $what failed (attempt $i of $ATTEMPTS)" >&2
        sleep "$delay"
        delay=$((delay * 2 > 30 ? 30 : delay * 2))
    done
    fail "$what failed $ATTEMPTS times"
}

imds_token() {
    curl -sf -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300"
}

imds() {
    curl -sf -H "X-aws-ec2-metadata-token: $TOKEN_IMDS" "$IMDS/latest/meta-data/$1"
}

ssm() {
    aws ssm get-parameter --with-decryption --name "$1" --query Parameter.Value --output text
}

TOKEN_IMDS=
if [ -z "${HEADROOM_GROUP:-}" ] || [ -n "${HEADROOM_COORDINATOR_URLS_PARAM:-}${HEADROOM_TOKEN_PARAM:-}" ]; then
    TOKEN_IMDS=$(retry "the instance metadata token" imds_token)
fi
if [ -z "${HEADROOM_GROUP:-}" ]; then
    : "${HEADROOM_GROUP_TAG:?set HEADROOM_GROUP or HEADROOM_GROUP_TAG}"
    HEADROOM_GROUP=$(retry "the instance tag $HEADROOM_GROUP_TAG" imds "tags/instance/$HEADROOM_GROUP_TAG")
fi
if [ -n "${HEADROOM_COORDINATOR_URLS_PARAM:-}${HEADROOM_TOKEN_PARAM:-}" ]; then
    AWS_DEFAULT_REGION=$(retry "the region" imds placement/region)
    export AWS_DEFAULT_REGION
fi
if [ -z "${HEADROOM_COORDINATOR_URLS:-}" ]; then
    : "${HEADROOM_COORDINATOR_URLS_PARAM:?set HEADROOM_COORDINATOR_URLS or HEADROOM_COORDINATOR_URLS_PARAM}"
    HEADROOM_COORDINATOR_URLS=$(retry "SSM parameter $HEADROOM_COORDINATOR_URLS_PARAM" ssm "$HEADROOM_COORDINATOR_URLS_PARAM")
fi
if [ -z "${HEADROOM_TOKEN:-}" ]; then
    : "${HEADROOM_TOKEN_PARAM:?set HEADROOM_TOKEN or HEADROOM_TOKEN_PARAM}"
    HEADROOM_TOKEN=$(retry "SSM parameter $HEADROOM_TOKEN_PARAM" ssm "$HEADROOM_TOKEN_PARAM")
fi
[ "${#HEADROOM_TOKEN}" -ge 16 ] || fail "the token is shorter than 16 bytes"

deb=$(mktemp --suffix=.deb)
retry "downloading $HEADROOM_DEB_URL" curl -sfL --max-time 120 -o "$deb" "$HEADROOM_DEB_URL"
echo "$HEADROOM_DEB_SHA256  $deb" | sha256sum -c --quiet - || fail "$HEADROOM_DEB_URL does not have sha256 $HEADROOM_DEB_SHA256"
retry "installing headroom" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb"
rm -f "$deb"

# The URLs: comma- or space-separated, written as a TOML array.
urls=$(echo "$HEADROOM_COORDINATOR_URLS" | sed 's/[, ]\+/\n/g' | sed '/^$/d; s/.*/"&"/' | paste -sd, - | sed 's/,/, /g')
install -m 0640 -o root -g headroom /dev/null /etc/headroom/token
printf '%s' "$HEADROOM_TOKEN" > /etc/headroom/token
cat > /etc/headroom/headroom.toml <<TOML
# Written by headroom-bootstrap (cloud-init) at first boot.
[agent]
group = "$HEADROOM_GROUP"

[coordinator]
urls = [$urls]
token_file = "/etc/headroom/token"
TOML
headroom config check /etc/headroom/headroom.toml || fail "the configuration written is refused"
systemctl restart headroom
echo "headroom-bootstrap: headroom installed for group $HEADROOM_GROUP"
