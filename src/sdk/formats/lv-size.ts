// How big a logical volume must be to hold an image of a given virtual size,
// as xapi's lvhdutil sizes them (spec/sm-spec.md §5.5, §6, §7.4). Pure
// arithmetic; the qcow2 figure comes from `qemu-img measure` (lvm-sr/sizing.ts).
const KiB = 1024;
const MiB = 1024 * KiB;
const TiB = 1024 * 1024 * MiB;

/** LVM allocates in 4 MiB extents (lvhdutil.LVM_SIZE_INCREMENT). */
export const LVM_SIZE_INCREMENT = 4 * MiB;
/** VHD metadata is preallocated for this virtual size, so online growth needs no data moves (lvhdutil.MSIZE). */
export const VHD_PREALLOCATED_MAX = 2 * TiB;
export const VHD_BLOCK = 2 * MiB;

export const roundUp = (unit: number, n: number): number => Math.ceil(n / unit) * unit;

/** vhdutil.calcOverheadEmpty: footer + copy + header (3 KiB), BAT (4 B per block, 512-aligned), batmap (1 bit per block, 4 KiB-aligned). */
export function vhdOverheadEmpty(virtualSize: number): number {
  const sizeMiB = Math.floor(virtualSize / MiB);
  let overhead = 3 * KiB;
  overhead += Math.floor(sizeMiB / 2) * 4;
  overhead = roundUp(512, overhead);
  overhead += Math.floor(Math.floor(sizeMiB / 2) / 8);
  return roundUp(4 * KiB, overhead);
}

/** vhdutil.calcOverheadBitmap: one 4 KiB sector bitmap per 2 MiB block. */
export function vhdOverheadBitmap(virtualSize: number): number {
  return (roundUp(VHD_BLOCK, virtualSize) / VHD_BLOCK) * 4 * KiB;
}

/** lvhdutil.calcSizeVHDLV: a fully provisioned (thick) VHD LV, BAT preallocated for 2 TiB. 10 GiB → 10,766,778,368. */
export function thickVhdLvSize(virtualSize: number): number {
  return roundUp(LVM_SIZE_INCREMENT, virtualSize + vhdOverheadEmpty(VHD_PREALLOCATED_MAX) + vhdOverheadBitmap(virtualSize));
}

/** An empty VHD with the 2 TiB preallocation, before any block is written (thin start / deflated empty leaf): 8 MiB. */
export function emptyVhdLvSize(): number {
  return roundUp(LVM_SIZE_INCREMENT, vhdOverheadEmpty(VHD_PREALLOCATED_MAX));
}

/** A VHD LV shrunk to what the image really occupies (lvhdutil deflate target). */
export function deflatedVhdLvSize(physicalSize: number): number {
  return roundUp(LVM_SIZE_INCREMENT, physicalSize);
}

/** Raw LV: the virtual size in whole extents. */
export function rawLvSize(virtualSize: number): number {
  return roundUp(LVM_SIZE_INCREMENT, virtualSize);
}

/** qcow2 LV from `qemu-img measure`'s fully-allocated figure, in whole extents. */
export function qcow2LvSize(fullyAllocated: number): number {
  return roundUp(LVM_SIZE_INCREMENT, fullyAllocated);
}
