export { xenapiCall, XenAPIFailure, XenAPIProtocolError, type XenAPIEndpoint } from './client.js';
export { XenAPISession, type VdiIntroduceArgs, type Ref, type XenRecord } from './session.js';
