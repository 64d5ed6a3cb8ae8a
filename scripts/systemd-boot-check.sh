#!/usr/bin/env bash
# A manual check (not part of the test suite: the first run bootstraps Debian, which takes
# minutes and the network; needs root, debootstrap and systemd-container). Run it before a
# release and after any change to systemd/, debian/ or the package metadata.
# It boots a Debian bookworm tree under systemd-nspawn with the real systemd as PID 1,
# installs the .deb that scripts/package.sh builds (the kithd user from sysusers,
# LoadCredential, StateDirectory, the syscall filter and the rest of the hardening), checks
# that nothing starts before a plan exists, adds one, lets it run for a while, then prints
# what systemd and the journal saw. The bootstrapped tree is kept in ROOT between runs;
# debootstrap uses its default mirror. Usage: scripts/systemd-boot-check.sh [ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-/var/tmp/kithd-nspawn-root}"
[ -x "$root/usr/lib/systemd/systemd" ] || debootstrap --variant=minbase --include=systemd,dbus bookworm "$root"
deb=$(./scripts/package.sh | tail -n 1)
cp "$deb" "$root/tmp/kithd.deb"
chroot "$root" dpkg -i /tmp/kithd.deb
[ -d "$root/etc/kithd/credentials" ] && [ "$(stat -c %a "$root/etc/kithd/credentials")" = 700 ]
printf '%s' 'not-a-real-token' > "$root/etc/kithd/credentials/twilio_token"
install -m 0640 -o root -g "$(chroot "$root" getent group kithd | cut -d: -f3)" config/example.toml "$root/etc/kithd/plan.toml"
cat > "$root/etc/systemd/system/kithd-report.service" <<'UNIT'
[Unit]
Description=Report on kithd, then power off
After=kithd.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'sleep 75; systemctl reload kithd; sleep 3; { systemctl show kithd -p ActiveState -p SubState -p Result -p StatusText -p NRestarts -p User; systemctl stop kithd; systemctl show kithd -p ActiveState -p Result -p ExecMainStatus; echo; journalctl -u kithd --no-pager -o cat; echo; ls -la /var/lib/kithd /etc/kithd/plan.toml; } > /kithd-report.txt 2>&1; systemctl poweroff'
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/kithd-report.service "$root/etc/systemd/system/multi-user.target.wants/kithd-report.service"
rm -f "$root/kithd-report.txt"
timeout 300 systemd-nspawn --register=no --keep-unit -q -b -D "$root" > /dev/null 2>&1 || true
cat "$root/kithd-report.txt"
