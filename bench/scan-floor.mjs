// The least any sr_scan driver written on this SDK can do, as one process: Node's
// start-up, the in-process header read of every image, and the one XenAPI call that
// fetches the SR's VDI records (xapi's sm does the same query). No validation, no
// reconciliation, no answer. bench/sr-scan.bench.ts times it beside the real driver
// to show how much of the driver's time is this floor.
// Usage: SM_XAPI_URL=... node bench/scan-floor.mjs <sr dir> <session ref> <sr ref>
import { readInventory } from '../dist/src/sdk/file-sr/inventory.js';
import { xenapiCall } from '../dist/src/sdk/xenapi/client.js';

const [srDir, session, srRef] = process.argv.slice(2);
const url = process.env.SM_XAPI_URL;
if (!srDir || !session || !srRef || !url) {
  console.error('usage: SM_XAPI_URL=<url> node bench/scan-floor.mjs <sr dir> <session ref> <sr ref>');
  process.exit(2);
}
const [inv, records] = await Promise.all([
  readInventory(srDir),
  xenapiCall({ url }, 'VDI.get_all_records_where', [session, `field "SR" = "${srRef}"`]),
]);
console.log(`${inv.vdis.size} images, ${Object.keys(records).length} records`);
