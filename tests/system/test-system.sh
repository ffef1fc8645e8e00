#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The system tier's cases, run as root by system-test.service once the
# guest (systemd as PID 1) has reached multi-user.target. Prints TAP.
# nbdlink is installed from $RESULTS/stage, as a package would be; the bus,
# systemd, udev, logind and polkitd are the guest's own.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin

n=0
up() { cut -d' ' -f1 /proc/uptime; }
# One line each, whatever the descriptions quote.
ok() { n=$((n + 1)); echo "ok $n - $(tr '\n' ' ' <<< "$*")"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $(tr '\n' ' ' <<< "$*")"; }
note() { sed 's/^/# /' <<< "$*"; }
# check DESCRIPTION COMMAND...: one TAP line from the command's status.
check() {
        local what=$1; shift
        if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# has TEXT PATTERN: whether TEXT holds PATTERN (grep's).
has() { grep -q -- "$2" <<< "$1"; }
# released NAME: whether the kernel lets go of nbdN within 5 s (it drops
# "pid" once the last opener of a disconnected device is gone).
released() {
        for i in $(seq 50); do [ -e "/sys/block/$1/pid" ] || return 0; sleep 0.1; done
        return 1
}

note "guest script starts at $(up) s of uptime"

# ---- installed as a package would be (before systemd started) ------------
for f in /usr/sbin/nbdlinkd /usr/bin/nbdlink /usr/lib/systemd/system/nbdlinkd.service \
         /usr/lib/systemd/system/nbdlink-attach@.service \
         /usr/share/dbus-1/system.d/org.nbdlink.NBD1.conf \
         /usr/share/dbus-1/system-services/org.nbdlink.NBD1.service \
         /usr/share/polkit-1/actions/org.nbdlink.NBD1.policy; do
        [ -e "$f" ] || { not_ok "installed: $f is missing"; }
done
ok "installed under /usr where dbus-daemon, systemd and polkitd look"

# ---- attached at boot, and mounted from fstab with _netdev ----------------
attach_unit=nbdlink-attach@boot.service
note "$attach_unit: $(systemctl show -p ActiveState -p Result -p ExecMainStatus "$attach_unit" | tr '\n' ' ')"
check "the configured device was attached at boot ($attach_unit active)" \
        test "$(systemctl is-active "$attach_unit")" = active -a -e /sys/block/nbd7/pid
check "and its file system mounted from fstab (_netdev)" \
        test "$(findmnt -n -o SOURCE /mnt/boot-disk)" = /dev/nbd7p1
check "with the file written into it" test "$(cat /mnt/boot-disk/hello 2>&1)" = "attached and mounted at boot"
attached_at=$(systemctl show -p ActiveEnterTimestampMonotonic --value "$attach_unit")
mounted_at=$(systemctl show -p ActiveEnterTimestampMonotonic --value mnt-boot\\x2ddisk.mount)
note "attach unit active at ${attached_at} us, mount at ${mounted_at} us, remote-fs.target at $(systemctl show -p ActiveEnterTimestampMonotonic --value remote-fs.target) us"
check "the mount came after the attach" test "${mounted_at:-0}" -gt "${attached_at:-0}" -a "${attached_at:-0}" -gt 0
check "the attach was logged for the unit" \
        has "$(journalctl -q -o cat -u nbdlinkd)" "Attached /dev/nbd7 .*unit $attach_unit"
umount /mnt/boot-disk
systemctl stop "$attach_unit"
check "stopping the unit detaches the device" released nbd7

# ---- bus activation under the real unit ----------------------------------
mark=$(date +%s)
version=$(busctl get-property org.nbdlink.NBD1 /org/nbdlink/NBD1 org.nbdlink.NBD1.Manager Version 2>&1)
check "bus activation starts nbdlinkd through its unit ($version)" \
        test "$version" = 's "0.1"' -a "$(systemctl is-active nbdlinkd)" = active
check "the unit loaded nbd.ko (modprobe@nbd.service)" test -d /sys/module/nbd
check "Type=notify: the unit says what the daemon says" \
        test "$(systemctl show -p StatusText --value nbdlinkd)" = "Running."
pid=$(systemctl show -p MainPID --value nbdlinkd)
status=/proc/$pid/status
note "nbdlinkd pid $pid: $(grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "$status" | tr '\n\t' '  ')"
# CAP_SYS_ADMIN (21) and CAP_NET_ADMIN (12), nothing else.
check "capabilities: CAP_SYS_ADMIN and CAP_NET_ADMIN only" \
        test "$(awk '/^CapBnd:/ {print $2}' "$status")" = 0000000000201000
check "no new privileges" test "$(awk '/^NoNewPrivs:/ {print $2}' "$status")" = 1
check "a seccomp filter" test "$(awk '/^Seccomp:/ {print $2}' "$status")" = 2
check "LimitNOFILE from the unit" test "$(awk '/^Max open files/ {print $4}' /proc/$pid/limits)" = 16384
check "the start is logged at info" has "$(journalctl -q -o cat -u nbdlinkd -p info)" "nbdlinkd 0.1 running"
check "nothing at warning or worse" test -z "$(journalctl -q -o cat -u nbdlinkd -p warning)"

# ---- a partitioned disk, as the usual tools make it ----------------------
img=/tmp/disk.img
truncate -s 64M $img
printf 'label: gpt\nstart=2048, size=100000, name=data\n' | sfdisk -q $img
mkfs.ext4 -q -F -L nbdlink-sys -E offset=$((2048 * 512)) $img $((100000 / 2))k
nbdkit -f -p 10809 -i 127.0.0.1 file $img &
nbdkit_pid=$!
for i in $(seq 100); do nbdinfo --size nbd://127.0.0.1:10809 >/dev/null 2>&1 && break; sleep 0.1; done

mark=$(date +%s)
dev=$(nbdlink attach nbd://127.0.0.1:10809 2>&1)
check "root attaches it ($dev)" test -b "$dev"
name=${dev#/dev/}
# Attach answers once udev has handled the disk and its partitions: no
# udevadm settle here. What udev knows now is what a file manager that
# mounts at once finds.
props=$(udevadm info -q property "${dev}p1" 2>&1)
disk_props=$(udevadm info -q property "$dev" 2>&1)
check "at once, udev has probed the partition's file system" has "$props" "^ID_FS_LABEL=nbdlink-sys$"
check "and made its links" test -L /dev/disk/by-label/nbdlink-sys
check "and the partition has nbdlink's properties (owner uid 0)" has "$props" "^NBDLINK_OWNER_UID=0$"
note "udev properties of $dev: $(grep -E '^(NBDLINK|UDISKS)_' <<< "$disk_props" | tr '\n' ' ')"
check "the disk is named for udisks2 (\"NBD disk on 127.0.0.1\": the default export)" \
        has "$disk_props" "^UDISKS_NAME=NBD disk on 127.0.0.1$"
check "root's disk stays a system disk (no UDISKS_SYSTEM=0)" eval '! has "$props" "^UDISKS_SYSTEM="'
check "and the properties file is the daemon's" test -f "/run/nbdlink/udev/$name"
check "udev and blkid see the partition's file system" \
        test "$(blkid -o value -s LABEL "${dev}p1" 2>/dev/null)" = nbdlink-sys
note "$(journalctl -q -o cat -u nbdlinkd --since "@$mark" | grep Attached)"
check "the attach line names who asked" \
        has "$(journalctl -q -o cat -u nbdlinkd --since "@$mark")" "Attached $dev .*asked by uid 0, unit system-test.service"

mkdir -p /mnt/disk
mount "${dev}p1" /mnt/disk
echo "written under systemd" > /mnt/disk/kept
sync
out=$(nbdlink detach "$dev" 2>&1); rc=$?
note "detach of a mounted device: exit $rc: $out"
check "Detach of a mounted device fails" test $rc = 1
check "with DeviceBusy, naming the mount" has "$out" "is mounted on /mnt/disk.*DeviceBusy"
check "and the device is still there" test -e "/sys/block/$name/pid"
umount /mnt/disk
out=$(nbdlink detach "$dev" 2>&1); rc=$?
check "once unmounted, Detach detaches it ($out)" test $rc = 0
check "and the kernel lets go of it" released "$name"
check "its udev properties file is gone with it" test ! -e "/run/nbdlink/udev/$name"

dev=$(nbdlink attach nbd://127.0.0.1:10809 2>&1)
mount "${dev}p1" /mnt/disk
out=$(nbdlink detach --force "$dev" 2>&1); rc=$?
check "detach --force detaches a mounted device ($out)" test $rc = 0
umount -l /mnt/disk
check "and the kernel lets it go with the mount" released "${dev#/dev/}"

# ---- a persistent device across restarts of the daemon ------------------
mark=$(date +%s)
dev=$(nbdlink attach --persist nbd://127.0.0.1:10809 2>&1)
name=${dev#/dev/}
check "attached with --persist ($dev)" test -b "$dev"
mount "${dev}p1" /mnt/disk
before=$(cat /mnt/disk/kept)
# What a daemon killed with its ioctl devices would leave behind.
printf 'NBDLINK_OWNER_UID="4242"\n' > /run/nbdlink/udev/nbd9
t=$(date +%s.%N)
systemctl restart nbdlinkd
echo "after a restart" >> /mnt/disk/kept; sync
check "a persistent device stays through systemctl restart ($(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)" \
        test -e "/sys/block/$name/pid"
objects=$(busctl call org.nbdlink.NBD1 /org/nbdlink/NBD1 org.freedesktop.DBus.ObjectManager GetManagedObjects 2>&1)
check "the restarted daemon has its object again" has "$objects" "/org/nbdlink/NBD1/devices/$name"
check "and its udev properties" test -f "/run/nbdlink/udev/$name"
check "a stale properties file of a device no nbdlinkd runs is gone" test ! -e /run/nbdlink/udev/nbd9
old_pid=$(systemctl show -p MainPID --value nbdlinkd)
systemctl kill -s KILL nbdlinkd
echo "after kill -9" >> /mnt/disk/kept; sync
check "and through kill -9" test -e "/sys/block/$name/pid"
for i in $(seq 100); do
        pid=$(systemctl show -p MainPID --value nbdlinkd)
        [ "$pid" != 0 ] && [ "$pid" != "$old_pid" ] && [ "$(systemctl is-active nbdlinkd)" = active ] && break
        sleep 0.1
done
check "Restart=on-failure brings the daemon back by itself" test "$pid" != 0 -a "$pid" != "$old_pid"
for i in $(seq 50); do
        has "$(busctl call org.nbdlink.NBD1 /org/nbdlink/NBD1 org.freedesktop.DBus.ObjectManager GetManagedObjects 2>&1)" \
                "/org/nbdlink/NBD1/devices/$name" && break
        sleep 0.1
done
check "with the device's object" \
        has "$(busctl call org.nbdlink.NBD1 /org/nbdlink/NBD1 org.freedesktop.DBus.ObjectManager GetManagedObjects 2>&1)" \
        "/org/nbdlink/NBD1/devices/$name"
echo 3 > /proc/sys/vm/drop_caches
check "the data written across both is intact" \
        test "$(cat /mnt/disk/kept)" = "$(printf '%s\nafter a restart\nafter kill -9' "$before")"
umount /mnt/disk
nbdlink detach "$dev" >/dev/null 2>&1
check "then detaches" released "$name"

# ---- a device attached the default way outlives the daemon too ----------
dev=$(nbdlink attach nbd://127.0.0.1:10809 2>&1)
name=${dev#/dev/}
mount "${dev}p1" /mnt/disk
echo "the default way" > /mnt/disk/plain; sync
# Writes and syncs for as long as the daemon is stopped, started and
# killed: not one of them may fail.
( i=0; while [ ! -e /tmp/stop-writer ]; do
        i=$((i + 1)); echo "$i" >> /mnt/disk/counter && sync /mnt/disk/counter || { echo "write $i failed" > /tmp/writer-failed; exit 1; }
        sleep 0.05
  done; echo "$i" > /tmp/writer-count ) &
writer=$!
systemctl stop nbdlinkd
check "stopping nbdlinkd leaves a mounted device attached" test -e "/sys/block/$name/pid"
echo "while no nbdlinkd ran" >> /mnt/disk/plain; sync
busctl get-property org.nbdlink.NBD1 /org/nbdlink/NBD1 org.nbdlink.NBD1.Manager Version >/dev/null
check "the next nbdlinkd finds it again" \
        has "$(busctl call org.nbdlink.NBD1 /org/nbdlink/NBD1 org.freedesktop.DBus.ObjectManager GetManagedObjects 2>&1)" \
        "/org/nbdlink/NBD1/devices/$name"
check "with its properties" \
        test "$(busctl get-property org.nbdlink.NBD1 "/org/nbdlink/NBD1/devices/$name" org.nbdlink.NBD1.Device Persistent)" = "b false"
systemctl kill -s KILL nbdlinkd
echo "after kill -9" >> /mnt/disk/plain; sync
check "and through kill -9" test -e "/sys/block/$name/pid"
sleep 2         # Restart=on-failure: the daemon comes back meanwhile
touch /tmp/stop-writer
wait $writer; wrc=$?
note "the writer synced $(cat /tmp/writer-count 2>/dev/null || echo '?') writes across stop, start and kill -9; $(cat /tmp/writer-failed 2>/dev/null || echo 'none failed')"
check "I/O never failed meanwhile" test $wrc = 0 -a ! -e /tmp/writer-failed
check "every write is there" test "$(wc -l < /mnt/disk/counter)" = "$(cat /tmp/writer-count 2>/dev/null)"
echo 3 > /proc/sys/vm/drop_caches
check "its data intact" test "$(cat /mnt/disk/plain)" = "$(printf 'the default way\nwhile no nbdlinkd ran\nafter kill -9')"
umount /mnt/disk
out=$(nbdlink detach "$dev" 2>&1); rc=$?
check "then detaches ($out)" test $rc = 0
check "and the kernel lets go of it" released "$name"

# ---- the shipped policy, for a user of the active local session ----------
sid=$(session-wait 120)
note "session $sid: $(loginctl show-session "$sid" -p Active -p Remote -p Seat --value | tr '\n' ' ')"
out=$(session-run nbdlink --no-ask-password attach nbd://127.0.0.1:10809 2>&1); rc=$?
note "session user attach without an agent: exit $rc: $out"
check "attaching needs an administrator, even in the active session" \
        has "$rc $out" "^1 .*InteractiveAuthorizationRequired"
out=$(session-run nbdlink exports 127.0.0.1:10809 2>&1); rc=$?
note "session user: nbdlink exports: exit $rc: $out"
check "listing needs nothing" test $rc = 0

# ---- with a real authentication agent: the administrator's password once ----
# polkit's default rules make the sudo group the administrators; root is
# its member here, with a password. nbdlink runs pkttyagent on its
# terminal (script(1) gives it one), and the password is typed into it.
secret=nbdlink-system-test
echo "root:$secret" | chpasswd
gpasswd -q -a root sudo
t=$(date +%s.%N)
out=$( (sleep 5; echo "$secret"; sleep 2) |
       session-run script -qefc "nbdlink attach nbd://127.0.0.1:10809" /dev/null 2>&1 | tr -d '\r'); rc=$?
note "session user attach with an agent, $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s, exit $rc:" "$out"
dev=$(grep -o '/dev/nbd[0-9]*' <<< "$out" | tail -n 1)
check "the session user attaches after the administrator's password" test $rc = 0 -a -n "$dev"
check "the agent asked for it" has "$out" "Password"
uid=$(id -u "$DESK_USER")
check "the device is the session user's" \
        test "$(busctl get-property org.nbdlink.NBD1 "/org/nbdlink/NBD1/devices/${dev#/dev/}" org.nbdlink.NBD1.Device OwnerUID)" = "u $uid"
out=$(session-run nbdlink --no-ask-password detach "$dev" 2>&1); rc=$?
check "and detaches it without any password ($out)" test $rc = 0
check "and the kernel lets go of it" released "${dev#/dev/}"

dev=$(nbdlink attach nbd://127.0.0.1:10809 2>&1)
out=$(session-run nbdlink --no-ask-password detach "$dev" 2>&1); rc=$?
note "session user detaching root's device: exit $rc: $out"
check "but not root's device without an administrator" has "$rc $out" "^1 .*InteractiveAuthorizationRequired"
nbdlink detach "$dev" >/dev/null

# ---- the desktop: from an nbd:// link to files, with one password ----------
# udisks2 is started by bus activation, as on a desktop, before the clock
# starts: a desktop has it running already.
udisksctl status >/dev/null 2>&1
uri=nbd://127.0.0.1:10809
desk_uid=$(id -u "$DESK_USER")
# in_session USER CMD...: runs CMD as USER inside the desktop user's
# session scope, where polkit sees an active local session.
in_session() {
        local user=$1; shift
        ( scope=$(loginctl show-session "$sid" -p Scope --value)
          echo "$BASHPID" > "/sys/fs/cgroup$(systemctl show -p ControlGroup --value "$scope")/cgroup.procs"
          exec setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups -- \
                env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ "$@" )
}

# type_password TRANSCRIPT: as a person at the terminal would, types the
# password once the agent's prompt shows in TRANSCRIPT (what script(1)
# writes), a moment later (the agent flushes what was typed before it
# turned echo off), and keeps the terminal open until the command said
# "exit=".
type_password() {
        local i
        for i in $(seq 1200); do grep -q 'Password:' "$1" 2>/dev/null && break; sleep 0.05; done
        sleep 0.3
        echo "$secret"
        for i in $(seq 1200); do grep -q 'exit=' "$1" 2>/dev/null && break; sleep 0.1; done
}

# with_agent TRANSCRIPT COMMAND: runs COMMAND (a shell command line) as
# the desktop user in her session without a terminal of its own, the way
# a desktop runs it, while a polkit agent answers for it on a terminal
# whose output goes to TRANSCRIPT, and the password is typed there. It
# only allows interactive authorization; polkit asks the agent it finds
# for the caller. A desktop's agent registers for the whole session;
# pkttyagent registers for one process, so COMMAND starts stopped, the
# agent registers for it, and then it runs. TRANSCRIPT ends "exit=N".
with_agent() {
        : > "$1"
        type_password "$1" |
                session-run script -qefc "sh -c 'kill -STOP \$\$; exec $2' & p=\$!
                                          sleep 0.5; pkttyagent --process \$p --fallback & sleep 2; kill -CONT \$p
                                          wait \$p; echo exit=\$?" /dev/null > "$1" 2>&1
}

# The file manager: the GDBus example.
t=$(date +%s.%N)
with_agent /tmp/fm.out "nbd-file-manager --open $uri"
out=$(tr -d '\r' < /tmp/fm.out)
note "the file manager (nbd-file-manager --open $uri) as $DESK_USER, $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s:" "$out"
check "the file manager attaches, mounts, lists, unmounts and detaches" has "$out" "^exit=0$"
check "the session's agent asked for a password once, for the attach" test "$(grep -c 'Password:' <<< "$out")" = 1
check "the mount through udisks2 asked for none" has "$out" "^mounted /dev/nbd[0-9]*p1 at /media/$DESK_USER/nbdlink-sys after"
check "it listed the files written earlier" has "$out" "^file kept$"
note "AttachURI to files listed: $(grep -o 'listed .* ms' <<< "$out")"
check "then the device was detached" has "$out" "^detached /dev/nbd"

# nbdlink open, as the desktop file runs it (without --show here).
: > /tmp/open.out
type_password /tmp/open.out |
        session-run script -qefc "nbdlink open $uri; echo exit=\$?" /dev/null > /tmp/open.out 2>&1
out=$(tr -d '\r' < /tmp/open.out)
note "nbdlink open $uri as $DESK_USER:" "$out"
# (pkttyagent's colours end where nbdlink's line begins.)
dev=$(grep -o '/dev/nbd[0-9]*p1 mounted at' <<< "$out" | head -n 1); dev=${dev%p1 mounted at}
check "nbdlink open mounts the file system in /media ($dev)" \
        has "$out" "${dev}p1 mounted at /media/$DESK_USER/nbdlink-sys$"
check "after one password" test "$(grep -c 'Password:' <<< "$out")" = 1
out=$(nbdlink status --owner "${dev}p1" 2>&1); rc=$?
check "nbdlink status --owner names her for the partition's disk ($out)" test $rc = 0 -a "$out" = "$DESK_USER"
out=$(nbdlink status "$dev" 2>&1); rc=$?
note "nbdlink status $dev: exit $rc:" "$out"
check "nbdlink status: connected, exit 0" test $rc = 0
props=$(udevadm info -q property "${dev}p1" 2>&1)
check "the user's disk is not a system disk for udisks2 (UDISKS_SYSTEM=0)" has "$props" "^UDISKS_SYSTEM=0$"
check "udev knows whose it is" has "$props" "^NBDLINK_OWNER_UID=$desk_uid$"
block=$(udisksctl info -b "${dev}p1" 2>&1)
note "udisks2 on ${dev}p1: $(grep -E 'HintSystem|HintIconName|HintName|MountPoints' <<< "$block" | tr -s ' \n' ' ')"
check "udisks2: HintSystem false" has "$block" "HintSystem: *false"
check "udisks2: the network disk's icon" has "$block" "HintIconName: *network-server"
out=$(session-run udisksctl unmount --no-user-interaction -b "${dev}p1" 2>&1); rc=$?
check "she unmounts her own mount, no password ($out)" test $rc = 0

# Who else may mount it: nobody without an administrator.
useradd -M -s /usr/sbin/nologin nbdlink-other 2>/dev/null
out=$(in_session nbdlink-other udisksctl mount --no-user-interaction -b "${dev}p1" 2>&1); rc=$?
note "another user, in the active session, mounting her device: exit $rc: $out"
check "another user may not mount it" eval 'test $rc != 0 && has "$out" NotAuthorized'
out=$(setpriv --reuid="$desk_uid" --regid="$(id -g "$DESK_USER")" --init-groups -- \
        env -i PATH=/usr/bin:/bin udisksctl mount --no-user-interaction -b "${dev}p1" 2>&1); rc=$?
note "$DESK_USER outside any session (a service, a remote login): exit $rc: $out"
check "nor may she, outside her active local session" eval 'test $rc != 0 && has "$out" NotAuthorized'
out=$(session-run udisksctl mount --no-user-interaction -b "${dev}p1" 2>&1); rc=$?
check "in her session she mounts it again without a password ($out)" test $rc = 0
session-run udisksctl unmount --no-user-interaction -b "${dev}p1" >/dev/null 2>&1
out=$(session-run nbdlink --no-ask-password detach "$dev" 2>&1); rc=$?
check "and detaches it ($out)" test $rc = 0

rootdev=$(nbdlink attach $uri 2>&1)
out=$(session-run udisksctl mount --no-user-interaction -b "${rootdev}p1" 2>&1); rc=$?
note "$DESK_USER mounting root's nbd device: exit $rc: $out"
check "root's nbd device is not hers to mount without an administrator" eval 'test $rc != 0 && has "$out" NotAuthorized'
check "and it was not mounted" test -z "$(findmnt -n -S "${rootdev}p1")"
nbdlink detach "$rootdev" >/dev/null

# ---- the link handler, as a desktop runs it: no terminal ------------------
desktop=/usr/share/applications/org.nbdlink.Open.desktop
exec_line=$(grep '^Exec=' "$desktop")
check "the desktop file handles nbd:// and nbds:// links" \
        has "$(grep '^MimeType=' "$desktop")" "x-scheme-handler/nbd;x-scheme-handler/nbds;"
check "with nbdlink open --show ($exec_line)" test "$exec_line" = "Exec=/usr/bin/nbdlink open --show %u"
# The file manager --show starts: here one that says what it was given.
printf '#!/bin/sh\necho "$1" > /tmp/xdg-open.arg\n' > /usr/local/bin/xdg-open
chmod 755 /usr/local/bin/xdg-open
rm -f /tmp/xdg-open.arg
cmd="${exec_line#Exec=}"; cmd="${cmd% %u} $uri"
with_agent /tmp/desk.out "$cmd </dev/null >/tmp/desk.stdout 2>&1"
out=$(tr -d '\r' < /tmp/desk.out)
shown=$(cat /tmp/desk.stdout 2>&1)
note "$cmd without a terminal, its agent on another:" "$out" "its output: $shown"
check "without a terminal, the session's agent asks, once" test "$(grep -c 'Password:' <<< "$out")" = 1
check "the link's disk is mounted" has "$shown" "p1 mounted at /media/$DESK_USER/nbdlink-sys$"
check "and shown in the file manager" test "$(cat /tmp/xdg-open.arg 2>&1)" = "/media/$DESK_USER/nbdlink-sys"
check "nbdlink open exits 0" has "$out" "exit=0"
dev=$(grep -o '/dev/nbd[0-9]*p1' <<< "$shown" | head -n 1)
session-run udisksctl unmount --no-user-interaction -b "$dev" >/dev/null 2>&1
out=$(session-run nbdlink --no-ask-password detach "${dev%p1}" 2>&1); rc=$?
check "she unmounts and detaches it ($out)" test $rc = 0

# ---- a device another tool attached: shown, and nobody's to mount ---------
out=$(nbd-client -N "" 127.0.0.1 10809 /dev/nbd6 2>&1); rc=$?
note "nbd-client attached /dev/nbd6: exit $rc: $out"
udevadm settle -t 30            # nbd-client does not wait for udev
out=$(nbdlink list 2>&1)
note "nbdlink list:" "$out"
check "nbdlink list shows nbd-client's device as another tool's" has "$out" "^/dev/nbd6 .*other"
out=$(nbdlink status /dev/nbd6 2>&1); rc=$?
check "nbdlink status: connected (exit 0), not nbdlinkd's" eval 'test $rc = 0 && has "$out" "not nbdlinkd"'
out=$(nbdlink status --owner /dev/nbd6 2>&1); rc=$?
check "and it has no owner to name (exit $rc)" test $rc = 3
check "udev has no nbdlink properties for it" eval '! has "$(udevadm info -q property /dev/nbd6p1)" "^NBDLINK_"'
out=$(session-run udisksctl mount --no-user-interaction -b /dev/nbd6p1 2>&1); rc=$?
note "$DESK_USER mounting nbd-client's device: exit $rc: $out"
check "the session user may not mount it" eval 'test $rc != 0 && has "$out" NotAuthorized'
nbd-client -d /dev/nbd6 >/dev/null 2>&1
out=$(nbdlink status /dev/nbd6 2>&1); rc=$?
check "once nbd-client let go, status says not connected (exit 3)" test $rc = 3

# Whatever a failed case left mounted or attached goes before the server
# does: a mounted nbd device without its server would hold up the
# guest's poweroff.
for m in $(findmnt -rn -o TARGET | grep '^/media/'); do umount -l "$m"; done
for pid in /sys/block/nbd*/pid; do
        [ -e "$pid" ] || continue
        pid=${pid%/pid}
        nbdlink detach --force "/dev/${pid##*/}" >/dev/null 2>&1
done
kill $nbdkit_pid
echo "1..$n"
note "guest script ends at $(up) s of uptime"
grep -q '^not ok' "$RESULTS/guest.out" && exit 1
exit 0
