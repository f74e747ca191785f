// sm-conformance against drivers/lvm/LVMSR inside the test host (one boot): an
// SR on a loop device, with LV activation through device-mapper (on the build
// host the same suite runs without it: test/conformance/lvm-driver.test.ts). The main
// job (npm start) runs every scenario in every declared format; CI runs the
// subset in test/conformance/guest-subset.ts (docs/conformance.md, "In the test host", says why).
import { describeGuestConformance } from '../conformance/in-test-host.js';

describeGuestConformance('lvm', 'LVMSR', 'a block device of the guest');
