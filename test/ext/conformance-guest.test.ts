// sm-conformance against drivers/ext/EXTSR inside the test host (one boot): an
// SR on a loop device, with real LVM activation through device-mapper. The main
// job (npm start) runs every scenario in every declared format; CI runs the
// subset in test/conformance/guest-subset.ts (docs/conformance.md, "In the test host", says why).
import { describeGuestConformance } from '../conformance/in-test-host.js';

describeGuestConformance('ext', 'EXTSR', 'a block device of the guest');
