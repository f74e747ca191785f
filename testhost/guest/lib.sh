# Helpers for scripts run inside the test-host guest (sourced by every step; by
# hand: `source /.testhost/lib.sh`). State lives under /run/testhost so that a
# later step (a separate bash) can find what an earlier one set up.
TH_STATE=/run/testhost

# th_loop_file PATH SIZE_MIB: create a sparse file and attach it; prints the loop device.
th_loop_file() {
  local path=$1 mib=$2 dev
  mkdir -p "$(dirname "$path")"
  truncate -s "${mib}M" "$path"
  dev=$(losetup -f --show "$path")
  echo "$dev" >> "$TH_STATE/loops"
  echo "$dev"
}

# th_loop_pv NAME SIZE_MIB: a loop device on a tmpfs-backed sparse file, made an
# LVM PV; prints the device. The device is also recorded in /run/testhost/pv-NAME.
th_loop_pv() {
  local name=$1 mib=$2 dev
  dev=$(th_loop_file "$TH_STATE/pv-$name.img" "$mib")
  pvcreate -q "$dev" >&2
  echo "$dev" > "$TH_STATE/pv-$name"
  echo "$dev"
}

# th_pv NAME: the device of a PV made earlier by th_loop_pv.
th_pv() { cat "$TH_STATE/pv-$1"; }

# th_nfs_server_start DIR...: start the kernel NFS server (v3 and v4.x) exporting
# each DIR to 127.0.0.1 (rw, no_root_squash). A DIR that is not yet a mount point
# gets its own tmpfs; tmpfs exports need an fsid, given in order from 1. Lease and
# grace times are 10 s so that a fresh server serves v4 opens at once. Safe to
# call again with more directories: they are added to the running server.
th_nfs_server_start() {
  local d fsid
  [ $# -gt 0 ] || { echo "th_nfs_server_start: give at least one directory to export" >&2; return 2; }
  for d in "$@"; do
    mkdir -p "$d"
    mountpoint -q "$d" || mount -t tmpfs -o mode=777 "th-export" "$d"
    # Not a pipeline from a missing file: steps run with set -e -o pipefail.
    if [ -f "$TH_STATE/exports" ]; then fsid=$(( $(wc -l < "$TH_STATE/exports") + 1 )); else fsid=1; fi
    echo "$d 127.0.0.1(rw,no_root_squash,no_subtree_check,insecure,fsid=$fsid)" >> "$TH_STATE/exports"
  done
  cp "$TH_STATE/exports" /etc/exports
  if [ -f "$TH_STATE/nfsd-running" ]; then exportfs -ra; return; fi
  mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
  mkdir -p /var/lib/nfs/rpc_pipefs /var/lib/nfs/sm /var/lib/nfs/sm.bak /run/rpcbind
  mountpoint -q /var/lib/nfs/rpc_pipefs || mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs
  rpcbind -w
  rpc.statd --no-notify
  exportfs -ra
  rpc.mountd
  echo 10 > /proc/fs/nfsd/nfsv4leasetime
  echo 10 > /proc/fs/nfsd/nfsv4gracetime
  rpc.nfsd 4
  touch "$TH_STATE/nfsd-running"
}

# th_nfs_mount VERS EXPORT MOUNTPOINT: mount 127.0.0.1:EXPORT with NFS version VERS (3, 4.1, 4.2).
th_nfs_mount() {
  mkdir -p "$3"
  mount -t nfs -o "vers=$1" "127.0.0.1:$2" "$3"
}
