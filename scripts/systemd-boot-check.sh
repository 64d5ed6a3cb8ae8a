#!/usr/bin/env bash
# A manual check (not part of the test suite; needs root, debootstrap and systemd-container):
# boots a Debian bookworm tree under systemd-nspawn with the real systemd as PID 1, installs
# kithd with systemd/kithd.service (the kithd user from kithd.sysusers, LoadCredential, StateDirectory, the syscall
# filter and the rest of the hardening), lets it run for a while, then prints what systemd
# and the journal saw. Usage: scripts/systemd-boot-check.sh [ROOT]
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-/var/tmp/kithd-nspawn-root}"
[ -x "$root/usr/lib/systemd/systemd" ] || debootstrap --variant=minbase --include=systemd,dbus bookworm "$root" http://deb.debian.org/debian
cargo build --release --locked
install -m 0755 target/release/kithd "$root/usr/bin/kithd"
install -d -m 0755 "$root/etc/kithd/plugins"
install -d -m 0700 "$root/etc/kithd/credentials"
printf '%s' 'not-a-real-token' > "$root/etc/kithd/credentials/twilio_token"
install -D -m 0644 systemd/kithd.sysusers "$root/usr/lib/sysusers.d/kithd.conf"
chroot "$root" systemd-sysusers
install -m 0640 -o root -g "$(chroot "$root" getent group kithd | cut -d: -f3)" config/example.toml "$root/etc/kithd/plan.toml"
install -m 0644 systemd/kithd.service "$root/etc/systemd/system/kithd.service"
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
ln -sf /etc/systemd/system/kithd.service "$root/etc/systemd/system/multi-user.target.wants/kithd.service"
ln -sf /etc/systemd/system/kithd-report.service "$root/etc/systemd/system/multi-user.target.wants/kithd-report.service"
rm -f "$root/kithd-report.txt"
timeout 300 systemd-nspawn --register=no --keep-unit -q -b -D "$root" > /dev/null 2>&1 || true
cat "$root/kithd-report.txt"
