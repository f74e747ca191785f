// The least any sr_scan driver written on this SDK can do, as one process: Node's
// start-up, the in-process header read of every image, and the fetch of the SR's VDI
// records through the driver's own session and query (dbRecordsOfSr). No request
// validation, no reconciliation, no answer. bench/sr-scan.bench.ts times it beside
// the real driver to show how much of the driver's time is this floor.
// Usage: SM_XAPI_URL=... node bench/scan-floor.mjs <sr dir> <session ref> <sr ref>
import { readInventory } from '../dist/src/sdk/file-sr/inventory.js';
import { dbRecordsOfSr } from '../dist/src/sdk/file-sr/reconcile.js';
import { XenAPISession } from '../dist/src/sdk/xenapi/session.js';

const [srDir, session, srRef] = process.argv.slice(2);
if (!srDir || !session || !srRef || !process.env.SM_XAPI_URL) {
  console.error('usage: SM_XAPI_URL=<url> node bench/scan-floor.mjs <sr dir> <session ref> <sr ref>');
  process.exit(2);
}
const [inv, records] = await Promise.all([readInventory(srDir), dbRecordsOfSr(new XenAPISession(session), srRef)]);
console.log(`${inv.vdis.size} images, ${Object.keys(records).length} records`);
