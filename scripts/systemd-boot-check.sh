#!/usr/bin/env bash
# The package on a real systemd: part of the test suite (scripts/test.sh runs it as root; it
# takes about 2 minutes the first time, when it bootstraps Debian into ROOT with
# debootstrap's default mirror, and about 1.5 minutes after that). Needs root, debootstrap
# and systemd-container (the suite installs them).
# It boots a Debian bookworm tree under systemd-nspawn with the real systemd as PID 1,
# installs the .deb that scripts/package.sh builds (the kithd user from sysusers,
# LoadCredential, StateDirectory, the syscall filter and the rest of the hardening), checks
# that nothing starts before a plan exists, adds one, lets it run for a while, then prints
# what systemd and the journal saw, and fails unless it all happened. The bootstrapped tree
# is kept in ROOT between runs. Usage: scripts/systemd-boot-check.sh [ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-/var/tmp/kithd-nspawn-root}"
[ -x "$root/usr/lib/systemd/systemd" ] || debootstrap --variant=minbase --include=systemd,dbus bookworm "$root"
deb=$(./scripts/package.sh | tail -n 1)
# A clean slate in a cached tree: the previous run's package, plan and ledger go.
chroot "$root" dpkg --purge kithd > /dev/null 2>&1 || true
rm -rf "$root/etc/kithd" "$root/var/lib/kithd" "$root/root/kithd-plan.toml"
cp "$deb" "$root/tmp/kithd.deb"
chroot "$root" dpkg -i /tmp/kithd.deb
[ -d "$root/etc/kithd/credentials" ] && [ "$(stat -c %a "$root/etc/kithd/credentials")" = 700 ]
printf '%s' 'not-a-real-token' > "$root/etc/kithd/credentials/twilio_token"
# The plan is put in place only after boot: until then the enabled unit must start nothing.
install -m 0600 config/example.toml "$root/root/kithd-plan.toml"
cat > "$root/etc/systemd/system/kithd-report.service" <<'UNIT'
[Unit]
Description=Report on kithd, then power off
After=kithd.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c '{ echo "before the plan:"; systemctl show kithd -p ActiveState -p ConditionResult; } > /kithd-report.txt 2>&1; install -m 0640 -o root -g kithd /root/kithd-plan.toml /etc/kithd/plan.toml; systemctl start kithd; sleep 70; systemctl reload kithd; sleep 3; { echo "with the plan:"; systemctl show kithd -p ActiveState -p SubState -p Result -p StatusText -p NRestarts -p User; systemctl stop kithd; echo "stopped:"; systemctl show kithd -p ActiveState -p Result -p ExecMainStatus; echo; journalctl -u kithd --no-pager -o cat; echo; ls -la /var/lib/kithd /etc/kithd /etc/kithd/plan.toml; } >> /kithd-report.txt 2>&1; systemctl poweroff'
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/kithd-report.service "$root/etc/systemd/system/multi-user.target.wants/kithd-report.service"
rm -f "$root/kithd-report.txt"
timeout 300 systemd-nspawn --register=no --keep-unit -q -b -D "$root" > /dev/null 2>&1 || true
report="$root/kithd-report.txt"
cat "$report"
# What must have happened: nothing ran before the plan; with it, the service ran as kithd,
# delivered, reloaded, and stopped cleanly with its state private.
for want in "ActiveState=inactive" "ConditionResult=no" "ActiveState=active" "SubState=running" \
    "NRestarts=0" "User=kithd" "ExecMainStatus=0" "Delivered." "Plan reloaded." "Stopped." \
    "-rw-------  1 kithd kithd"; do
    grep -qF -- "$want" "$report" || { echo "boot check: missing \"$want\"" >&2; exit 1; }
done
grep -qE '^drwx------ +[0-9]+ root +root .* credentials$' "$report" \
    || { echo "boot check: /etc/kithd/credentials is not 0700 root" >&2; exit 1; }
echo "boot check ok"
