// sm-conformance against drivers/nfs/NFSSR inside the test host (one boot): an
// SR on the guest kernel NFS server (127.0.0.1), mounted by the driver. The main
// job (npm start) runs every scenario in every declared format; CI runs the
// subset in test/conformance/guest-subset.ts (docs/conformance.md, "In the test host", says why).
import { describeGuestConformance } from '../conformance/in-test-host.js';

describeGuestConformance('nfs', 'NFSSR', 'the guest NFS server');
